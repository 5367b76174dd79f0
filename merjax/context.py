"""The run context every experiment gets: its config, workdir, data, and one network's evaluation.

    ctx = Context(cfg, "runs/x", options=RunOptions(cache_dir="~/.cache/merjax"))
    data = ctx.data()                # samples + flows (synthetic database by default)
    result = ctx.evaluate("vy-3cl")  # trains every fold, pools, scores; reused when asked again

:mod:`merjax.runner` builds it; experiments (``experiments/*.py``) only use it.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import jax
import numpy as np

from merjax import flow, inference, metrics, models, train
from merjax.config import Config
from merjax.data import cache, composite, synthetic
from merjax.data.sample import SampleList
from merjax.report import Report

log = logging.getLogger(__name__)

CLASS_NAMES = ("happiness", "surprise", "anger", "disgust", "sadness")
"""The paper's names for objective classes I-V (its Tables 5-7 and Figures 6-7)."""

COMPOSITES = ("megc2018", "megc2019")


def class_labels(composite_name: str = "megc2018") -> list[str]:
    """Class names for tables and model folders: MEGC 2018's objective classes I-V (with the
    paper's emotion names), or MEGC 2019's negative / positive / surprise."""
    if composite_name == "megc2019":
        return list(composite.MEGC2019_CLASSES)
    return [f"{c} ({n})" for c, n in zip(composite.MEGC2018_CLASSES, CLASS_NAMES, strict=True)]


@dataclasses.dataclass
class Data:
    """The composite's samples and their flows, aligned."""

    samples: SampleList
    flows: cache.FlowSet
    source: str  # where the frames came from, for reports
    labels: np.ndarray  # [N] int
    subjects: list[str]
    datasets: list[str]

    @property
    def warnings(self) -> list[str]:
        """What a report must say first: databases that lost more than a third of their rows."""
        return self.samples.losses()

    @property
    def notes(self) -> list[str]:
        """Everything a loader or the flow step did to a sample (skips, fills, face fallbacks)."""
        skipped = [f"skipped {p}" for p in self.samples.skipped]
        fixed = [f"{s.source}: {s.note}" for s in self.samples if s.note]
        return skipped + fixed + list(self.flows.notes)


@dataclasses.dataclass
class NetResult:
    """One network's pooled held-out results over every seed."""

    net: str
    representation: str
    params: int
    per_seed: list[
        dict
    ]  # metrics.by_group per seed ("all", then each dataset: "casme2", "samm", "smic")
    loso: train.LosoResult
    model_dir: Path | None = None  # the saved final model (trained on every subject), if any

    def mean_std(self, key: str, group: str = "all") -> tuple[float, float]:
        return metrics.mean_std([s[group][key] for s in self.per_seed])

    @property
    def confusion(self) -> np.ndarray:
        """Held-out confusion counts summed over seeds."""
        return np.sum([np.asarray(s["all"]["confusion"]) for s in self.per_seed], axis=0)

    def row(self) -> dict:
        """The numbers a table or summary.json shows for this network."""
        out: dict = {"net": self.net, "representation": self.representation, "params": self.params}
        for key in ("accuracy", "uf1", "uar"):
            out[key], out[f"{key}_std"] = self.mean_std(key)
        out["majority"] = self.per_seed[0]["all"]["majority"]
        out["n"] = self.per_seed[0]["all"]["n"]
        out["per_dataset"] = {
            g: {k: self.mean_std(k, g)[0] for k in ("accuracy", "uf1", "uar")} | {"n": v["n"]}
            for g, v in self.per_seed[0].items()
            if g != "all"
        }
        out["seeds"] = list(self.loso.seeds)
        out["final_train_loss"] = float(np.nanmean(self.loso.losses[:, -1]))
        out["seconds"] = round(self.loso.seconds, 1)
        return out


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """What the command line chose besides the experiment: an experiment that runs others
    (``paper``) passes them on unchanged."""

    profile: str = "quick"
    overrides: tuple[str, ...] = ()  # --set name=value
    seeds: tuple[int, ...] | None = None
    casme2_root: str | Path | None = None  # both roots: the MEGC 2018 composite; neither: synthetic
    samm_root: str | Path | None = None
    smic_root: str | Path | None = None  # with both others: the MEGC 2019 composite
    cache_dir: str | Path | None = (
        None  # synthetic database and flow cache (default: workdir/cache)
    )

    def __post_init__(self):
        if (self.casme2_root is None) != (self.samm_root is None):
            raise ValueError(
                "give both --casme2_root and --samm_root (the MEGC 2018 composite) or neither "
                "(the synthetic database)"
            )
        if self.smic_root is not None and self.casme2_root is None:
            raise ValueError(
                "--smic_root goes with --casme2_root and --samm_root (the MEGC 2019 composite)"
            )


class Context:
    """One experiment run: its config, workdir, data (loaded once) and trained networks."""

    def __init__(
        self,
        cfg: Config,
        workdir: str | Path,
        *,
        options: RunOptions = RunOptions(),
        progress: Callable[[str], None] | None = log.info,
        parent: Context | None = None,
    ):
        self.cfg, self.workdir, self.options = cfg, Path(workdir), options
        self.roots = (options.casme2_root, options.samm_root, options.smic_root)
        self.num_classes = len(class_labels(cfg.composite))
        if parent is not None:
            self.cache_dir = parent.cache_dir
        else:
            self.cache_dir = (
                Path(options.cache_dir).expanduser()
                if options.cache_dir
                else self.workdir / "cache"
            )
        self.progress = progress
        # A parent (the `paper` experiment) shares its data and trained networks.
        self._datasets: dict[tuple, Data] = parent._datasets if parent else {}
        self._results: dict[tuple, NetResult] = parent._results if parent else {}
        self.keep_features: set[str] = parent.keep_features if parent else set()

    def report(self, title: str, protocol: str | None = None) -> Report:
        """A report of this run: its title, the data (with any loud warnings about it) and the
        protocol (default: the config's)."""
        data = self.data()
        return Report(
            self.workdir, title, protocol or self.cfg.protocol, data.source, data.warnings
        )

    def say(self, message: str) -> None:
        if self.progress:
            self.progress(message)

    # ------------------------------------------------------------------ data

    def data(self) -> Data:
        """The samples and flows this config asks for; loaded once per run (and shared with a
        parent's other parts)."""
        key = self._data_key()
        if key not in self._datasets:
            self._datasets[key] = self._load()
        return self._datasets[key]

    def _data_key(self) -> tuple:
        c = self.cfg
        return (
            self.roots,
            c.composite,
            c.synthetic,
            c.synthetic_seed,
            c.apex_policy,
            c.on_error,
            c.flow,
        )

    def derive(self, **changes) -> Context:
        """This run with another config (``cfg.replace(**changes)``: e.g. another flow, input size
        or training), sharing the data already loaded and the networks already trained."""
        return Context(
            self.cfg.replace(**changes),
            self.workdir,
            options=self.options,
            progress=self.progress,
            parent=self,
        )

    def _load(self) -> Data:
        c = self.cfg
        casme2_root, samm_root, smic_root = self.roots
        mega = c.composite == "megc2019"
        if casme2_root is None:
            roots = synthetic.ensure(self.cache_dir, size=c.synthetic, seed=c.synthetic_seed)
            casme2_root, samm_root, smic_root = roots["casme2"], roots["samm"], roots["smic"]
            name = f"synthetic-{c.synthetic}-seed{c.synthetic_seed}" + ("-megc2019" if mega else "")
            source = (
                f"the synthetic database ({c.synthetic}, seed {c.synthetic_seed}) "
                f"in {roots['casme2'].parent}"
            )
        elif mega:
            if smic_root is None:
                raise ValueError(
                    "the MEGC 2019 composite needs --smic_root as well as --casme2_root and "
                    "--samm_root"
                )
            name = "megc2019"
            source = (
                f"SMIC-HS at {smic_root}, CASME II at {casme2_root} and SAMM at {samm_root} "
                "(MEGC 2019 composite)"
            )
        else:
            name = "megc2018"
            source = f"CASME II at {casme2_root} and SAMM at {samm_root} (MEGC 2018 composite)"
        self.say(f"reading {source}")
        if mega:
            samples = composite.megc2019(
                smic_root, casme2_root, samm_root, apex_policy=c.apex_policy, on_error=c.on_error
            )
        else:
            samples = composite.megc2018(
                casme2_root, samm_root, apex_policy=c.apex_policy, on_error=c.on_error
            )
        if not samples:
            raise ValueError(f"no usable samples in {source}")
        self.say(samples.summary())
        flows, _ = cache.load_or_compute(
            samples, c.flow, self.cache_dir, name, progress=self.progress
        )
        return Data(
            samples,
            flows,
            source,
            labels=np.array([s.label for s in samples], np.int32),
            subjects=[s.subject for s in samples],
            datasets=[s.dataset for s in samples],
        )

    def inputs(self, representation: str) -> tuple[np.ndarray, np.ndarray]:
        """Network inputs ``[N, size, size, C]`` of the onset->apex and onset->apex+1 flows."""
        data = self.data()
        prepare = jax.jit(
            functools.partial(flow.input_maps, size=self.cfg.size, kind=representation)
        )
        return np.asarray(prepare(data.flows.apex)), np.asarray(prepare(data.flows.augmented))

    # ------------------------------------------------------------------ training

    def groups(self) -> list[list[str]]:
        return train.subject_groups(self.data().subjects, self.cfg.num_folds)

    def evaluate(
        self,
        net: str,
        *,
        features: bool = False,
        final: bool = False,
        eval_every: int = 0,
        name: str | None = None,
    ) -> NetResult:
        """Trains ``net`` on every fold (and seed), pools the held-out predictions and scores them.

        Writes ``runs/<name or net>/metrics.jsonl``: the training curve, then one line per fold and
        seed (its held-out subjects and accuracy), then one pooled line per seed. A second call with
        the same config returns the same result without training again. ``eval_every`` records the
        held-out predictions every so many epochs (``loso.eval_logits``: for analysis only).
        """
        c = self.cfg
        features = features or net in self.keep_features
        final = final or (c.save_model and net == c.headline)
        key = (net, c.size, c.num_folds, c.train, c.conv, self._data_key())
        cached = self._results.get(key)
        if (
            cached
            and (cached.loso.features is not None or not features)
            and (cached.loso.states is not None or not final)
            and (cached.loso.eval_epochs or not eval_every)
        ):
            return cached
        model, rep = models.by_name(net, num_classes=self.num_classes, conv=c.conv)
        data = self.data()
        x, xa = self.inputs(rep)
        run_dir = self.workdir / "runs" / (name or net)
        run_dir.mkdir(parents=True, exist_ok=True)
        groups = self.groups()
        self.say(
            f"{net}: {len(groups)} folds x {len(c.train.seeds)} seeds, {c.train.epochs} epochs, "
            f"{x.shape[1]}x{x.shape[2]}x{x.shape[3]} inputs"
        )
        tc = dataclasses.replace(c.train, train_final=final)
        loso = train.train_loso(
            model,
            x,
            xa,
            data.labels,
            data.subjects,
            tc,
            groups=groups,
            workdir=run_dir,
            progress=self.progress,
            keep_states=final,
            features=features,
            eval_every=eval_every,
        )
        per_seed = []
        for s in range(len(loso.seeds)):
            held = loso.preds[s] >= 0
            per_seed.append(
                metrics.by_group(
                    data.labels[held],
                    loso.preds[s][held],
                    np.asarray(data.datasets)[held],
                    self.num_classes,
                )
            )
        result = NetResult(net, rep, models.count_params(model, x.shape[1:]), per_seed, loso)
        _write_jsonl(run_dir / "metrics.jsonl", result, data)
        if final:
            result.model_dir = self._save_model(net, rep, loso)
        row = result.row()
        self.say(
            f"{net}: accuracy {row['accuracy']:.2%} (majority {row['majority']:.2%}), "
            f"UF1 {row['uf1']:.3f}, UAR {row['uar']:.3f}, {loso.seconds:.0f} s"
        )
        self._results[key] = result
        return result

    def _save_model(self, net: str, rep: str, loso: train.LosoResult) -> Path:
        """Saves the first seed's final run (trained on every subject) as a model folder."""
        c, data = self.cfg, self.data()
        r = next(i for i, h in enumerate(loso.plan.held_out) if h == train.FINAL)
        state = jax.tree.map(lambda a: np.asarray(a[r]), loso.states)
        spec = inference.ModelSpec(
            net=net,
            representation=rep,
            input_size=c.size,
            flow=c.flow,
            class_names=tuple(class_labels(c.composite)),
            trained_on={
                "data": data.source,
                "samples": len(data.samples),
                "subjects": len(set(data.subjects)),
                "seed": int(loso.plan.seeds[r]),
                "protocol": c.protocol,
            },
        )
        variables = {
            "params": state.params,
            "batch_stats": state.batch_stats,
            "mean": state.mean,
            "scale": state.scale,
        }
        path = inference.save(self.workdir / "models" / net, spec, variables)
        self.say(
            f"{net}: final model (every subject, seed {spec.trained_on['seed']}) saved to {path}"
        )
        return path

    def model_dir(self, net: str) -> Path | None:
        """Where the final model of ``net`` was saved in this run (None if it was not)."""
        return next(
            (r.model_dir for k, r in self._results.items() if k[0] == net and r.model_dir), None
        )

    def model_text(self, net: str) -> str:
        """A report paragraph on the saved final model of ``net`` ('' if none)."""
        path = self.model_dir(net)
        if path is None:
            return ""
        return (
            f"Final model: `{os.path.relpath(path, self.workdir)}` — {net} trained on every "
            "subject "
            f"(not scored: it has no held-out data). On new clips: `python -m merjax.predict "
            f"--model={path} --onset=ONSET.jpg --apex=APEX.jpg`."
        )


def _write_jsonl(path: Path, result: NetResult, data: Data) -> None:
    """Appends one line per fold and seed, then per seed its pooled held-out predictions and their
    scores, to the training curve the trainer wrote."""
    loso = result.loso
    lines = []
    for r, held in enumerate(loso.plan.held_out[: len(loso.losses)]):
        if held == train.FINAL:
            continue
        seed = int(loso.plan.seeds[r])
        s = loso.seeds.index(seed)
        idx = loso.plan.tested(r)
        correct = loso.preds[s][idx] == data.labels[idx]
        lines.append(
            {
                "kind": "fold",
                "net": result.net,
                "seed": seed,
                "held_out": list(held),
                "n": int(len(idx)),
                "accuracy": float(correct.mean()) if len(idx) else None,
                "final_train_loss": float(loso.losses[r, -1]),
                "final_train_accuracy": float(loso.train_accuracy[r, -1]),
            }
        )
    for s, (seed, per) in enumerate(zip(loso.seeds, result.per_seed, strict=True)):
        # The pooled held-out predictions themselves (-1: in no held-out group), so every score
        # above can be recomputed from this file.
        lines.append(
            {
                "kind": "predictions",
                "net": result.net,
                "seed": seed,
                "labels": data.labels.tolist(),
                "preds": loso.preds[s].tolist(),
                "subjects": list(data.subjects),
                "datasets": list(data.datasets),
            }
        )
        lines.append({"kind": "pooled", "net": result.net, "seed": seed} | per)
    with open(path, "a") as f:
        f.write("".join(json.dumps(line) + "\n" for line in lines))


def timed(fn: Callable, *args, repeats: int) -> np.ndarray:
    """Seconds per call of a jitted ``fn`` (after one warm-up call), ``repeats`` times."""
    jax.block_until_ready(fn(*args))
    out = np.empty(repeats)
    for i in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        out[i] = time.perf_counter() - t0
    return out


def summary(
    experiment: str, cfg: Config, data: Data, head: str, results: dict[str, dict], **extra
) -> dict:
    """summary.json: the headline configuration's accuracy, UF1 and UAR first, then the rest."""
    h = results[head]
    return {
        "experiment": experiment,
        "headline": head,
        "accuracy": h["accuracy"],
        "accuracy_std": h["accuracy_std"],
        "uf1": h["uf1"],
        "uf1_std": h["uf1_std"],
        "uar": h["uar"],
        "uar_std": h["uar_std"],
        "majority": h["majority"],
        "profile": cfg.profile,
        "protocol": cfg.protocol,
        "data": data.source,
        "samples": len(data.samples),
        "subjects": len(set(data.subjects)),
        "warnings": data.warnings,
        "skipped": [str(p) for p in data.samples.skipped],
        "notes": data.notes,
        "configs": results,
        "config": dataclasses.asdict(cfg),
        "device": f"{jax.devices()[0].device_kind} ({jax.default_backend()})",
    } | extra

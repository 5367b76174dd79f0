"""One network on the data of an experiment: every fold and seed trained, pooled, scored, logged.

    result = train_and_score("vy-3cl", data, cfg, workdir)   # NetResult
    result.row()                                      # what a table or summary.json shows

Writes ``WORKDIR/runs/<name>/metrics.jsonl``: the training curve (the trainer's lines), then one
line per fold and seed (its held-out subjects and accuracy), per seed the pooled held-out
predictions and their scores, so that every number of a table can be recomputed from the file.
With ``final``, the first seed's run on every subject is saved as a model folder
(``WORKDIR/models/<net>``) for ``python -m merjax.predict``.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import jax
import numpy as np

from merjax import flow, hosts, inference, metrics, models, train
from merjax.config import Config
from merjax.data.loading import Data

log = logging.getLogger(__name__)


@dataclasses.dataclass
class NetResult:
    """One network's pooled held-out results over every seed."""

    net: str
    representation: str
    params: int
    per_seed: list[dict]  # metrics.by_group per seed ("all", then each dataset)
    loso: train.LosoResult
    # 95% intervals by resampling subjects (metrics.bootstrap_ci), per group ("all", then each
    # dataset) and metric, of the seed-averaged score
    intervals: dict[str, dict[str, tuple[float, float]]] = dataclasses.field(default_factory=dict)
    model_dir: Path | None = None  # the saved final model (trained on every subject), if any

    def covers(self, *, features: bool, final: bool, eval_every: int) -> bool:
        """Whether this result holds what a request needs (features, the final run's states,
        held-out logits by epoch), so it can answer it without training again."""
        loso = self.loso
        return (
            (loso.features is not None or not features)
            and (loso.states is not None or not final)
            and (bool(loso.eval_epochs) or not eval_every)
        )

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
            out[f"{key}_ci"] = list(self.intervals.get("all", {}).get(key, ()))
        out["majority"] = self.per_seed[0]["all"]["majority"]
        out["n"] = self.per_seed[0]["all"]["n"]
        out["per_dataset"] = {
            g: {k: self.mean_std(k, g)[0] for k in ("accuracy", "uf1", "uar")}
            | {f"{k}_ci": list(self.intervals.get(g, {}).get(k, ())) for k in ("uf1", "uar")}
            | {"n": v["n"]}
            for g, v in self.per_seed[0].items()
            if g != "all"
        }
        out["seeds"] = list(self.loso.seeds)
        out["final_train_loss"] = float(np.nanmean(self.loso.losses[:, -1]))
        out["seconds"] = round(self.loso.seconds, 1)
        return out


def _per_seed(preds_SxN: np.ndarray, data: Data) -> list[dict]:
    """metrics.by_group of each seed's held-out predictions (-1: in no held-out group)."""
    out = []
    for preds in preds_SxN:
        held = preds >= 0
        datasets = np.asarray(data.datasets)[held]
        out.append(metrics.by_group(data.labels[held], preds[held], datasets, data.num_classes))
    return out


def network_inputs(data: Data, representation: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Network inputs ``[N, size, size, C]`` of the onset->apex and onset->apex+1 flows."""
    prepare = jax.jit(functools.partial(flow.input_maps, size=size, kind=representation))
    return np.asarray(prepare(data.flows.apex)), np.asarray(prepare(data.flows.augmented))


def train_and_score(
    net: str,
    data: Data,
    cfg: Config,
    workdir: str | Path,
    *,
    features: bool = False,
    final: bool = False,
    eval_every: int = 0,
    name: str | None = None,
    groups: list[list[str]] | None = None,
    progress: Callable[[str], None] | None = log.info,
) -> NetResult:
    """Trains ``net`` on every fold and seed of ``data`` (``cfg``: input size, folds, protocol,
    execution), pools the held-out predictions and scores them, per seed and dataset, with
    95% intervals by resampling subjects (:func:`merjax.metrics.bootstrap_ci`).

    ``features`` keeps the held-out penultimate features, ``final`` also trains a run per seed on
    every subject (saved as a model folder, never scored), ``eval_every`` records held-out logits
    every so many epochs (``loso.eval_logits``: for analysis only). ``name`` names the run folder
    (default: ``net``). ``groups`` (lists of subjects, each held out by one fold, trained on
    every other subject) replaces the folds ``cfg.num_folds`` makes: e.g. one group per
    database, for training on some databases and testing on another."""
    say = progress or (lambda _: None)
    num_classes = data.num_classes
    model, representation = models.by_name(net, num_classes=num_classes, conv_impl=cfg.conv_impl)
    x, augmented = network_inputs(data, representation, cfg.size)
    run_dir = Path(workdir) / "runs" / (name or net)
    groups = groups or train.subject_groups(data.subjects, cfg.num_folds)
    shape = "x".join(str(d) for d in x.shape[1:])
    label = name or net  # e.g. resnet8-tvl1: which of several runs of one network this is
    say(
        f"{label}: {len(groups)} fold(s) x {len(cfg.train.seeds)} seed(s), "
        f"{cfg.train.epochs} epochs, {shape} inputs"
    )
    loso = train.train_loso(
        model,
        x,
        augmented,
        data.labels,
        data.subjects,
        dataclasses.replace(cfg.train, train_final=final),
        cfg.execution,
        groups=groups,
        workdir=run_dir,
        progress=progress,
        keep_states=final,
        features=features,
        eval_every=eval_every,
    )
    per_seed = _per_seed(loso.preds, data)
    result = NetResult(
        net,
        representation,
        models.count_params(model, x.shape[1:]),
        per_seed,
        loso,
        intervals(loso.preds, data, num_classes),
    )
    hosts.main_only(
        lambda: train.MetricsLog(run_dir / "metrics.jsonl").append(_result_lines(result, data)),
        f"writing {run_dir / 'metrics.jsonl'}",
    )
    if final:
        folder = Path(workdir) / "models" / net
        hosts.main_only(lambda: save_final_model(result, data, cfg, folder), f"saving {folder}")
        result.model_dir = folder
        seed = int(loso.plan.seeds[_final_run(loso)])
        say(f"{net}: final model (every subject, seed {seed}) saved to {result.model_dir}")
    row = result.row()
    say(
        f"{label}: accuracy {row['accuracy']:.2%} (majority {row['majority']:.2%}), "
        f"UF1 {row['uf1']:.3f}, UAR {row['uar']:.3f}, {loso.seconds:.0f} s"
    )
    return result


def intervals(
    preds_SxN: np.ndarray, data: Data, num_classes: int
) -> dict[str, dict[str, tuple[float, float]]]:
    """95% intervals of accuracy, UF1 and UAR by resampling subjects (1,000 resamples, seed 0),
    over the held-out samples (-1: in no held-out group), whole and per dataset."""
    held = (preds_SxN >= 0).all(0)
    labels, subjects = data.labels[held], np.asarray(data.subjects)[held]
    datasets, preds = np.asarray(data.datasets)[held], preds_SxN[:, held]
    out = {}
    for group in ["all", *sorted(set(datasets.tolist()))]:
        keep = np.ones(len(labels), bool) if group == "all" else datasets == group
        if not keep.any():
            continue
        out[group] = {
            m: metrics.bootstrap_ci(
                labels[keep], preds[:, keep], subjects[keep], num_classes, metric=m
            )
            for m in ("accuracy", "uf1", "uar")
        }
    return out


def best_test_epoch(result: NetResult, data: Data) -> dict:
    """NOT A VALID RESULT: each score as the papers that pick epochs on test subjects would
    report it: for each held-out subject, the evaluated epoch where that subject scored best by
    that same metric (:func:`merjax.metrics.best_test_epoch_predictions`), pooled, mean over
    seeds; and the epochs chosen by UF1. The fixed final epoch is always among the candidates,
    so the accuracy can never fall below the valid one. Needs ``eval_every`` in
    :func:`train_and_score` (else the scores are None)."""
    loso = result.loso
    if loso.eval_logits is None:
        return {"uf1": None, "uar": None, "accuracy": None, "epochs": []}
    subjects = np.asarray(data.subjects)
    per_seed: dict[str, list[float]] = {k: [] for k in ("uf1", "uar", "accuracy")}
    chosen_epochs: list[int] = []
    epochs = list(loso.eval_epochs) + [loso.losses.shape[1]]
    for s, seed in enumerate(loso.seeds):
        # the evaluated epochs, then the valid (final) predictions
        preds_ExN = np.concatenate([train.predictions(loso.eval_logits[:, s]), loso.preds[s][None]])
        held_out = [
            np.asarray(loso.plan.tested(r), int)
            for r in range(len(loso.losses))
            if int(loso.plan.seeds[r]) == seed and loso.plan.held_out[r] != train.FINAL
        ]
        groups = [
            idx[subjects[idx] == subject]
            for idx in held_out
            for subject in dict.fromkeys(subjects[idx].tolist())
        ]
        for metric, scores in per_seed.items():
            picked, chosen = metrics.best_test_epoch_predictions(
                preds_ExN, data.labels, groups, data.num_classes, metric
            )
            held = picked >= 0
            scores.append(
                metrics.summarize(data.labels[held], picked[held], data.num_classes)[metric]
            )
            if metric == "uf1":
                chosen_epochs += [epochs[c] for c in chosen]
    return {k: float(np.mean(v)) for k, v in per_seed.items()} | {"epochs": chosen_epochs}


def train_together(
    nets: Sequence[str],
    data: Data,
    cfg: Config,
    workdir: str | Path,
    *,
    name: str,
    progress: Callable[[str], None] | None = None,
    keep_states: bool = False,
) -> list[NetResult]:
    """Networks of one architecture on different representations (e.g. ``vy-3cl`` and
    ``vx-3cl``: the same parameters, other inputs) trained as one program: every (network,
    fold, seed) run side by side, each network's runs on its own inputs only (``pools``). The
    results are those of :func:`train_and_score` for each, from one compilation instead of one
    per network. The trainer's log is ``runs/<name>/metrics.jsonl``; each network's held-out
    lines are in ``runs/<net>/metrics.jsonl``. ``keep_states`` keeps every run's trained
    state (each result's ``loso.states``, its runs in its plan's order)."""
    say = progress or (lambda _: None)
    num_classes = data.num_classes
    built = [models.by_name(n, num_classes=num_classes, conv_impl=cfg.conv_impl) for n in nets]
    shapes = {}
    tables = []
    for net, (module, representation) in zip(nets, built, strict=True):
        x, augmented = network_inputs(data, representation, cfg.size)
        tables.append((x, augmented))
        shapes.setdefault((module, x.shape[1:]), []).append(net)
    if len(shapes) != 1:
        raise ValueError(
            f"train_together needs one architecture and input shape, got {list(shapes.values())}"
        )
    module = built[0][0]
    n = len(data.labels)
    groups = train.subject_groups(data.subjects, cfg.num_folds)
    tagged = [[f"{k}|{s}" for s in g] for k in range(len(nets)) for g in groups]
    subjects = [f"{k}|{s}" for k in range(len(nets)) for s in data.subjects]
    say(
        f"{name}: {len(nets)} networks x {len(groups)} fold(s) x {len(cfg.train.seeds)} seed(s) "
        f"as one program, {cfg.train.epochs} epochs"
    )
    loso = train.train_loso(
        module,
        np.concatenate([x for x, _ in tables]),
        np.concatenate([a for _, a in tables]),
        np.tile(data.labels, len(nets)),
        subjects,
        cfg.train,
        cfg.execution,
        groups=tagged,
        workdir=Path(workdir) / "runs" / name,
        progress=progress,
        pools=np.repeat(np.arange(len(nets)), n),
        keep_states=keep_states,
    )
    params = models.count_params(module, tables[0][0].shape[1:])
    out = []
    for k, (net, (_, representation)) in enumerate(zip(nets, built, strict=True)):
        part = _pool_result(loso, k, n)
        per_seed = _per_seed(part.preds, data)
        result = NetResult(
            net,
            representation,
            params,
            per_seed,
            part,
            intervals(part.preds, data, num_classes),
        )
        folder = Path(workdir) / "runs" / net
        hosts.main_only(
            lambda: train.MetricsLog(folder / "metrics.jsonl").append(_result_lines(result, data)),
            f"writing {folder / 'metrics.jsonl'}",
        )
        out.append(result)
    return out


def _pool_result(loso: train.LosoResult, k: int, n: int) -> train.LosoResult:
    """Pool ``k``'s part of a :func:`train_together` result, as its own LOSO result: its
    samples ``k*n .. k*n + n - 1`` renumbered from 0, its runs, their held-out subjects untagged."""
    tag = f"{k}|"
    runs = [r for r in range(loso.plan.num_real) if loso.plan.held_out[r][0].startswith(tag)]
    plan = loso.plan
    total = len(loso.labels)  # samples of every pool
    copies = plan.train_mask.shape[1] // total  # 2 with the onset->apex+1 items after them
    item_cols = np.concatenate([c * total + np.arange(k * n, (k + 1) * n) for c in range(copies)])
    part_plan = train.Plan(
        plan.train_mask[runs][:, item_cols],
        plan.test_idx[runs] - k * n,
        plan.test_valid[runs],
        plan.seeds[runs],
        tuple(tuple(s[len(tag) :] for s in plan.held_out[r]) for r in runs),
        len(runs),
    )
    return dataclasses.replace(
        loso,
        logits=loso.logits[:, k * n : (k + 1) * n],
        preds=loso.preds[:, k * n : (k + 1) * n],
        labels=loso.labels[k * n : (k + 1) * n],
        plan=part_plan,
        losses=loso.losses[runs],
        train_accuracy=None if loso.train_accuracy is None else loso.train_accuracy[runs],
        features=None,
        states=None
        if loso.states is None
        else jax.tree.map(lambda a: a[np.array(runs)], loso.states),
        eval_epochs=(),
        eval_logits=None,
    )


def save_final_model(result: NetResult, data: Data, cfg: Config, path: Path) -> Path:
    """Saves the first seed's final run (trained on every subject) as a model folder."""
    loso = result.loso
    r = _final_run(loso)
    spec = inference.ModelSpec(
        net=result.net,
        representation=result.representation,
        input_size=cfg.size,
        flow=cfg.flow,
        class_names=data.class_names,
        trained_on={
            "data": data.source,
            "samples": len(data.samples),
            "subjects": len(set(data.subjects)),
            "seed": int(loso.plan.seeds[r]),
            "protocol": cfg.protocol,
        },
        **calibration(loso, int(loso.plan.seeds[r])),
        flow_range=flow_range(data.flows.apex),
    )
    return inference.save(path, spec, run_variables(loso.states, r))


def calibration(loso: train.LosoResult, seed: int) -> dict:
    """Temperature scaling for a final model of ``seed``, fitted on that seed's pooled held-out
    LOSO logits: the only predictions of this protocol on clips the network did not train on
    (the final model itself trained on every subject, so it has none). Returns
    :class:`merjax.inference.ModelSpec`'s ``temperature`` and ``calibration`` (ECE before and
    after on those clips: fitted and measured on the same clips, so the after is optimistic)."""
    s = loso.seeds.index(seed)
    held = loso.preds[s] >= 0
    logits, labels = loso.logits[s][held], loso.labels[held]
    t = metrics.fit_temperature(logits, labels)
    return {
        "temperature": t,
        "calibration": {
            "method": "temperature scaling on the held-out LOSO logits",
            "clips": int(held.sum()),
            "seed": seed,
            "ece_before": metrics.expected_calibration_error(metrics.softmax(logits), labels),
            "ece_after": metrics.expected_calibration_error(metrics.softmax(logits, t), labels),
        },
    }


def flow_range(flows_NxHxWx2: np.ndarray) -> dict:
    """What the training clips' flow looks like, for flagging a new clip outside it: the 99th
    percentile over clips of each clip's largest flow magnitude (pixels, at the frame size)."""
    peak = inference.peak_magnitude(flows_NxHxWx2)
    return {"magnitude_p99": float(np.percentile(peak, 99)), "clips": int(len(peak))}


def run_variables(states: train.RunState, r: int) -> dict:
    """Run ``r``'s variables out of the runs' stacked states, as :class:`inference.Model` and
    model folders hold them (weights, batch statistics, the normalisation)."""
    s = jax.tree.map(lambda a: np.asarray(a[r]), states)
    return {"params": s.params, "batch_stats": s.batch_stats, "mean": s.mean, "scale": s.scale}


def _final_run(loso: train.LosoResult) -> int:
    """The first seed's run on every subject (``train_final``)."""
    return next(i for i, h in enumerate(loso.plan.held_out) if h == train.FINAL)


def _result_lines(result: NetResult, data: Data) -> list[dict]:
    """One line per fold and seed, then per seed its pooled held-out predictions (-1: in no
    held-out group) with their logits, and their scores."""
    loso = result.loso
    lines = []
    for r, held in enumerate(loso.plan.held_out[: len(loso.losses)]):
        if held == train.FINAL:
            continue
        seed = int(loso.plan.seeds[r])
        idx = loso.plan.tested(r)
        correct = loso.preds[loso.seeds.index(seed)][idx] == data.labels[idx]
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
        lines.append(
            {
                "kind": "predictions",
                "net": result.net,
                "seed": seed,
                "labels": data.labels.tolist(),
                "preds": loso.preds[s].tolist(),
                # the held-out logits themselves (null: in no held-out group), so that runs of
                # other programs (another strategy, several processes) compare at a tolerance
                "logits": np.round(loso.logits[s], 6).tolist(),
                "subjects": list(data.subjects),
                "datasets": list(data.datasets),
            }
        )
        lines.append({"kind": "pooled", "net": result.net, "seed": seed} | per)
    return lines

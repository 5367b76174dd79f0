"""The run context every experiment gets: its config and workdir, and memory of what it loaded
and trained, so that nothing is done twice in one run.

    ctx = Context(cfg, "runs/x", options=RunOptions(cache_dir="~/.cache/merjax"))
    data = ctx.data()                       # samples + flows (synthetic database by default)
    result = ctx.train_and_score("vy-3cl")  # every fold trained, pooled, scored; reused if asked
    rep = ctx.report("Input study", data)   # report.md, tables, figures: written together

The work itself is elsewhere: loading in :mod:`merjax.data.loading`, training and scoring a
network in :mod:`merjax.evaluation`, writing in :mod:`merjax.report`. :mod:`merjax.runner`
builds the context; experiments (``experiments/*.py``) only use it.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from merjax import evaluation, hosts, report, reuse
from merjax.config import Config
from merjax.data import loading
from merjax.evaluation import NetResult

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """What the command line chose besides the experiment: an experiment that runs others
    (``paper``) passes them on unchanged."""

    profile: str = "quick"
    overrides: tuple[str, ...] = ()  # --set name=value
    seeds: tuple[int, ...] | None = None
    roots: loading.Roots = loading.Roots()  # none: the synthetic database
    cache_dir: str | Path | None = (
        None  # synthetic database and flow cache (default: workdir/cache)
    )
    # --test_root / --test_fps: unlabelled test videos (the challenge experiment); none: its
    # synthetic unlabelled set.
    test_root: str | Path | None = None
    test_fps: float | None = None


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
        config: bytes | None = None,
    ):
        self.cfg, self.workdir, self.options = cfg, Path(workdir), options
        self.config_json = config  # config.json, written with the report that it describes
        if parent is not None:
            self.cache_dir = parent.cache_dir
        elif options.cache_dir:
            self.cache_dir = Path(options.cache_dir).expanduser()
        else:
            self.cache_dir = self.workdir / "cache"
        self.progress = progress
        # A parent (the `paper` experiment) shares its data and trained networks.
        self._datasets: dict[tuple, loading.Data | loading.LongVideos] = (
            parent._datasets if parent else {}
        )
        self._results: dict[tuple, NetResult] = parent._results if parent else {}
        self.keep_features: set[str] = parent.keep_features if parent else set()
        self._counter: _Counter = parent._counter if parent else _Counter()
        # What loading the data said (skips, notes): said once per run, not once per class set
        self._said: set[str] = parent._said if parent else set()

    def say(self, message: str) -> None:
        if self.progress:
            self.progress(message)

    def expect_networks(self, total: int) -> None:
        """Announces how many networks this experiment (or part of one) will train, so each
        training says ``network k/total`` and an ETA for the rest; without it, ``network k``."""
        self._counter.start(total)

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

    def data(self) -> loading.Data:
        """The samples and flows this config asks for; loaded once per run (and shared with a
        parent's other parts)."""
        c, key = self.cfg, self._data_key()
        if c.composite is None:
            raise ValueError("this experiment reads no clips (its config's composite is None)")
        if key not in self._datasets:
            # Process 0 builds the synthetic database and the flow cache; the others read them.
            self._datasets[key] = hosts.first(
                lambda: self._saying_once(
                    lambda say: loading.load(
                        c.composite,
                        self.options.roots,
                        c.flow,
                        self.cache_dir,
                        synthetic_size=c.synthetic,
                        synthetic_seed=c.synthetic_seed,
                        apex_policy=c.apex_policy,
                        on_error=c.on_error,
                        bit_depth=c.bit_depth,
                        num_folds=c.num_folds,
                        progress=say,
                    )
                ),
                "loading the data",
            )
        return self._datasets[key]

    def _saying_once(self, load):
        """Runs ``load(progress)`` with a progress sink, and the loaders' skip warnings, that leave
        out the skip and note lines this run has said already (a database read for three class
        sets lists its skipped rows once, and not again in the summary after the warnings)."""
        said = self._said

        def key(line: str) -> str:
            return line.strip().removeprefix("warning: ").removeprefix("skipped ")

        def say(text: str) -> None:
            lines, out = text.split("\n"), []
            for i, line in enumerate(lines):
                k = key(line)
                if line.startswith(("skipped ", "note: ", "  ", "warning: ")) and k in said:
                    continue
                if line.endswith("sample(s):") and all(
                    key(x) in said for x in lines[i + 1 :] if x.startswith("  ")
                ):
                    continue  # a header whose every item was said
                if line.startswith(("note: ", "  ", "warning: ")):
                    said.add(k)
                out.append(line)
            if out and self.progress:
                self.progress("\n".join(out))

        class _Once(logging.Filter):
            def filter(self, record: logging.LogRecord) -> bool:
                k = key(record.getMessage())
                if not record.getMessage().startswith("skipped "):
                    return True
                if k in said:
                    return False
                said.add(k)
                return True

        loggers = [logging.getLogger("merjax.data.frames")]  # where the loaders warn of skips
        once = _Once()
        for lg in loggers:
            lg.addFilter(once)
        try:
            return load(say)
        finally:
            for lg in loggers:
                lg.removeFilter(once)

    def long_videos(self, names: Sequence[str], faces: str = "drawn") -> loading.LongVideos:
        """The long videos of every database whose root was given, or without roots the
        synthetic ones in the layouts of ``names`` (``faces``: drawn, or the photograph); loaded
        once per run."""
        c = self.cfg
        key = (
            "long videos",
            self.options.roots,
            tuple(names),
            c.synthetic,
            c.synthetic_seed,
            faces,
        )
        if key not in self._datasets:
            self._datasets[key] = hosts.first(
                lambda: loading.load_long_videos(
                    self.options.roots,
                    names,
                    self.cache_dir,
                    synthetic_size=c.synthetic,
                    synthetic_seed=c.synthetic_seed,
                    synthetic_faces=faces,
                    progress=self.progress,
                ),
                "loading the long videos",
            )
        return self._datasets[key]

    def _data_key(self) -> tuple:
        c = self.cfg
        return (
            self.options.roots,
            c.composite,
            c.synthetic,
            c.synthetic_seed,
            c.apex_policy,
            c.on_error,
            c.bit_depth,
            c.flow,
        )

    def train_and_score(
        self,
        net: str,
        *,
        features: bool = False,
        final: bool = False,
        eval_every: int = 0,
        name: str | None = None,
        groups: list[list[str]] | None = None,
    ) -> NetResult:
        """``net`` trained on every fold and seed, pooled and scored
        (:func:`merjax.evaluation.train_and_score`); a second call with the same data, input size,
        folds (or ``groups``), protocol and convolutions returns the same result without training
        again. The headline network is also trained on every subject and saved when
        ``cfg.save_model``."""
        c = self.cfg
        features = features or net in self.keep_features
        final = final or (c.save_model and net == c.headline)
        folds = c.num_folds if groups is None else tuple(map(tuple, groups))
        key = (net, c.size, folds, c.train, c.conv_impl, self._data_key())
        cached = self._results.get(key)
        if cached and cached.covers(features=features, final=final, eval_every=eval_every):
            return cached
        data = self.data()
        self.say(self._counter.next(name or net))
        label = name or net
        kept = self.workdir / "runs" / label / reuse.FILE  # beside its metrics.jsonl
        stamp = reuse.key(
            net=net,
            name=label,
            size=c.size,
            folds=folds,
            train=c.train,
            conv_impl=c.conv_impl,
            data=self._data_key(),
            samples=[s.key for s in data.samples],
            eval_every=eval_every,
            features=features,
        )
        # A finished network of an earlier run in this workdir (one stopped by Ctrl-C, say) is
        # reused; one whose trained weights are needed (the saved final model) trains again.
        result, why = (None, "") if final else reuse.load(kept, stamp)
        if why:
            self.say(f"{label}: the kept result {str(kept)!r} is {why}: training again")
        if result is not None and result.covers(
            features=features, final=False, eval_every=eval_every
        ):
            row = result.row()
            self.say(
                f"{label}: reusing the network this workdir finished before ({kept}; same data, "
                f"protocol and code): accuracy {row['accuracy']:.2%}, UF1 {row['uf1']:.3f}"
            )
        else:
            result = evaluation.train_and_score(
                net,
                data,
                c,
                self.workdir,
                features=features,
                final=final,
                eval_every=eval_every,
                name=name,
                groups=groups,
                progress=self.progress,
            )
            hosts.main_only(lambda: reuse.save(kept, result, stamp), f"writing {kept}")
        self._results[key] = result
        return result

    def report(self, title: str, data, protocol: str | None = None) -> report.Report:
        """A report of this run: its title, the data it reports on (anything with a ``source``
        and ``warnings``: clips or long videos; the warnings come first, loud) and the protocol
        (default: the config's)."""
        rep = report.Report(
            self.workdir, title, protocol or self.cfg.protocol, data.source, data.warnings
        )
        if self.config_json is not None:
            rep.add_file("config.json", self.config_json)
        return rep

    def model_dir(self, net: str) -> Path | None:
        """Where the final model of ``net`` was saved in this run (None if it was not)."""
        return next(
            (r.model_dir for k, r in self._results.items() if k[0] == net and r.model_dir), None
        )

    def model_text(self, net: str) -> str:
        """A report paragraph on the saved final model of ``net`` ('' if none)."""
        return report.model_text(self.workdir, net, self.model_dir(net))


class _Counter:
    """Which network of the announced ones trains now, and when the rest should be done (the
    mean time of those already trained, compilation included, times those left)."""

    def __init__(self):
        self.total: int | None = None
        self.done = 0
        self.t0 = time.perf_counter()

    def start(self, total: int) -> None:
        self.total, self.done, self.t0 = total, 0, time.perf_counter()

    def next(self, net: str) -> str:
        if self.done == 0:  # from the first network on: loading the data is not training
            self.t0 = time.perf_counter()
        self.done += 1
        k, total = self.done, self.total
        if total is None or k > total:
            return f"network {k}: {net}"
        line = f"network {k}/{total}: {net}"
        if k > 1:
            left = (time.perf_counter() - self.t0) / (k - 1) * (total - k + 1)
            line += f" (the {total - k + 1} left: about {_duration(left)})"
        return line


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"

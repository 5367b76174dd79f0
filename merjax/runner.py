"""Finds an experiment file and runs it into a workdir.

Experiments are small Python files in the top-level ``experiments/`` folder of a source checkout
(one per experiment: its config per profile and what it trains and reports). Each defines::

    def config(profile: str) -> merjax.config.Config
    def run(ctx: merjax.context.Context) -> dict        # the summary.json it wrote
    def validate(cfg) -> None   # optional: a ValueError for a config it cannot report

:func:`run` ties one to a workdir, the data and the command-line options::

    from merjax import runner
    summary = runner.run("input_study", "runs/input", profile="quick")
    summary = runner.run("path/to/my_study.py", "runs/mine")     # any file with config and run
    print(summary["accuracy"], summary["majority"])

Where the experiments are: ``$MERJAX_EXPERIMENTS`` if set, else ``experiments/`` beside the
``merjax`` package (a clone or an editable install). A plain ``pip install`` of merjax brings the
library, not the experiments: point ``$MERJAX_EXPERIMENTS`` at a copy of the folder, or give a
file's path.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import importlib.util
import logging
import os
import sys
import time
import traceback
import types
from collections.abc import Callable, Sequence
from pathlib import Path

from merjax import config as config_lib
from merjax import console, environment, files, hosts
from merjax.context import Context, RunOptions
from merjax.data import composite
from merjax.data.databases import DatabaseSet
from merjax.data.loading import Roots

log = logging.getLogger(__name__)

PACKAGE_ROOT = Path(__file__).resolve().parent.parent


def experiments_dir() -> Path:
    """The folder the experiments are read from (it may not exist: see the module docstring)."""
    env = os.environ.get("MERJAX_EXPERIMENTS")
    return Path(env).expanduser() if env else PACKAGE_ROOT / "experiments"


def available() -> list[str]:
    """Names of the experiments in :func:`experiments_dir`, sorted."""
    folder = experiments_dir()
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.py") if not p.name.startswith("_"))


def find(experiment: str | Path) -> Path:
    """The file of ``experiment``: a name in :func:`experiments_dir` or a path to a ``.py`` file.

    An unknown name is a ValueError that lists the experiments there are."""
    text = str(experiment)
    if text.endswith(".py") or os.sep in text or "/" in text:
        path = Path(text).expanduser()
        if not path.is_file():
            raise ValueError(f"--experiment {text!r}: no such file")
        return path.resolve()
    path = experiments_dir() / f"{text}.py"
    if path.is_file():
        return path.resolve()
    names = available()
    if not names:
        raise ValueError(
            f"unknown experiment {text!r}: no experiments folder at {experiments_dir()} (a pip "
            "install "
            "brings the library, not experiments/: clone the repository, set MERJAX_EXPERIMENTS to "
            "its experiments/ folder, or give --experiment=path/to/file.py)"
        )
    raise ValueError(
        f"unknown experiment {text!r}; available: {', '.join(names)} (or a path to a .py file)"
    )


_LOADED: dict[Path, types.ModuleType] = {}


def load(experiment: str | Path) -> types.ModuleType:
    """The experiment's module (loaded once per file), checked to define ``config`` and ``run``."""
    path = find(experiment)
    if path not in _LOADED:
        name = f"merjax_experiment_{path.stem}_{abs(hash(str(path))) % 10**8}"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses and pickling look modules up by name
        try:
            spec.loader.exec_module(module)
        except SyntaxError as e:
            del sys.modules[name]
            raise ValueError(f"{path} line {e.lineno}: SyntaxError: {e.msg}") from None
        except BaseException:
            del sys.modules[name]
            raise
        for fn in ("config", "run"):
            if not callable(getattr(module, fn, None)):
                raise ValueError(
                    f"{path} is not an experiment: it defines no {fn}() "
                    "(an experiment file defines config(profile) and run(ctx))"
                )
        _LOADED[path] = module
    return _LOADED[path]


def make_config(
    experiment: str | Path,
    profile: str = "quick",
    overrides: Sequence[str] = (),
    seeds: Sequence[int] | None = None,
) -> config_lib.Config:
    """The experiment's config for ``profile``, with ``name=value`` overrides and seeds applied."""
    if profile not in config_lib.PROFILES:
        raise ValueError(
            f"unknown profile {profile!r}; expected one of {', '.join(config_lib.PROFILES)}"
        )
    cfg = load(experiment).config(profile)
    if seeds:
        cfg = cfg.replace(train=dataclasses.replace(cfg.train, seeds=tuple(int(s) for s in seeds)))
    return config_lib.override(cfg, overrides)


def raised_in_experiment(error: BaseException) -> bool:
    """Whether ``error`` was raised by the code of a loaded experiment file itself (a bug there,
    whose traceback the user needs), not by merjax on its behalf (one line is owed)."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return False
    files_ = {str(p) for p in _LOADED}
    return str(Path(frames[-1].filename).resolve()) in files_


def validate(module: types.ModuleType, cfg: config_lib.Config) -> None:
    """Checks, before any work, that the experiment can report what ``cfg`` asks: every network
    name is one merjax builds, and the experiment's own ``validate(cfg)`` (if it defines one)
    accepts the config. One ValueError line names the setting."""
    from merjax import models

    for net in cfg.nets:
        try:
            models.by_name(net)
        except ValueError as e:
            raise ValueError(f"nets: {e}") from None
    check = getattr(module, "validate", None)
    if check is not None:
        try:
            check(cfg)
        except ValueError as e:
            raise ValueError(str(e)) from None


def reads(module: types.ModuleType, cfg: config_lib.Config) -> tuple[DatabaseSet, ...]:
    """The data an experiment reads: its ``READS`` (sets of databases, the first its headline
    data: composites of clips, or long videos), else its config's composite."""
    if hasattr(module, "READS"):
        return tuple(module.READS)
    return (composite.spec(cfg.composite),)


def run(
    experiment: str | Path,
    workdir: str | Path,
    *,
    profile: str = "quick",
    overrides: Sequence[str] = (),
    seeds: Sequence[int] | None = None,
    casme2_root: str | Path | None = None,
    samm_root: str | Path | None = None,
    smic_root: str | Path | None = None,
    casme3_root: str | Path | None = None,
    samm_lv_root: str | Path | None = None,
    casme_sq_root: str | Path | None = None,
    csv_root: str | Path | None = None,
    cache_dir: str | Path | None = None,
    test_root: str | Path | None = None,
    test_fps: float | None = None,
    progress: Callable[[str], None] | None = log.info,
    parent: Context | None = None,
    command: str | None = None,
) -> dict:
    """Runs ``experiment`` end to end into ``workdir``; returns its summary.json.

    With ``parent`` (an experiment that runs others, as ``paper`` does), the options and the
    progress sink are the parent's, and the data and trained networks are shared with it.
    Progress lines also go to ``workdir/console.log`` (headed by ``command``, or this process's
    command line).
    """
    if parent is not None:
        options, progress = parent.options, parent.progress
    else:
        options = RunOptions(
            profile=profile,
            overrides=tuple(overrides),
            seeds=tuple(int(s) for s in seeds) if seeds else None,
            roots=Roots(
                casme2_root,
                samm_root,
                smic_root,
                casme3_root,
                samm_lv_root,
                casme_sq_root,
                csv_root,
            ),
            cache_dir=cache_dir,
            test_root=test_root,
            test_fps=test_fps,
        )
    module = load(experiment)
    name = Path(module.__file__).stem
    cfg = make_config(module.__file__, options.profile, options.overrides, options.seeds)
    validate(module, cfg)
    options.roots.check(reads(module, cfg))
    if not getattr(module, "READS_TEST_ROOT", False):
        for flag in ("test_root", "test_fps"):
            if getattr(options, flag) is not None:
                raise ValueError(
                    f"--{flag} is read only by an experiment of unlabelled test videos "
                    "(--experiment=challenge)"
                )
    elif options.test_fps is not None and options.test_root is None:
        raise ValueError("--test_fps without --test_root: the synthetic test videos are 30 fps")
    workdir = files.writable_dir(workdir, "--workdir")
    if options.cache_dir is not None:
        files.writable_dir(options.cache_dir, "--cache_dir")
    # Several processes run one experiment: the same settings, and folders they all see (process
    # 0 writes every file, the others read what it wrote). Both refused at start, in one line.
    hosts.agree(_digest(name, cfg, options), "settings (experiment, config, data roots)")
    for folder, flag in ((workdir, "--workdir"), (options.cache_dir, "--cache_dir")):
        if folder is not None and parent is None:
            hosts.check_shared(folder, flag)
    lock = files.WorkdirLock(workdir, progress)  # one run per workdir
    with contextlib.ExitStack() as stack:
        stack.enter_context(environment.float32())
        stack.enter_context(hosts.on_main(lock, f"locking {workdir}"))
        if parent is None and hosts.is_main():  # a run inside another writes to the parent's
            progress = stack.enter_context(console.Transcript(workdir, progress, command)).say
        t0 = time.perf_counter()
        doc, line = describe_config(name, Path(module.__file__), cfg)
        # config.json is written with the results it describes (by the report and again with
        # summary.json below), never before them: a rerun that dies must not leave a new config
        # beside the old run's report.
        config_json = files.json_bytes(doc, default=str)
        ctx = Context(
            cfg, workdir, options=options, progress=progress, parent=parent, config=config_json
        )
        ctx.say(line)
        # Temporaries of runs that were killed (kill -9 skips every cleanup) go now.
        for folder in (workdir, options.cache_dir):
            stray = files.clean_strays(folder) if folder is not None and hosts.is_main() else []
            if stray:
                ctx.say(
                    f"removed {len(stray)} temporary file(s) left in {str(folder)!r} by runs "
                    f"that were killed: {', '.join(p.name for p in stray[:3])}"
                    + (" ..." if len(stray) > 3 else "")
                )
        summary = module.run(ctx)
        if not isinstance(summary, dict):
            raise ValueError(
                f"{module.__file__}: run() must return a dict (the summary it wrote, e.g. "
                f"report.write(...)), got {type(summary).__name__}"
            )
        summary["seconds"] = round(time.perf_counter() - t0, 1)
        hosts.main_only(
            lambda: files.commit(
                {
                    workdir / "summary.json": files.json_bytes(summary),
                    workdir / "config.json": config_json,
                }
            ),
            f"writing {workdir / 'summary.json'}",
        )
    return summary


def _digest(name: str, cfg: config_lib.Config, options: RunOptions) -> str:
    """What every process of one run must share: the experiment, its config and the options
    (compared across processes at start)."""
    from merjax import checkpoint

    # The workdir is not in it: check_shared refuses one that is not the same folder for all.
    return checkpoint.digest([name, dataclasses.asdict(cfg), repr(options)])


def describe_config(name: str, file: Path, cfg: config_lib.Config) -> tuple[dict, str]:
    """What ``config.json`` holds (the resolved config, versions, backend, devices, the strategy
    training will use), and a one-line description of where the run goes."""
    from merjax import train
    from merjax.models import resolve_conv_impl

    env = environment.describe()
    execution = cfg.execution
    auto = execution.strategy == "auto"
    strategy, chunk = train.resolve(execution, processes=hosts.count())
    conv_impl = resolve_conv_impl(cfg.conv_impl)
    planned = "planned from device memory" if auto else chunk
    doc = {
        "experiment": name,
        "file": str(file),
        "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "argv": sys.argv,
        "strategy": {
            "requested": execution.strategy,
            "resolved": strategy,
            "chunk": planned if strategy == "chunked" else None,
        },
        "conv_impl": {"requested": cfg.conv_impl, "resolved": conv_impl},
        "config": dataclasses.asdict(cfg),
    } | env
    kinds = [d.split(" (")[0] for d in env["devices"]]
    devices = ", ".join(f"{kinds.count(k)} x {k}" for k in sorted(set(kinds), key=kinds.index))
    runs = ""
    if strategy == "chunked":
        runs = " sized to the device's memory" if auto else f" of {chunk} runs"
    return doc, (
        f"{name}: {devices} ({env['backend']}), strategy {strategy}{runs}"
        f"{' (auto)' if auto else ''}, {conv_impl} convolutions"
    )

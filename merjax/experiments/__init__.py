"""The paper's experiments: one module each, with its config and what it runs and reports.

Each module has ``config(profile) -> Config`` and ``run(ctx) -> summary``; :func:`run` ties them
to a workdir and the data::

    from merjax import experiments
    summary = experiments.run("input_study", workdir="runs/input", profile="quick")
    print(summary["accuracy"], summary["majority"])

Why here and not in a top-level ``experiments/`` folder: the experiments install with the
package, so notebooks and other code import them like the rest of merjax.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from merjax.experiments import common, config as config_lib
from merjax.experiments.report import Report, pct

log = logging.getLogger(__name__)

EXPERIMENTS = ("depth_study", "input_study", "similarity", "performance", "class_average_flow", "paper")


def module(name: str):
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; expected one of {', '.join(EXPERIMENTS)}")
    return importlib.import_module(f"merjax.experiments.{name}")


def make_config(name: str, profile: str = "quick", overrides: Sequence[str] = (),
                seeds: Sequence[int] | None = None) -> config_lib.Config:
    """The experiment's config for ``profile``, with ``name=value`` overrides and seeds applied."""
    cfg = module(name).config(profile)
    if seeds:
        cfg = cfg.replace(train=dataclasses.replace(cfg.train, seeds=tuple(int(s) for s in seeds)))
    return config_lib.override(cfg, overrides)


def check_workdir(workdir: str | Path) -> Path:
    path = Path(workdir).expanduser()
    if path.exists() and not path.is_dir():
        raise ValueError(f"--workdir {path} is a file, not a folder")
    path.mkdir(parents=True, exist_ok=True)
    return path


def run(
    name: str,
    workdir: str | Path,
    *,
    profile: str = "quick",
    overrides: Sequence[str] = (),
    seeds: Sequence[int] | None = None,
    casme2_root: str | Path | None = None,
    samm_root: str | Path | None = None,
    cache_dir: str | Path | None = None,
    progress: Callable[[str], None] | None = log.info,
    parent: common.Context | None = None,
) -> dict:
    """Runs experiment ``name`` end to end into ``workdir``; returns its summary.json."""
    workdir = check_workdir(workdir)
    t0 = time.perf_counter()
    if name == "paper":
        summary = _run_paper(workdir, profile=profile, overrides=overrides, seeds=seeds,
                             casme2_root=casme2_root, samm_root=samm_root, cache_dir=cache_dir,
                             progress=progress)
    else:
        cfg = make_config(name, profile, overrides, seeds)
        ctx = common.Context(cfg, workdir, casme2_root=casme2_root, samm_root=samm_root,
                             cache_dir=cache_dir, progress=progress, parent=parent)
        summary = module(name).run(ctx)
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    (workdir / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def _run_paper(workdir: Path, *, profile, overrides, seeds, casme2_root, samm_root, cache_dir, progress) -> dict:
    from merjax.experiments import paper

    cfg = make_config("paper", profile, overrides, seeds)
    shared = common.Context(cfg, workdir, casme2_root=casme2_root, samm_root=samm_root,
                            cache_dir=cache_dir or workdir / "cache", progress=progress)
    shared.keep_features.update(make_config("similarity", profile, overrides, seeds).nets)
    parts = {}
    for part in paper.PARTS:
        if progress:
            progress(f"=== {part} ===")
        parts[part] = run(part, workdir / part, profile=profile, overrides=overrides, seeds=seeds,
                          casme2_root=casme2_root, samm_root=samm_root,
                          cache_dir=shared.cache_dir, progress=progress, parent=shared)
    head = parts["performance"]
    data = shared.data()
    rep = Report(workdir, "The paper's experiments", head["protocol"], data.source)
    rep.text("\n".join(
        ["| experiment | headline | accuracy | UF1 | UAR | majority class | report |", "|" + "---|" * 7]
        + [f"| {p} | {s['headline']} | {pct(s['accuracy'])} | {s['uf1']:.3f} | {s['uar']:.3f} | "
           f"{pct(s['majority'])} | [{p}/report.md]({p}/report.md) |" for p, s in parts.items()]))
    keys = ("experiment", "headline", "accuracy", "accuracy_std", "uf1", "uf1_std", "uar", "uar_std", "majority")
    return rep.write({k: head[k] for k in keys} | {
        "experiment": "paper", "profile": profile, "protocol": head["protocol"], "data": data.source,
        "parts": {p: {k: s[k] for k in keys + ("seconds",)} for p, s in parts.items()},
    })

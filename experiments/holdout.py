"""Beyond the paper: does a model work on faces of a database it was not trained on?

    python -m merjax.main --experiment=holdout                  # synthetic data, quick profile
    python -m merjax.main --experiment=holdout --profile=paper \\
        --casme2_root=/data/CASME2 --samm_root=/data/SAMM [--smic_root=... --casme3_root=...]

1. MEGC 2018's hold-out-database evaluation: train on all of CASME II and test on all of SAMM,
   then the reverse, on the 5 objective classes; UAR, UF1 and accuracy with 95% intervals by
   resampling subjects, beside the Micro-Expression Benchmark's published hold-out numbers.
2. Leave-one-database-out over every database given (CASME II and SAMM, and SMIC-HS and
   CAS(ME)^3 when given; all four on the synthetic database) on MEGC 2019's three classes,
   and each database alone tested on each other: a train-by-test matrix of UF1.

Input normalisation (mean image, scale) and BatchNorm statistics come from the training
databases only: each run computes them from its own training samples, never the test database.
Writes ``holdout.{csv,md}``, ``lodo.{csv,md}``, ``lodo_uf1.png``, ``runs/*/metrics.jsonl``,
``report.md`` and ``summary.json`` (``uar_casme2_to_samm``, ``uar_samm_to_casme2`` and the
``uf1_`` pair, of the headline network; ``lodo``: the matrix).

The quick profile cuts, and says so: the paper's networks at 16x16 for 6 epochs, STSTNet for
60 epochs, one seed.
"""

from __future__ import annotations

import dataclasses
import types

import numpy as np

from merjax import context, metrics, report, setups
from merjax import paper_numbers as paper
from merjax.config import base
from merjax.data import composite
from merjax.data.databases import NAMES as DATABASES
from merjax.figures import matrix_figure
from merjax.report import cell, num, pct
from merjax.setups import FLOWS, NET_NAMES, Setup, SetupsConfig

# Needs CASME II and SAMM; reads SMIC-HS and CAS(ME)^3 too.
READS = (composite.spec("megc2018"), composite.spec("three-class"))
DIRECTIONS = (("casme2", "samm"), ("samm", "casme2"))  # (trained on, tested on)


@dataclasses.dataclass(frozen=True)
class HoldoutConfig(SetupsConfig):
    """The settings of the setups (:class:`merjax.setups.SetupsConfig`) and the network of
    the leave-one-database-out matrix."""

    lodo_setup: str = "vy-3cl-horn_schunck"


def config(profile: str) -> HoldoutConfig:
    cfg = base(profile, HoldoutConfig).replace(
        composite="megc2018",
        nets=(),  # the rows are setups
        headline="vy-3cl-horn_schunck",
        setups=("vy-3cl-horn_schunck", "resnet8-horn_schunck", "ststnet-tvl1"),
        save_model=False,  # no final model: every run here is trained on part of the data
    )
    if profile == "quick":  # minutes: STSTNet for 60 epochs, one seed
        cfg = cfg.replace(ststnet_epochs=60, train=dataclasses.replace(cfg.train, seeds=(0,)))
    elif profile == "tiny":  # plumbing only: one network
        cfg = cfg.replace(setups=("vy-3cl-horn_schunck",))
    return cfg


def validate(cfg: HoldoutConfig) -> None:
    setups.validate(cfg)
    for name, what in ((cfg.headline, "headline"), (cfg.lodo_setup, "lodo_setup")):
        if name not in cfg.setups:
            raise ValueError(f"{what} {name!r} is not one of setups {list(cfg.setups)}")


def run(ctx: context.Context) -> dict:
    cfg = ctx.cfg
    rows = setups.of(cfg)
    # The samples and subjects are the same on either flow: the groups and the report read the
    # first setup's data.
    data = setups.derive(ctx, rows[0], "megc2018").data()
    groups = [_subjects(data, tested) for _, tested in DIRECTIONS]
    results = {}
    for setup in rows:
        res, _ = setups.train(
            ctx,
            setup,
            composite="megc2018",
            groups=groups,
            name=setup.name,
            logits_for_not_valid=False,
        )
        results[setup.name] = setups.row(res, setup)
    lodo_setup = next(r for r in rows if r.name == cfg.lodo_setup)
    matrix, lodo_data = _lodo(ctx, lodo_setup)
    # Both parts' data on the report's data line: the hold-out reads MEGC 2018's two databases,
    # leave-one-database-out every database of the three-class composite.
    both = types.SimpleNamespace(
        source=f"{data.source}; leave-one-database-out: {lodo_data.source}",
        warnings=list(dict.fromkeys([*data.warnings, *lodo_data.warnings])),
    )
    rep = ctx.report(
        "Hold-out-database evaluation (MEGC 2018) and leave-one-database-out",
        both,
        setups.protocol(cfg, "whole databases", "trained on some, tested on another"),
    )
    majority = _majority(data)
    _holdout_table(rep, rows, results, majority)
    rep.text(*_holdout_text())
    _lodo_table(rep, matrix, lodo_setup)
    rep.figure(
        "lodo_uf1",
        _matrix_figure(matrix, lodo_setup),
        f"UF1 of {lodo_setup.title} trained on the row's databases and tested on the column's "
        "(3 classes; in brackets the 95% interval by resampling subjects).",
    )
    rep.text(
        report.majority_text(lodo_data, " on the three-class data"),
        report.INTERVALS_TEXT,
        "Normalisation: each run's input mean image and scale, and its BatchNorm statistics, "
        "are computed from its training samples only, so no statistic of a test database "
        "reaches the network that is tested on it.",
    )
    head = results[cfg.headline]
    per = head["per_dataset"]
    summary = report.summary(
        "holdout",
        cfg,
        data,
        cfg.headline,
        results,
        **{f"{m}_{a}_to_{b}": per[b][m] for a, b in DIRECTIONS for m in ("uar", "uf1", "accuracy")},
        **{f"{m}_ci_{a}_to_{b}": per[b][f"{m}_ci"] for a, b in DIRECTIONS for m in ("uar", "uf1")},
        lodo=matrix,
        published={"meb_holdout_uar": paper.MEB_HOLDOUT_UAR},
        # The console's line: each direction, as the report gives them (the pooled scores of
        # both directions, which the summary's top keys hold, are neither).
        line=", ".join(
            f"UAR {DATABASES[a]} → {DATABASES[b]} {per[b]['uar']:.3f}" for a, b in DIRECTIONS
        )
        + " (always the training database's majority class: "
        + ", ".join(f"{majority[b]['uar']:.3f}" for _, b in DIRECTIONS)
        + ")",
    )
    return rep.write(summary)


def _subjects(data, dataset: str) -> list[str]:
    """The subjects of ``dataset`` in ``data``, in order of appearance."""
    return list(
        dict.fromkeys(s for s, d in zip(data.subjects, data.datasets, strict=True) if d == dataset)
    )


def _lodo(ctx: context.Context, setup: Setup) -> tuple[dict, object]:
    """``{train: {test: {"uf1", "uar", "accuracy", "n", "uf1_ci", ...}}}``: each database alone
    (the row) tested on every other, and every other database together ("all others") tested
    on the one left out."""
    data = setups.derive(ctx, setup, "three-class").data()
    names = list(dict.fromkeys(data.datasets))
    if len(names) < 2:
        raise ValueError(f"leave-one-database-out needs two databases or more, got {names}")
    matrix: dict[str, dict] = {}
    res, _ = setups.train(
        ctx,
        setup,
        composite="three-class",
        groups=[_subjects(data, d) for d in names],
        name=f"{setup.name}-lodo",
        logits_for_not_valid=False,
    )
    matrix["all others"] = {d: res.row()["per_dataset"][d] for d in names}
    for source in names:
        others = [s for d in names if d != source for s in _subjects(data, d)]
        res, _ = setups.train(
            ctx,
            setup,
            composite="three-class",
            groups=[others],
            name=f"{setup.name}-from-{source}",
            logits_for_not_valid=False,
        )
        matrix[source] = {d: res.row()["per_dataset"][d] for d in names if d != source}
    return matrix, data


def _majority(data) -> dict[str, dict]:
    """Per tested database, the scores of always predicting the training database's most
    frequent class: what a classifier that learned only the training prior gets."""
    labels, datasets, k = np.asarray(data.labels), np.asarray(data.datasets), data.num_classes
    out = {}
    for trained, tested in DIRECTIONS:
        y = labels[datasets == tested]
        guess = np.full_like(y, np.bincount(labels[datasets == trained], minlength=k).argmax())
        out[tested] = {
            "uar": metrics.uar(y, guess, k),
            "uf1": metrics.uf1(y, guess, k),
            "accuracy": metrics.accuracy(y, guess),
            "n": int(len(y)),
        }
    return out


def _holdout_table(rep: report.Report, rows: list[Setup], results: dict, majority: dict) -> None:
    shown, raw = [], []
    for setup in rows:
        per = results[setup.name]["per_dataset"]
        cells, values = [], []
        for _, tested in DIRECTIONS:
            p = per[tested]
            cells += [cell(p["uar"], ci=p["uar_ci"]), cell(p["uf1"], ci=p["uf1_ci"])]
            cells.append(pct(p["accuracy"]))
            values += [p["uar"], *p["uar_ci"], p["uf1"], *p["uf1_ci"], p["accuracy"], p["n"]]
        shown.append(
            [NET_NAMES[setup.net], FLOWS[setup.flow], f"{setup.size}x{setup.size}"] + cells
        )
        raw.append([setup.name, setup.net, setup.flow, setup.size] + values)
    shown.append(
        ["majority class of the training database", "-", "-"]
        + [
            c
            for _, tested in DIRECTIONS
            for c in (
                num(majority[tested]["uar"], 3),
                num(majority[tested]["uf1"], 3),
                pct(majority[tested]["accuracy"]),
            )
        ]
    )
    raw.append(
        ["majority", "-", "-", "-"]
        + [
            v
            for _, tested in DIRECTIONS
            for v in (majority[tested]["uar"], None, None, majority[tested]["uf1"], None, None)
            + (majority[tested]["accuracy"], majority[tested]["n"])
        ]
    )
    for name, (to_samm, to_casme2) in paper.MEB_HOLDOUT_UAR.items():
        shown.append(
            [f"{name} (MEB, published)", "-", "-", f"{to_samm:.4f}", "-", "-"]
            + [f"{to_casme2:.4f}", "-", "-"]
        )
    directions = [f"{DATABASES[a]} → {DATABASES[b]}" for a, b in DIRECTIONS]
    rep.table(
        "holdout",
        ["network", "flow", "input"]
        + [f"{d}: {m}" for d in directions for m in ("UAR [95% CI]", "UF1 [95% CI]", "accuracy")],
        shown,
        title="MEGC 2018 hold-out database: 5 objective classes, trained on one database and "
        "tested on the other (mean over seeds [95% interval by resampling subjects])",
        csv_header=["config", "net", "flow", "input"]
        + [
            f"{a}_to_{b}_{m}"
            for a, b in DIRECTIONS
            for m in ("uar", "uar_ci_low", "uar_ci_high", "uf1", "uf1_ci_low", "uf1_ci_high")
            + ("accuracy", "samples")
        ],
        csv_rows=raw,
    )


def _holdout_text() -> list[str]:
    return [
        "Published: the Micro-Expression Benchmark (Varanka et al.; tvaranka/meb, notebook "
        "'Table 10. Hold-out database'), UAR of SSSNet, ResNet18 and ResNet34. Its objective "
        "classes are derived from action units rather than read from the spreadsheets, so its "
        "sample counts differ (its CASME II has 194 samples): compare the size of the gap, "
        "not the third decimal.",
    ]


def _lodo_table(rep: report.Report, matrix: dict, setup: Setup) -> None:
    tests = list(matrix["all others"])
    sources = [*tests, "all others"]
    shown = [
        [DATABASES.get(src, src)]
        + [
            cell(matrix[src][t]["uf1"], ci=matrix[src][t]["uf1_ci"]) if t in matrix[src] else "-"
            for t in tests
        ]
        for src in sources
    ]
    raw = [
        [src, t, matrix[src][t]["n"]]
        + [matrix[src][t][m] for m in ("uf1", "uar", "accuracy")]
        + [*matrix[src][t]["uf1_ci"], *matrix[src][t]["uar_ci"]]
        for src in sources
        for t in tests
        if t in matrix[src]
    ]
    rep.table(
        "lodo",
        ["trained on \\ tested on", *(DATABASES[t] for t in tests)],
        shown,
        title=f"Cross-database UF1 of {setup.title}, MEGC 2019's three classes [95% interval "
        "by resampling subjects]; the last row leaves the column's database out",
        csv_header=["trained_on", "tested_on", "samples", "uf1", "uar", "accuracy"]
        + ["uf1_ci_low", "uf1_ci_high", "uar_ci_low", "uar_ci_high"],
        csv_rows=raw,
    )


def _matrix_figure(matrix: dict, setup: Setup):
    tests = list(matrix["all others"])
    sources = [*tests, "all others"]
    values = np.array(
        [[matrix[s][t]["uf1"] if t in matrix[s] else np.nan for t in tests] for s in sources]
    )
    notes = [
        [
            f"[{matrix[s][t]['uf1_ci'][0]:.2f}, {matrix[s][t]['uf1_ci'][1]:.2f}]"
            if t in matrix[s]
            else "its own training\ndatabase"
            for t in tests
        ]
        for s in sources
    ]
    return matrix_figure(
        values,
        [DATABASES.get(s, s) for s in sources],
        [DATABASES[t] for t in tests],
        f"{setup.title}: UF1, trained on (rows) / tested on (columns)",
        notes=notes,
    )

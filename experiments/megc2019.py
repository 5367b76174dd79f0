"""Beyond the paper: the MEGC 2019 benchmark -- STSTNet and the paper's networks on both flows.

    python -m merjax.main --experiment=megc2019  # the quick profile (its time: README)
    python -m merjax.main --experiment=megc2019 --profile=paper \\
        --smic_root=/data/SMIC --casme2_root=/data/CASME2 --samm_root=/data/SAMM

The field's 3-class composite (SMIC-HS + CASME II + SAMM: negative / positive / surprise),
leave-one-subject-out over its 68 subjects, scored by UF1 and UAR pooled over all folds, on the
whole composite and on each part. Without roots it runs on the synthetic database, which writes
a SMIC-HS layout with its annotation spreadsheet as well, so the real loading path runs.

Configurations (each network on each flow, so the table separates the network's effect from the
flow's):

- STSTNet (Liong et al. 2019) on TV-L1 flow, 28x28 (Vx, Vy, optical strain), trained as its
  authors published it: Adam, learning rate 5e-5, batch 256, 800 epochs; and on Horn-Schunck.
- Vy-3CL and ResNet8 on Horn-Schunck flow at 64x64, trained as the paper trained them (RMSprop,
  batch 64, 150 epochs); and on TV-L1.

Every configuration is scored with its fixed epoch count (the valid result), over several seeds
(mean ± std, and a 95% interval by resampling subjects). Beside it, labelled NOT VALID, what
picking each subject's best test epoch would have scored (held-out predictions every few epochs,
cheap when all folds train at once): several published results come from that practice.
Writes ``megc2019.{csv,md}`` (with STSTNet's published numbers), ``confusion_<headline>.png``,
``uf1_by_config.png``, ``runs/<config>/metrics.jsonl``, ``report.md`` and ``summary.json``.

The quick profile cuts, and says so: 4 subject-grouped folds instead of 68 LOSO folds; the
paper's networks at 16x16 for 6 epochs; STSTNet for 100 epochs; 2 seeds.
"""

from __future__ import annotations

import dataclasses

from merjax import context, report, setups
from merjax import paper_numbers as paper
from merjax.config import base
from merjax.evaluation import best_test_epoch
from merjax.figures import bar_figure, confusion_figure
from merjax.report import num
from merjax.setups import FLOWS, NET_NAMES, Setup, SetupsConfig

PARTS = ("smic", "casme2", "samm")
PART_NAMES = {"smic": "SMIC", "casme2": "CASME II", "samm": "SAMM"}


@dataclasses.dataclass(frozen=True)
class Megc2019Config(SetupsConfig):
    """The settings of the setups (:class:`merjax.setups.SetupsConfig`)."""


def config(profile: str) -> Megc2019Config:
    cfg = base(profile, Megc2019Config).replace(
        composite="megc2019",
        nets=(),
        headline="ststnet-tvl1",  # the rows are setups
    )
    if profile == "quick":  # minutes: STSTNet for 100 epochs, two seeds
        cfg = cfg.replace(ststnet_epochs=100, train=dataclasses.replace(cfg.train, seeds=(0, 1)))
    elif profile == "tiny":  # plumbing only: one STSTNet, one paper network on both flows
        cfg = cfg.replace(
            ststnet_epochs=2,
            ststnet_batch=16,
            ststnet_size=8,
            setups=("ststnet-tvl1", "vy-3cl-horn_schunck", "vy-3cl-tvl1"),
        )
    return cfg


def validate(cfg: Megc2019Config) -> None:
    setups.validate(cfg)
    if cfg.headline not in cfg.setups:
        raise ValueError(f"headline {cfg.headline!r} is not one of setups {list(cfg.setups)}")


def run(ctx: context.Context) -> dict:
    cfg = ctx.cfg
    rows = setups.of(cfg)
    results, not_valid, trained, data_by_flow = {}, {}, {}, {}
    ctx.expect_networks(len(rows))
    for setup in rows:
        save = cfg.save_model and setup.name == cfg.headline
        res, sub = setups.train(ctx, setup, save=save)
        data = data_by_flow.setdefault(setup.flow, sub.data())
        trained[setup.name] = res
        results[setup.name] = setups.row(res, setup)
        not_valid[setup.name] = best_test_epoch(res, data)
    # The samples, labels and notes are the same on either flow: the report reads the first.
    data = data_by_flow[rows[0].flow]
    rep = ctx.report(
        "MEGC 2019 benchmark: STSTNet and the paper's networks on TV-L1 and Horn-Schunck flows",
        data,
        setups.protocol(cfg, "MEGC 2019 composite"),
    )
    _table(rep, rows, results, not_valid)
    rep.text(
        report.majority_text(data),
        _published_text(),
        report.INTERVALS_TEXT,
        report.NOT_VALID_TEXT,
    )
    head = cfg.headline
    rep.figure(
        f"confusion_{head}",
        confusion_figure(
            trained[head].confusion, data.class_names, f"{head}, pooled held-out, all seeds"
        ),
        f"Confusion matrix of {head} (rows: true class; counts summed over seeds).",
    )
    rep.figure(
        "uf1_by_config",
        _uf1_figure(rows, results, not_valid),
        "UF1 of each network on each flow: fixed epochs (ours, error bars the 95% interval by "
        "resampling subjects), hollow the NOT VALID best test epoch, and the black bar "
        "STSTNet's published UF1.",
    )
    head_net = next(r.net for r in rows if r.name == head)
    if ctx.model_text(head_net):
        rep.text(ctx.model_text(head_net))
    summary = report.summary(
        "megc2019",
        cfg,
        data,
        head,
        results,
        not_valid_best_test_epoch=not_valid,
        published=paper.MEGC2019_STSTNET,
    )
    return rep.write(summary)


def _published(setup: Setup) -> dict:
    """STSTNet's published numbers, beside STSTNet on TV-L1 (the flow it was published with)."""
    return paper.MEGC2019_STSTNET if (setup.net, setup.flow) == ("ststnet", "tvl1") else {}


def _table(rep: report.Report, rows: list[Setup], results: dict, not_valid: dict) -> None:
    """megc2019.{csv,md}: per configuration, UF1 / UAR [95% interval] / accuracy (mean ± std
    over seeds), per part, the published numbers and the NOT VALID best-test-epoch column."""
    shown, raw = [], []
    for setup in rows:
        r, bad = results[setup.name], not_valid[setup.name]
        published = _published(setup).get("all", (None, None))
        parts = [r["per_dataset"].get(p, {}) for p in PARTS]
        shown.append(
            setup.cells()
            + report.score_cells(r)
            + [f"{num(p.get('uf1'), 3)} / {num(p.get('uar'), 3)}" for p in parts]
            + [
                f"{published[0]:.4f} / {published[1]:.4f}" if published[0] is not None else "-",
                f"{num(bad['uf1'], 3)} / {num(bad['uar'], 3)}",
            ]
        )
        raw.append(
            [setup.name, setup.net, setup.flow, setup.size]
            + [r[k] for k in ("uf1", "uf1_std", "uar", "uar_std", "accuracy", "accuracy_std")]
            + [*r["uf1_ci"], *r["uar_ci"]]
            + [p.get(k) for p in parts for k in ("uf1", "uar")]
            + [published[0], published[1], bad["uf1"], bad["uar"]]
        )
    rep.table(
        "megc2019",
        setups.HEADER
        + report.SCORE_HEADER
        + [f"{PART_NAMES[p]} UF1 / UAR" for p in PARTS]
        + ["published UF1 / UAR", "NOT VALID: best test epoch per subject, UF1 / UAR"],
        shown,
        title="MEGC 2019 composite (negative / positive / surprise), pooled LOSO predictions, "
        "mean ± std over seeds [95% interval by resampling subjects]",
        csv_header=["config", "net", "flow", "input"]
        + ["uf1", "uf1_std", "uar", "uar_std", "accuracy", "accuracy_std"]
        + ["uf1_ci_low", "uf1_ci_high", "uar_ci_low", "uar_ci_high"]
        + [f"{p}_{k}" for p in PARTS for k in ("uf1", "uar")]
        + ["published_uf1", "published_uar"]
        + ["not_valid_best_epoch_uf1", "not_valid_best_epoch_uar"],
        csv_rows=raw,
    )


def _published_text() -> str:
    """STSTNet's published numbers and why they may be inflated."""
    published = ", ".join(
        f"{PART_NAMES.get(k, 'whole composite')} {u:.4f} / {a:.4f}"
        for k, (u, a) in paper.MEGC2019_STSTNET.items()
    )
    return (
        f"Published: STSTNet (Liong et al., FG 2019) on TV-L1 flow: UF1 / UAR {published}. "
        + report.best_epoch_warning("the MEGC 2019 composite")
    )


def _uf1_figure(rows: list[Setup], results: dict, not_valid: dict):
    names = [r.name for r in rows]
    return bar_figure(
        [f"{NET_NAMES[r.net]}\n{FLOWS[r.flow]}" for r in rows],
        {
            "fixed epochs (ours)": [results[n]["uf1"] for n in names],
            "NOT VALID: best test epoch per subject": [not_valid[n]["uf1"] for n in names],
        },
        intervals={"fixed epochs (ours)": [results[n]["uf1_ci"] for n in names]},
        ylabel="UF1 (pooled, macro)",
        title="MEGC 2019: UF1 by network and flow",
        hollow=("NOT VALID: best test epoch per subject",),
        markers={
            "published (Liong et al. 2019, real data)": [
                paper.MEGC2019_STSTNET["all"][0] if (r.net, r.flow) == ("ststnet", "tvl1") else None
                for r in rows
            ]
        },
    )

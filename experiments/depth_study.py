"""Table 3: accuracy of the ResNet18 depth variants (17 down to 1 conv layers) on Vx-Vy-M.

    python -m merjax.main --experiment=depth_study  # the quick profile (its time: README)
    python -m merjax.main --experiment=depth_study --profile=paper   # the paper's protocol (GPU)

In the quick profile (16x16 inputs) the deepest stages see 1x1 maps: a rough trend, not the
paper's setting. Writes ``table3.{csv,md}`` (accuracy ± std, the
paper's accuracy and parameter count beside ours), ``accuracy_vs_depth.png``, per-net
``runs/<net>/metrics.jsonl``, ``report.md`` and ``summary.json`` (headline: ResNet8, the paper's
best).
"""

from __future__ import annotations

from merjax import context, models, report
from merjax import paper_numbers as paper
from merjax.config import Config, base
from merjax.data import composite
from merjax.figures import series_figure
from merjax.report import pct

DEPTHS = (17, 15, 13, 11, 9, 7, 5, 3, 1)


def config(profile: str) -> Config:
    cfg = base(profile).replace(nets=tuple(f"resnet{d + 1}" for d in DEPTHS), headline="resnet8")
    if profile == "tiny":  # plumbing only: two depths, which run on 8x8 inputs
        cfg = cfg.replace(nets=("resnet4", "resnet2"), headline="resnet4")
    return cfg


def validate(cfg: Config) -> None:
    """Table 3 has the ResNet depth variants only."""
    for net in cfg.nets:
        if not (net.lower().startswith("resnet") and net[6:].isdigit()):
            raise ValueError(
                f"nets: depth_study reports the ResNet depth variants (resnet2..resnet18), not "
                f"{net!r} (input_study reports the shallow CNNs)"
            )


def run(ctx: context.Context) -> dict:
    cfg, data = ctx.cfg, ctx.data()
    on_paper_data = paper.comparable(cfg.composite)
    table3 = paper.TABLE3 if on_paper_data else {}
    rows, csv_rows, results = [], [], {}
    ctx.expect_networks(len(cfg.nets))
    for net in cfg.nets:
        r = ctx.train_and_score(net).row()
        results[net] = r
        cl = int(net[6:]) - 1
        ref_params, ref_acc = table3.get(cl, (None, None))
        rows.append(
            [
                f"{cl}",
                f"{r['params']:,}",
                f"{ref_params:,}" if ref_params else "-",
                pct(r["accuracy"], r["accuracy_std"]) + report.pct_interval(r["accuracy_ci"]),
                pct(ref_acc),
                report.cell(r["uf1"], None, r["uf1_ci"]),
                report.cell(r["uar"], None, r["uar_ci"]),
                pct(r["majority"]),
            ]
        )
        csv_rows.append(
            [
                cl,
                r["params"],
                ref_params,
                r["accuracy"],
                r["accuracy_std"],
                *(r["accuracy_ci"] or (None, None)),
                ref_acc,
                r["uf1"],
                *(r["uf1_ci"] or (None, None)),
                r["uar"],
                *(r["uar_ci"] or (None, None)),
                r["majority"],
            ]
        )
    rep = ctx.report("ResNet depth study (paper Table 3)", data)
    if not on_paper_data:
        rep.text(paper.PAPER_DATA_TEXT.format(title=composite.spec(cfg.composite).title))
    rep.table(
        "table3",
        [
            "CL",
            f"params ({cfg.size}x{cfg.size})",
            "paper params (64x64)",
            "accuracy [95% CI]",
            "paper",
            "UF1 [95% CI]",
            "UAR [95% CI]",
            "majority class",
        ],
        rows,
        title="Table 3: accuracy and parameters by number of conv layers",
        csv_rows=csv_rows,
        csv_header=[
            "CL",
            "params",
            "paper_params",
            "accuracy",
            "accuracy_std",
            "accuracy_ci_low",
            "accuracy_ci_high",
            "paper",
            "uf1",
            "uf1_ci_low",
            "uf1_ci_high",
            "uar",
            "uar_ci_low",
            "uar_ci_high",
            "majority",
        ],
    )
    rep.text(
        "Parameters for 1-13 CL match the paper exactly; for 15 and 17 CL the paper's counts do "
        "not follow from its architecture (docs/networks.md), so both are shown."
    )
    if warning := report.near_majority_text(results, cfg.train.epochs):
        rep.text(warning)
    nets = list(results)
    cls = [int(n[6:]) - 1 for n in nets]
    params64 = [models.count_params(models.by_name(n)[0], (64, 64, 3)) for n in nets]
    rep.figure(
        "accuracy_vs_depth",
        series_figure(
            {"ResNet depth variants": (cls, [results[n]["accuracy"] for n in nets])},
            {"ResNet depth variants": (cls, [table3.get(c, (None, None))[1] for c in cls])}
            if table3
            else {},
            results[nets[0]]["majority"],
            xlabel="conv layers (parameters at 64x64)",
            title="ResNet depth variants: held-out accuracy (paper Table 3)",
            xticks=(cls, [f"{c}\n{p / 1e6:.2f}M" for c, p in zip(cls, params64, strict=True)]),
        ),
        "Held-out accuracy by depth; dashed: the paper's Table 3; dotted: the majority class. "
        "Tick labels: "
        f"parameters at 64x64, the paper's input size (this run's inputs: {cfg.size}x{cfg.size}).",
    )
    head = cfg.headline if cfg.headline in results else nets[0]
    if ctx.model_text(head):
        rep.text(ctx.model_text(head))
    return rep.write(
        report.summary(
            "depth_study", cfg, data, head, results, model=str(ctx.model_dir(head) or "")
        )
    )

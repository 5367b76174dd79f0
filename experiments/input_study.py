"""Table 4: accuracy of the shallow CNNs (1-4 conv layers) on Vx, Vy, Vx-Vy and M inputs.

    python -m merjax.main --experiment=input_study  # the quick profile (its time: README)
    python -m merjax.main --experiment=input_study --profile=paper   # the paper's protocol (GPU)

Writes ``table4.{csv,md}`` (accuracy ± std over seeds, the paper's number beside it, UF1, UAR,
parameters, the majority-class baseline), ``accuracy_vs_params.png``, ``confusion_vy-3cl.png``,
``runs/<net>/metrics.jsonl``, ``report.md`` and ``summary.json`` (headline: Vy-3CL, the paper's
choice).
"""

from __future__ import annotations

from merjax import context, models, report
from merjax import paper_numbers as paper
from merjax.config import Config, base
from merjax.data import composite
from merjax.figures import confusion_figure, series_figure
from merjax.report import pct

REPRESENTATIONS = ("vx", "vy", "vxvy", "mag")
DEPTHS = (1, 2, 3, 4)


def config(profile: str) -> Config:
    nets = tuple(f"{r}-{d}cl" for r in REPRESENTATIONS for d in DEPTHS)
    if profile == "tiny":  # plumbing only: two cells of the table
        nets = ("vy-1cl", "vy-3cl")
    return base(profile).replace(nets=nets, headline="vy-3cl")


def validate(cfg: Config) -> None:
    """Table 4 has the shallow CNNs only: a representation and 1-4 conv layers."""
    for net in cfg.nets:
        representation, _, depth = net.lower().rpartition("-")
        if representation not in REPRESENTATIONS or depth not in {f"{d}cl" for d in DEPTHS}:
            raise ValueError(
                f"nets: input_study reports the shallow CNNs ({', '.join(REPRESENTATIONS)} with "
                f"1-4 conv layers, e.g. vy-3cl), not {net!r} (depth_study reports the ResNets)"
            )


def run(ctx: context.Context) -> dict:
    cfg, data = ctx.cfg, ctx.data()
    on_paper_data = paper.comparable(cfg.composite)
    rows, csv_rows, results = [], [], {}
    ctx.expect_networks(len(cfg.nets))
    for net in cfg.nets:
        res = ctx.train_and_score(net)
        r = res.row()
        results[net] = r
        representation, depth = net.rsplit("-", 1)
        d = int(depth[:-2])
        ref = (
            paper.TABLE4.get(representation, (None,) * 4)[d - 1]
            if on_paper_data and 1 <= d <= 4
            else None
        )
        name = paper.REPRESENTATION_NAMES.get(representation, representation)
        rows.append(
            [
                name,
                f"{d} CL",
                pct(r["accuracy"], r["accuracy_std"]) + report.pct_interval(r["accuracy_ci"]),
                pct(ref),
                report.cell(r["uf1"], None, r["uf1_ci"]),
                report.cell(r["uar"], None, r["uar_ci"]),
                f"{r['params']:,}",
                pct(r["majority"]),
            ]
        )
        csv_rows.append(
            [
                name,
                d,
                r["accuracy"],
                r["accuracy_std"],
                *(r["accuracy_ci"] or (None, None)),
                ref,
                r["uf1"],
                *(r["uf1_ci"] or (None, None)),
                r["uar"],
                *(r["uar_ci"] or (None, None)),
                r["params"],
                r["majority"],
            ]
        )
    rep = ctx.report("Input study (paper Table 4)", data)
    if not on_paper_data:
        rep.text(paper.PAPER_DATA_TEXT.format(title=composite.spec(cfg.composite).title))
    rep.table(
        "table4",
        [
            "input",
            "CL",
            "accuracy [95% CI]",
            "paper",
            "UF1 [95% CI]",
            "UAR [95% CI]",
            f"params ({cfg.size}x{cfg.size})",
            "majority class",
        ],
        rows,
        title="Table 4: accuracy by input representation and conv layers",
        csv_rows=csv_rows,
        csv_header=[
            "input",
            "CL",
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
            "params",
            "majority",
        ],
    )
    rep.text(_grid(results, on_paper_data))
    if warning := report.near_majority_text(results, cfg.train.epochs):
        rep.text(warning)
    rep.figure(
        "accuracy_vs_params",
        _params_figure(results, on_paper_data),
        "Held-out accuracy against learnable parameters, one line per input (markers: conv "
        "layers); "
        "dashed: the paper's Table 4; dotted: the majority class. Parameters are the networks' at "
        f"64x64, the paper's input size (this run's inputs: {cfg.size}x{cfg.size}; table4 has its "
        "counts).",
    )
    head = cfg.headline if cfg.headline in results else cfg.nets[0]
    headline = ctx.train_and_score(head)
    rep.figure(
        f"confusion_{head}",
        confusion_figure(
            headline.confusion, data.class_names, f"{head}, pooled held-out, all seeds"
        ),
        f"Confusion matrix of {head} (rows: true class).",
    )
    if ctx.model_text(head):
        rep.text(ctx.model_text(head))
    if data.notes:
        rep.text("Notes on the data:\n\n" + "\n".join(f"- {n}" for n in data.notes))
    return rep.write(
        report.summary(
            "input_study", cfg, data, head, results, model=str(ctx.model_dir(head) or "")
        )
    )


def _params_figure(results: dict, on_paper_data: bool):
    """Accuracy against parameters (at 64x64), a line per representation, 1-4 CL along each;
    the paper's lines when the run is on the paper's data."""
    ours, ref, kinds = {}, {}, {}
    for r in REPRESENTATIONS:
        depths = [d for d in DEPTHS if f"{r}-{d}cl" in results]
        if not depths:
            continue
        params = [
            models.count_params(models.by_name(f"{r}-{d}cl")[0], (64, 64, 2 if r == "vxvy" else 1))
            for d in depths
        ]
        name = paper.REPRESENTATION_NAMES[r]
        ours[name] = (params, [results[f"{r}-{d}cl"]["accuracy"] for d in depths])
        if on_paper_data:
            ref[name] = (params, [paper.TABLE4[r][d - 1] for d in depths])
        kinds[name] = [d - 1 for d in depths]
    majority = next(iter(results.values()))["majority"]
    return series_figure(
        ours,
        ref,
        majority,
        xlabel="learnable parameters (networks at 64x64)",
        title="Shallow CNNs: held-out accuracy against parameters (paper Table 4)",
        logx=True,
        marker_names=[f"{d} CL" for d in DEPTHS],
        kinds=kinds,
    )


def _grid(results: dict, on_paper_data: bool) -> str:
    """The paper's layout: representations in rows, 1-4 CL in columns, ours (paper)."""
    lines = [
        "Layout of the paper's Table 4 — ours (paper):",
        "",
        "| | " + " | ".join(f"{d} CL" for d in DEPTHS) + " |",
        "|---|" + "---|" * len(DEPTHS),
    ]
    for r in REPRESENTATIONS:
        cells = []
        for d in DEPTHS:
            res = results.get(f"{r}-{d}cl")
            ref = paper.TABLE4[r][d - 1] if on_paper_data else None
            cells.append(f"{pct(res['accuracy']) if res else '-'} ({pct(ref)})")
        lines.append(f"| {paper.REPRESENTATION_NAMES[r]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)

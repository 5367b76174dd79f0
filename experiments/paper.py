"""Every experiment of the paper, one after another, sharing the data and the trained networks.

    python -m merjax.main --experiment=paper  # the quick profile (its time: README)
    python -m merjax.main --experiment=paper --profile=paper    # the paper's protocol (GPU)

Each experiment (the files beside this one) writes into ``<workdir>/<experiment>/``; networks
that several experiments use (Vy-3CL, Vx-Vy-3CL, ResNet8) are trained once when their configs
agree, keeping the features the similarity tables need. ``report.md`` links every experiment's
report; ``summary.json`` carries the headline of ``performance`` (Vy-3CL) and each experiment's
summary.
"""

from __future__ import annotations

from pathlib import Path

from merjax import context, runner
from merjax.config import Config, base
from merjax.report import pct

PARTS = ("class_average_flow", "depth_study", "input_study", "similarity", "performance")
HERE = Path(__file__).resolve().parent


def config(profile: str) -> Config:
    return base(profile).replace(nets=(), headline="vy-3cl")


def run(ctx: context.Context) -> dict:
    o = ctx.options
    # Train the similarity study's networks with features the first time any part needs them.
    ctx.keep_features.update(
        runner.make_config(HERE / "similarity.py", o.profile, o.overrides, o.seeds).nets
    )
    parts = {}
    for part in PARTS:
        ctx.say(f"=== {part} ===")
        parts[part] = runner.run(HERE / f"{part}.py", ctx.workdir / part, parent=ctx)
    head = parts["performance"]
    data = ctx.data()
    rep = ctx.report("The paper's experiments", data, head["protocol"])
    rep.text(
        "\n".join(
            [
                "| experiment | headline | accuracy | UF1 | UAR | majority class | report |",
                "|" + "---|" * 7,
            ]
            + [
                f"| {p} | {s['headline']} | {pct(s['accuracy'])} | {s['uf1']:.3f} | "
                f"{s['uar']:.3f} | "
                f"{pct(s['majority'])} | [{p}/report.md]({p}/report.md) |"
                for p, s in parts.items()
            ]
        )
    )
    keys = (
        "experiment",
        "headline",
        "accuracy",
        "accuracy_std",
        "uf1",
        "uf1_std",
        "uar",
        "uar_std",
        "majority",
    )
    return rep.write(
        {k: head[k] for k in keys}
        | {
            "experiment": "paper",
            "profile": ctx.cfg.profile,
            "protocol": head["protocol"],
            "data": data.source,
            "parts": {p: {k: s[k] for k in keys + ("seconds",)} for p, s in parts.items()},
        }
    )

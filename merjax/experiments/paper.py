"""Every experiment of the paper, one after another, sharing the data and the trained networks.

    python -m merjax.main --experiment=paper                    # quick: ~11 min, 2-core CPU
    python -m merjax.main --experiment=paper --profile=paper    # the paper's protocol (GPU)

Each experiment writes into ``<workdir>/<experiment>/``; networks that several experiments use
(Vy-3CL, Vx-Vy-3CL, ResNet8) are trained once when their configs agree, keeping the features
the similarity tables need. ``report.md`` links every experiment's report; ``summary.json``
carries the headline of ``performance`` (Vy-3CL) and each experiment's summary.
"""

from __future__ import annotations

from merjax.experiments import common
from merjax.experiments.config import Config, base

PARTS = ("class_average_flow", "depth_study", "input_study", "similarity", "performance")


def config(profile: str) -> Config:
    return base(profile).replace(nets=(), headline="vy-3cl")

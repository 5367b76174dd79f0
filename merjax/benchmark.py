"""Benchmarks beyond the paper (experiments megc2019, casme3, holdout): each network on each flow,
trained its own way, scored with 95% intervals, beside published numbers and a NOT VALID column.

What those experiments share lives here: their config fields (:class:`BenchmarkConfig`), a row
of their tables (:class:`Setup`: a network on a flow, at its input size, with its training),
training a row, and the cells and sentences every such report carries::

    for setup in benchmark.setups(cfg):
        result, sub = benchmark.train(ctx, setup)
        cells = benchmark.cell(result.row()["uf1"], ci=result.row()["uf1_ci"])
"""

from __future__ import annotations

import dataclasses

import numpy as np

from merjax import metrics
from merjax import paper_numbers as paper
from merjax.config import Config
from merjax.context import Context
from merjax.data.loading import Data
from merjax.evaluation import NetResult
from merjax.report import num, pct
from merjax.train import Execution, TrainConfig

NET_NAMES = {"ststnet": "STSTNet", "vy-3cl": "Vy-3CL", "resnet8": "ResNet8"}
FLOWS = {"tvl1": "TV-L1", "horn_schunck": "Horn-Schunck"}


@dataclasses.dataclass(frozen=True)
class BenchmarkConfig(Config):
    """A benchmark's own settings, beside the paper networks' (``size``, ``train``)."""

    # STSTNet as its authors trained it (their released main.py, PyTorch): 800 epochs, batch 256,
    # on 28x28 inputs; the rest of its training is fixed (ststnet_training).
    ststnet_epochs: int = 800
    ststnet_batch: int = 256
    ststnet_size: int = 28
    # The table's rows, "<net>-<flow>": each network on each flow.
    setups: tuple[str, ...] = (
        "ststnet-tvl1",
        "ststnet-horn_schunck",
        "vy-3cl-horn_schunck",
        "vy-3cl-tvl1",
        "resnet8-horn_schunck",
        "resnet8-tvl1",
    )


@dataclasses.dataclass(frozen=True)
class Setup:
    """One row of a table: a network on a flow, at an input size, with its training."""

    name: str
    net: str
    flow: str  # merjax.flow.METHODS
    size: int
    train: TrainConfig
    execution: Execution
    eval_every: int  # epochs between the held-out evaluations of the NOT-VALID column

    @property
    def title(self) -> str:
        return f"{NET_NAMES.get(self.net, self.net)}, {FLOWS[self.flow]}"


def ststnet_training(cfg: BenchmarkConfig) -> TrainConfig:
    """STSTNet as its authors trained it: Adam 5e-5, no weight decay, and PyTorch's
    DataLoader(shuffle=True) and BatchNorm: a fresh order each epoch, the last partial batch kept,
    running statistics for prediction."""
    return TrainConfig(
        optimizer="adam",
        learning_rate=5e-5,
        batch_size=cfg.ststnet_batch,
        epochs=cfg.ststnet_epochs,
        weight_decay=0.0,
        seeds=cfg.train.seeds,
        shuffle="every-epoch",
        drop_last=False,
        bn_stats="moving",
    )


def setups(cfg: BenchmarkConfig) -> list[Setup]:
    """The table's rows, in the order of ``cfg.setups``: STSTNet with its own training, the
    paper's networks with the config's."""
    st = ststnet_training(cfg)
    st_execution = dataclasses.replace(cfg.execution, epochs_per_call=min(st.epochs, 25))
    rows = []
    for name in cfg.setups:
        net, _, flow = name.rpartition("-")
        if net == "ststnet":
            every = max(1, st.epochs // 20)
            rows.append(Setup(name, net, flow, cfg.ststnet_size, st, st_execution, every))
        else:
            every = max(1, cfg.train.epochs // 10)
            rows.append(Setup(name, net, flow, cfg.size, cfg.train, cfg.execution, every))
    return rows


def protocol(cfg: BenchmarkConfig, data: str, folds: str | None = None) -> str:
    """The report's protocol line: the profile, the data (``data``), the folds (default: the
    config's), the flows, and how STSTNet and the paper's networks train."""
    if folds is None:
        folds = (
            "leave-one-subject-out"
            if cfg.num_folds is None
            else f"{cfg.num_folds} subject-grouped folds"
        )
    st = ststnet_training(cfg)
    return (
        f"{cfg.profile} profile: {data}, {folds}; flows at {cfg.flow.size[0]}x"
        f"{cfg.flow.size[1]}; STSTNet: Adam lr {st.learning_rate}, batch {st.batch_size}, "
        f"{st.epochs} epochs; Vy-3CL and ResNet8 at {cfg.size}x{cfg.size}: RMSprop lr "
        f"{cfg.train.learning_rate}, batch {cfg.train.batch_size}, {cfg.train.epochs} epochs; "
        f"seeds {list(cfg.train.seeds)}"
    )


def validate(cfg: BenchmarkConfig) -> None:
    """A ValueError naming a row of ``cfg.setups`` that is not ``<network>-<flow>``."""
    for name in cfg.setups:
        net, _, flow = name.rpartition("-")
        if net not in NET_NAMES or flow not in FLOWS:
            raise ValueError(
                f"setups: {name!r} is not <network>-<flow> with a network of "
                f"{sorted(NET_NAMES)} and a flow of {sorted(FLOWS)}"
            )


def train(
    ctx: Context,
    setup: Setup,
    *,
    composite: str | None = None,
    groups: list[list[str]] | None = None,
    save: bool = False,
    name: str | None = None,
    oracle: bool = True,
) -> tuple[NetResult, Context]:
    """``setup`` trained on the context's data (or ``composite``'s) with its folds (or
    ``groups``); ``save`` also trains it on every subject and saves it. ``oracle`` records the
    held-out logits the NOT VALID column needs. Returns the result and the derived context (its
    data and class count)."""
    changes = dict(
        flow=dataclasses.replace(ctx.cfg.flow, method=setup.flow),
        size=setup.size,
        train=setup.train,
        execution=setup.execution,
        save_model=save,
        headline=setup.net,
    )
    if composite is not None:
        changes["composite"] = composite
    sub = ctx.derive(**changes)
    result = sub.evaluate(
        setup.net,
        eval_every=setup.eval_every if oracle else 0,
        name=name or setup.name,
        groups=groups,
    )
    return result, sub


def row(result: NetResult, setup: Setup) -> dict:
    """A table row's numbers (:meth:`NetResult.row`) with its setup."""
    return result.row() | {
        "flow": setup.flow,
        "size": setup.size,
        "optimizer": setup.train.optimizer,
        "epochs": setup.train.epochs,
    }


def cell(value: float | None, std: float | None = None, ci=(), digits: int = 3) -> str:
    """``0.512 ± 0.010 [0.431, 0.597]``: a score, its std over seeds, its 95% interval."""
    if value is None:
        return "-"
    text = num(value, digits) + (f" ± {num(std, digits)}" if std else "")
    if ci is not None and len(ci) == 2:
        text += f" [{num(ci[0], digits)}, {num(ci[1], digits)}]"
    return text


def score_cells(setup: Setup, r: dict) -> list[str]:
    """A table row's first cells: network, flow, input, UF1 and UAR (± std [95% interval]),
    accuracy (± std)."""
    return [
        NET_NAMES[setup.net],
        FLOWS[setup.flow],
        f"{setup.size}x{setup.size}",
        cell(r["uf1"], r["uf1_std"], r["uf1_ci"]),
        cell(r["uar"], r["uar_std"], r["uar_ci"]),
        pct(r["accuracy"], r["accuracy_std"]),
    ]


SCORE_HEADER = ["network", "flow", "input", "UF1 [95% CI]", "UAR [95% CI]", "accuracy"]


def majority_text(data: Data, num_classes: int, what: str = "") -> str:
    """What always predicting the most frequent class scores on ``data`` (``what``: which data,
    e.g. " on 3 classes")."""
    always = np.full_like(data.labels, np.bincount(data.labels).argmax())
    return (
        f"Majority class{what} (always predicting the most frequent class): accuracy "
        f"{pct(metrics.accuracy(data.labels, always))}, UF1 "
        f"{metrics.uf1(data.labels, always, num_classes):.3f}, "
        f"UAR {metrics.uar(data.labels, always, num_classes):.3f}."
    )


INTERVALS_TEXT = (
    "Intervals in brackets are 95% intervals by resampling subjects (1,000 resamples of the "
    "held-out subjects with replacement, the score recomputed from the pooled counts; "
    "merjax.metrics.bootstrap_ci), beside ± the standard deviation over training seeds. A "
    "subject's samples are not independent, so resampling samples would give narrower, "
    "over-confident intervals; with 20-30 subjects per database, differences inside these "
    "intervals are not differences."
)

NOT_VALID_TEXT = (
    "**The NOT VALID column is not a valid result.** It picks, for each held-out subject group, "
    "the evaluated epoch where that group's test samples scored best, which selects on the test "
    "set. It is shown only to measure how much that practice inflates a score; our results are "
    "the fixed-epoch columns."
)


def best_epoch_warning(what: str) -> str:
    """Why published numbers on ``what`` may be inflated: the Micro-Expression Benchmark's
    measurement of choosing epochs on test subjects."""
    fixed, best = paper.MEB_FIXED_VS_BEST_EPOCH["STSTNet"]
    return (
        f"Published numbers on {what}, like many micro-expression results, may come from "
        "choosing epochs by test results: the Micro-Expression Benchmark measured STSTNet's UF1 "
        f"on the MEGC 2019 composite at {fixed:.3f} with a fixed number of epochs against "
        f"{best:.3f} picking each subject's best test epoch."
    )

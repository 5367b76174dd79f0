"""The rows of the experiments beyond the paper (megc2019, casme3, holdout): each network on
each flow, trained its own way -- STSTNet as its authors trained it, the paper's networks as the
paper did.

What those experiments share lives here: their config fields (:class:`SetupsConfig`), a row of
their tables (:class:`Setup`: a network on a flow, at its input size, with its training), and
training a row::

    for setup in setups.of(cfg):
        result, sub = setups.train(ctx, setup)
        cells = setup.cells() + report.score_cells(setups.row(result, setup))
"""

from __future__ import annotations

import dataclasses

from merjax.config import Config
from merjax.context import Context
from merjax.evaluation import NetResult
from merjax.train import Execution, TrainConfig

NET_NAMES = {"ststnet": "STSTNet", "vy-3cl": "Vy-3CL", "resnet8": "ResNet8"}
FLOWS = {"tvl1": "TV-L1", "horn_schunck": "Horn-Schunck"}


@dataclasses.dataclass(frozen=True)
class SetupsConfig(Config):
    """The settings of an experiment of setups, beside the paper networks' (``size``, ``train``)."""

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

    def cells(self) -> list[str]:
        """A table row's first cells (:data:`HEADER`): network, flow, input size."""
        return [NET_NAMES[self.net], FLOWS[self.flow], f"{self.size}x{self.size}"]


HEADER = ["network", "flow", "input"]
"""The columns of :meth:`Setup.cells`; the scores follow (:data:`merjax.report.SCORE_HEADER`)."""


def ststnet_training(cfg: SetupsConfig) -> TrainConfig:
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


def of(cfg: SetupsConfig) -> list[Setup]:
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


def protocol(cfg: SetupsConfig, data: str, folds: str | None = None) -> str:
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


def validate(cfg: SetupsConfig) -> None:
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
    logits_for_not_valid: bool = True,
) -> tuple[NetResult, Context]:
    """``setup`` trained on the context's data (or ``composite``'s) with its folds (or
    ``groups``) and scored; ``save`` also trains it on every subject and saves it.
    ``logits_for_not_valid`` records the held-out logits every ``setup.eval_every`` epochs that
    the NOT VALID column reads. Returns the result and the derived context (its data)."""
    sub = derive(ctx, setup, composite)
    result = sub.train_and_score(
        setup.net,
        final=save,
        eval_every=setup.eval_every if logits_for_not_valid else 0,
        name=name or setup.name,
        groups=groups,
    )
    return result, sub


def derive(ctx: Context, setup: Setup, composite: str | None = None) -> Context:
    """The context ``setup`` trains in: its flow, input size and training, on the context's
    composite (or ``composite``)."""
    changes = dict(
        flow=dataclasses.replace(ctx.cfg.flow, method=setup.flow),
        size=setup.size,
        train=setup.train,
        execution=setup.execution,
    )
    if composite is not None:
        changes["composite"] = composite
    return ctx.derive(**changes)


def row(result: NetResult, setup: Setup) -> dict:
    """A table row's numbers (:meth:`NetResult.row`) with its setup."""
    return result.row() | {
        "flow": setup.flow,
        "size": setup.size,
        "optimizer": setup.train.optimizer,
        "epochs": setup.train.epochs,
    }

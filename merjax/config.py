"""Experiment configuration as Python: one frozen dataclass, profiles, and command-line overrides.

Every experiment module builds its ``Config`` with :func:`base` and small ``replace`` diffs; an
experiment with settings of its own subclasses :class:`Config` in its file (``--set`` reaches
those fields too)::

    cfg = base("quick").replace(nets=("vy-3cl",))
    cfg = override(cfg, ["train.epochs=20", "size=32"])  # what ``--set`` does in main

Profiles:

- ``paper``: the paper's protocol -- 64x64 flows, leave-one-subject-out (47 folds on the MEGC
  2018 composite), RMSprop, batch 64, 150 epochs. GPU work.
- ``quick``: minutes on a 2-core CPU. It cuts what costs (docs/protocol.md) and says so in
  every report: 16x16 network inputs (the 64x64 flows, area-averaged), 4 subject-grouped folds
  instead of 47 LOSO folds, and 6 epochs.
- ``tiny``: the tests' profile: the tiny synthetic database, 2 folds, 2 epochs, 8x8 inputs.
  It checks the plumbing, not the science.
"""

from __future__ import annotations

import ast
import dataclasses
import typing
from collections.abc import Sequence

from merjax.flow import FlowSettings
from merjax.train import Execution, TrainConfig

PROFILES = ("quick", "paper", "tiny")


@dataclasses.dataclass(frozen=True)
class Config:
    """What one experiment trains, on what, and how."""

    profile: str = "paper"
    # The clips it trains on (merjax.data.composite.COMPOSITES: megc2019, casme3-7, ...); None
    # for an experiment that reads none (spotting reads long videos).
    composite: str | None = "megc2018"
    # The networks a paper experiment trains (merjax.models.by_name names), one row of its table
    # each; an experiment that names its rows otherwise (setups, spotters) leaves it empty.
    nets: tuple[str, ...] = ("vy-3cl",)
    # The row that heads summary.json: a network of nets, a setup or a spotter; its final model
    # is the one saved (save_model).
    headline: str = "vy-3cl"
    size: int = 64  # network input side; the flows (flow.size) are resized to it
    num_folds: int | None = None  # None: leave-one-subject-out; k: k subject-grouped folds
    flow: FlowSettings = FlowSettings()
    train: TrainConfig = TrainConfig()  # what is learned (the protocol)
    execution: Execution = Execution()  # how the runs are computed (no number depends on it)
    synthetic: str = "full"  # synthetic database size when no real roots are given
    synthetic_seed: int = 0
    apex_policy: str = "midpoint"  # CASME II rows whose apex is '/' (merjax.data.casme2)
    # or "skip": bad samples are listed in the report, never dropped silently
    on_error: str = "raise"
    # The frames' real bit depth, for 16-bit files holding fewer bits (12-bit cameras); None:
    # the files' own range (merjax.data.frames.to_uint8).
    bit_depth: int | None = None
    # Also train the headline on every subject (one more run per seed) and save it to
    # ``models/<net>/`` for ``python -m merjax.predict``. Never used to score anything.
    save_model: bool = True
    # How convolutions compute: "auto" (per backend, measured: im2col on CPU, lax.conv elsewhere),
    # "lax" or "im2col". The parameters and the results (up to float rounding) are the same.
    conv_impl: str = "auto"

    def __post_init__(self):
        from merjax.data import composite
        from merjax.models.layers import resolve_conv_impl

        resolve_conv_impl(self.conv_impl)  # a clear error for an unknown formulation
        if not isinstance(self.synthetic_seed, int) or not 0 <= self.synthetic_seed < 2**32:
            raise ValueError(
                f"synthetic_seed must be an integer 0..2^32-1, got {self.synthetic_seed!r}"
            )
        if self.composite is not None:
            composite.spec(self.composite)  # and for an unknown composite

    def replace(self, **changes) -> Config:
        return dataclasses.replace(self, **changes)

    @property
    def protocol(self) -> str:
        """One line a report prints so that nobody mistakes a quick run for the paper's."""
        folds = (
            "leave-one-subject-out"
            if self.num_folds is None
            else f"{self.num_folds} subject-grouped folds"
        )
        return (
            f"{self.profile} profile: {self.size}x{self.size} inputs (flows at "
            f"{self.flow.size[0]}x{self.flow.size[1]}, {self.flow.describe()}), {folds}, "
            f"{self.train.epochs} epochs, batch {self.train.batch_size}, RMSprop lr "
            f"{self.train.learning_rate}, seeds {list(self.train.seeds)}"
        )


def base(profile: str, cls: type[Config] = Config) -> Config:
    """The base configuration of a profile, as ``cls`` (an experiment's subclass of Config, with its
    own defaults); experiments diff from it. The cheap profiles are one block each, here (as
    big_vision's configs keep their ``runlocal`` variant in one place)."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; expected one of {PROFILES}")
    cfg = cls(profile=profile)
    if profile == "quick":  # minutes on a 2-core CPU; every report states what it cuts
        cfg = cfg.replace(
            size=16,
            num_folds=4,
            train=TrainConfig(epochs=6),
            execution=Execution(epochs_per_call=1),
        )
    elif profile == "tiny":  # the tests' profile: plumbing, not science
        cfg = cfg.replace(
            size=8,
            num_folds=2,
            synthetic="tiny",
            flow=FlowSettings(size=(16, 16)),
            train=TrainConfig(epochs=2, batch_size=16),
            execution=Execution(epochs_per_call=1),
        )
    return cfg


def _parse(text: str, kind) -> object:
    """A value of type ``kind`` from its command-line text."""
    origin = typing.get_origin(kind)
    if kind is str:
        return text
    if kind is bool:
        if text.lower() in ("1", "true", "yes"):
            return True
        if text.lower() in ("0", "false", "no"):
            return False
        raise ValueError(f"expected true or false, got {text!r}")
    if kind in (int, float):
        return kind(text)
    if origin is tuple:
        items = [t for t in text.replace("(", "").replace(")", "").split(",") if t.strip()]
        inner = typing.get_args(kind)[0]
        return tuple(_parse(t.strip(), inner) for t in items)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        if text.lower() == "none" and len(args) < len(typing.get_args(kind)):
            return None
        return _parse(text, args[0])
    return ast.literal_eval(text)


def override(cfg: Config, assignments: Sequence[str]) -> Config:
    """``cfg`` with ``name=value`` assignments applied; nested fields as ``train.epochs=20``.

    Unknown names and unparsable values raise a ValueError that names the assignment.
    """
    for assignment in assignments:
        name, sep, text = assignment.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--set {assignment!r}: expected name=value (e.g. train.epochs=20)")
        path = name.strip().split(".")
        cfg = _assign(cfg, path, text.strip(), assignment)
    return cfg


def _assign(obj, path: list[str], text: str, assignment: str):
    fields = {f.name: f for f in dataclasses.fields(obj)}
    head = path[0]
    if head not in fields:
        raise ValueError(
            f"--set {assignment!r}: {type(obj).__name__} has no field {head!r}; fields: "
            f"{', '.join(sorted(fields))}"
        )
    if len(path) > 1:
        inner = getattr(obj, head)
        if not dataclasses.is_dataclass(inner):
            raise ValueError(f"--set {assignment!r}: {head!r} has no sub-fields")
        return _replace(obj, head, _assign(inner, path[1:], text, assignment), assignment)
    kind = typing.get_type_hints(type(obj))[head]
    try:
        value = _parse(text, kind)
    except (ValueError, SyntaxError) as e:
        raise ValueError(f"--set {assignment!r}: cannot read {text!r} as {kind}: {e}") from None
    return _replace(obj, head, value, assignment)


def _replace(obj, field: str, value, assignment: str):
    """``obj`` with ``field`` set, its checks (``__post_init__``) run now: a bad value is
    refused when the config is made, naming the assignment, not after hours of work."""
    try:
        return dataclasses.replace(obj, **{field: value})
    except (ValueError, TypeError) as e:
        if str(e).startswith("--set "):
            raise
        raise ValueError(f"--set {assignment!r}: {e}") from None

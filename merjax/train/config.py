"""The training protocol as one frozen dataclass (hashable: the trainer caches its programs on it)."""

from __future__ import annotations

import dataclasses
import math

STRATEGIES = ("auto", "vmap", "map", "chunked", "loop")
OPTIMIZERS = ("rmsprop", "adam")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """The training protocol. Defaults are the paper's (section 4) with MATLAB's RMSprop
    defaults, since the paper used MATLAB's trainNetwork and states no other values."""

    epochs: int = 150
    batch_size: int = 64
    optimizer: str = "rmsprop"  # the paper's (MATLAB's); "adam" for baselines published with it
    learning_rate: float = 1e-3  # MATLAB InitialLearnRate
    rms_decay: float = 0.9  # MATLAB SquaredGradientDecayFactor
    eps: float = 1e-8  # MATLAB Epsilon
    weight_decay: float = 1e-4  # MATLAB L2Regularization (added to the gradient)
    seeds: tuple[int, ...] = (0,)
    # How the runs share programs: auto (the fastest measured on the backend: merjax.train.resolve),
    # vmap, map, chunked (vmapped chunks of chunk_size runs) or loop (one run at a time).
    strategy: str = "auto"
    chunk_size: int = 8
    # Bytes of device memory per device that vmapped chunks may use; None: what the device reports
    # (no limit on CPU). Set, it makes `auto` size chunks to fit on any backend (merjax.train.plan_chunk).
    memory_limit: int | None = None
    epochs_per_call: int = 5  # epochs per compiled call: progress, NaN checks, checkpoints
    checkpoint_every: int = 0  # epochs between checkpoints; 0: none
    train_final: bool = False  # also train, per seed, a model on every subject
    augment: bool = True  # onset->apex+1 flows as extra training items (the paper's)
    # A run whose mean training loss of an epoch after the first exceeds this has diverged:
    # training stops and names the run (a non-finite loss stops it at any step).
    max_loss: float = 1e4

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        for name in ("epochs", "batch_size", "chunk_size", "epochs_per_call"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.seeds:
            raise ValueError("seeds must not be empty")
        for name in ("learning_rate", "eps", "max_loss"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive finite number, got {value!r}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if self.memory_limit is not None and self.memory_limit <= 0:
            raise ValueError(f"memory_limit must be a positive number of bytes, got {self.memory_limit!r}")
        if not 0 <= self.rms_decay < 1:
            raise ValueError(f"rms_decay must be in [0, 1), got {self.rms_decay!r}")

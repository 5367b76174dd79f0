"""What is learned and how the runs execute, as two frozen dataclasses.

:class:`TrainConfig` is the protocol: everything that changes what a run learns (optimizer, its
values, epochs, batches, BatchNorm rule, seeds). Checkpoint fingerprints, the trainer's compiled
programs and the experiments' cache of trained networks key on it, and on nothing else.
:class:`Execution` is how the runs are computed (strategy, chunks, memory, compiled calls,
checkpoints, the divergence guard): changing it changes no number of a finished run, so a run
may be resumed, reused or compared under another execution.
"""

from __future__ import annotations

import dataclasses
import math

STRATEGIES = ("auto", "vmap", "map", "chunked", "loop")
OPTIMIZERS = ("rmsprop", "adam")
SHUFFLES = ("once", "every-epoch")
BN_STATS = ("population", "moving")
L2_PARAMS = ("matlab", "all")
MAX_SEED = 2**31 - 1


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """The training protocol. Defaults are the paper's (section 4: RMSprop, batch 64, 150 epochs)
    and, for everything the paper leaves unstated, MATLAB R2018a's ``trainingOptions('rmsprop')``
    and ``trainNetwork``, which the paper trained with. From MATLAB's documentation:

    - RMSProp: ``v = d*v + (1 - d)*g^2``, ``theta -= lr*g/(sqrt(v) + eps)`` -- epsilon outside
      the square root (optax's default puts it inside); InitialLearnRate 1e-3,
      SquaredGradientDecayFactor 0.9, Epsilon 1e-8 (merjax.train.step.optimizer).
    - L2Regularization 1e-4, added to the gradient as ``lambda * factor * w``, with each layer's
      factors: convolution and fully connected WeightL2Factor 1 and BiasL2Factor 0, batch
      normalisation ScaleL2Factor 1 and OffsetL2Factor 1 -- so every parameter but the conv and
      dense biases (merjax.train.step.l2_mask).
    - Shuffle 'once': one permutation of the training data before training, kept every epoch
      (``shuffle``); MiniBatchSize: "trainNetwork discards the training data that does not fit
      into the final complete mini-batch of each epoch" (``drop_last``).
    - Batch normalisation: until R2021a (BatchNormalizationStatistics 'population' since then),
      trainNetwork replaces the layers' statistics after training by those of the whole
      training set (``bn_stats``; merjax.train.step.population_stats).

    Networks published with other frameworks (STSTNet: PyTorch) set their own values."""

    epochs: int = 150
    batch_size: int = 64
    optimizer: str = "rmsprop"  # the paper's (MATLAB's); "adam" for baselines published with it
    learning_rate: float = 1e-3  # MATLAB InitialLearnRate
    rms_decay: float = 0.9  # MATLAB SquaredGradientDecayFactor
    eps: float = 1e-8  # MATLAB Epsilon
    weight_decay: float = 1e-4  # MATLAB L2Regularization (added to the gradient)
    # Which parameters L2 applies to: "matlab" (every one but conv/dense biases: the layers' default
    # L2 factors) or "all".
    l2_params: str = "matlab"
    shuffle: str = "once"  # MATLAB's Shuffle: "once" (the default) or "every-epoch"
    drop_last: bool = True  # MATLAB discards the last partial mini-batch of every epoch
    # BatchNorm statistics for prediction: "population" (MATLAB R2018a: the whole training set's,
    # computed after training) or "moving" (running averages while training, as PyTorch).
    bn_stats: str = "population"
    seeds: tuple[int, ...] = (0,)
    train_final: bool = False  # also train, per seed, a model on every subject
    augment: bool = True  # onset->apex+1 flows as extra training items (the paper's)

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        for name, allowed in (
            ("shuffle", SHUFFLES),
            ("bn_stats", BN_STATS),
            ("l2_params", L2_PARAMS),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.seeds:
            raise ValueError("seeds must not be empty")
        bad = [s for s in self.seeds if isinstance(s, bool) or not 0 <= int(s) <= MAX_SEED]
        if bad or any(int(s) != s for s in self.seeds):
            raise ValueError(
                f"seeds must be integers in 0..{MAX_SEED} (JAX's int32 keys), got {bad[0]!r} "
                "(--seeds or train.seeds)"
                if bad
                else f"seeds must be integers, got {list(self.seeds)}"
            )
        if len(set(self.seeds)) != len(self.seeds):
            repeated = sorted({s for s in self.seeds if self.seeds.count(s) > 1})
            raise ValueError(
                f"seeds must differ: {repeated} given more than once (--seeds or train.seeds); "
                "a repeated seed would train and count the same runs twice"
            )
        for name in ("learning_rate", "eps"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive finite number, got {value!r}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if not 0 <= self.rms_decay < 1:
            raise ValueError(f"rms_decay must be in [0, 1), got {self.rms_decay!r}")


@dataclasses.dataclass(frozen=True)
class Execution:
    """How the runs of a training execute. None of these changes a finished run's numbers (up to
    float rounding between programs: tests/test_train.py)."""

    # How the runs share programs: auto (the fastest measured on the backend:
    # merjax.train.resolve), vmap, map, chunked (vmapped chunks of chunk_size runs) or loop (one
    # run at a time).
    strategy: str = "auto"
    chunk_size: int = 8
    # Bytes of device memory per device that vmapped chunks may use; None: what the device
    # reports (no limit on CPU). Set, it makes `auto` size chunks to fit on any backend
    # (merjax.train.plan_chunk).
    memory_limit: int | None = None
    epochs_per_call: int = 5  # epochs per compiled call: progress, NaN checks, checkpoints
    checkpoint_every: int = 0  # epochs between checkpoints; 0: none
    # A run whose mean training loss of an epoch after the first exceeds this has diverged:
    # training stops and names the run (a non-finite loss stops it at any step).
    max_loss: float = 1e4
    # End training after this epoch, as a kill would (tests of resuming); None: train to the end.
    stop_after_epoch: int | None = None

    def __post_init__(self):
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        for name in ("chunk_size", "epochs_per_call"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.checkpoint_every < 0:
            raise ValueError(f"checkpoint_every must be >= 0, got {self.checkpoint_every}")
        if not (math.isfinite(self.max_loss) and self.max_loss > 0):
            raise ValueError(f"max_loss must be a positive finite number, got {self.max_loss!r}")
        if self.memory_limit is not None and self.memory_limit <= 0:
            raise ValueError(
                f"memory_limit must be a positive number of bytes, got {self.memory_limit!r}"
            )

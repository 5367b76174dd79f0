"""Leave-one-subject-out training where every fold trains at once (docs/protocol.md).

One *run* = one held-out subject group under one seed (plus, optionally, one run per seed that
trains on every subject: the final model for inference). A run's whole state is a plain pytree;
the runs are stacked along a leading axis, so ``jax.vmap``, sharding over devices and orbax all
see the same structure.

The parts, one concern each:

- :mod:`merjax.train.config` -- :class:`TrainConfig`, the protocol (the paper's defaults), and
  :class:`Execution`, how the runs are computed;
- :mod:`merjax.train.folds` -- subject groups, the per-run masks that keep held-out subjects
  out of training, padding the run axis;
- :mod:`merjax.train.step` -- the pure per-run functions: init, an epoch's batches, a training
  step (with its metrics), prediction;
- :mod:`merjax.train.strategies` -- the jitted programs of a network and the strategies over the
  run axis (vmap, map, chunked, loop), each a value;
- :mod:`merjax.train.loso` -- the driver :func:`train_loso` (sharding, progress, checkpoints,
  pooling);
- :mod:`merjax.train.memory` -- the training program's memory from XLA's analysis, and
  :func:`plan_chunk`, the runs per vmapped chunk that fit a device;
- :mod:`merjax.train.metrics_log` -- ``metrics.jsonl``, its one writer;
- checkpoints live in :mod:`merjax.checkpoint` (inference's model folders use them too).

    from merjax import train
    config = train.TrainConfig(epochs=150)
    result = train.train_loso(model, x_NxHxWxC, augmented_NxHxWxC, labels, subjects, config)
    result.preds  # [seeds, N] pooled held-out predictions
"""

from merjax.train.config import STRATEGIES, Execution, TrainConfig
from merjax.train.folds import FINAL, Plan, fold_plan, pad_runs, subject_groups
from merjax.train.loso import (
    Diverged,
    LosoResult,
    LossExploded,
    NonFiniteLoss,
    fingerprint,
    predictions,
    train_loso,
)
from merjax.train.memory import (
    DoesNotFit,
    ProgramMemory,
    device_memory,
    plan_chunk,
    program_memory,
)
from merjax.train.metrics_log import MetricsLog
from merjax.train.step import (
    Metrics,
    RunState,
    epoch_batches,
    finalize_run,
    init_run,
    l2_mask,
    normalise,
    num_steps,
    optimizer,
    population_stats,
    predict_run,
    train_epochs,
    train_step,
)
from merjax.train.strategies import Programs, Stack, Strategy, programs, resolve

__all__ = [
    "FINAL",
    "STRATEGIES",
    "Diverged",
    "DoesNotFit",
    "Execution",
    "LossExploded",
    "LosoResult",
    "Metrics",
    "MetricsLog",
    "NonFiniteLoss",
    "Plan",
    "ProgramMemory",
    "Programs",
    "RunState",
    "Stack",
    "Strategy",
    "TrainConfig",
    "device_memory",
    "epoch_batches",
    "finalize_run",
    "fingerprint",
    "fold_plan",
    "init_run",
    "l2_mask",
    "normalise",
    "num_steps",
    "optimizer",
    "pad_runs",
    "plan_chunk",
    "population_stats",
    "predict_run",
    "predictions",
    "program_memory",
    "programs",
    "resolve",
    "subject_groups",
    "train_epochs",
    "train_loso",
    "train_step",
]

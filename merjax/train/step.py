"""The pure functions of one run: initialise, order an epoch, take a step, predict.

A run's whole state -- parameters, RMSprop state, BatchNorm statistics and its input
normalisation -- is a plain pytree (:class:`RunState`); the driver (:mod:`merjax.train.loso`)
stacks runs along a leading axis and vmaps, maps or loops these functions over it.

Every run trains on the same table of training items through its own mask: each epoch it draws
a fresh permutation of *its* training items, in mini-batches of ``batch_size`` with a validity
mask for the ragged end. Losses, gradients and BatchNorm statistics see only valid items.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from merjax.models.layers import BN_MOMENTUM
from merjax.train.config import TrainConfig

Metrics = dict[str, jax.Array]
"""What a step reports: ``loss`` (mean over the valid items), ``count`` (valid items) and
``accuracy`` (of the valid items, on the training mini-batch, before the update)."""


class RunState(NamedTuple):
    """Everything one run carries between steps (stacked: a leading run axis)."""

    params: Any
    batch_stats: Any
    opt_state: Any
    mean: jax.Array  # [H, W, C] training-set mean image (MATLAB's 'zerocenter')
    scale: jax.Array  # [] training-set std after centring


def l2_mask(params: Any) -> Any:
    """Which parameters MATLAB's L2Regularization reaches with the layers' default factors: conv
    and dense kernels (WeightL2Factor 1), BatchNorm scale and offset (ScaleL2Factor and
    OffsetL2Factor 1), not conv and dense biases (BiasL2Factor 0). A ``bias`` is a BatchNorm
    offset when it sits beside a ``scale``."""

    def mask(tree):
        if not isinstance(tree, dict):
            return True
        is_bn = "scale" in tree
        return {
            k: (is_bn or k != "bias") if not isinstance(v, dict) else mask(v)
            for k, v in tree.items()
        }

    return mask(dict(params))


def optimizer(config: TrainConfig) -> optax.GradientTransformation:
    """MATLAB R2018a's RMSProp with its L2 regularisation (TrainConfig's docstring): L2 added to
    the gradient of the parameters :func:`l2_mask` selects, then ``g / (sqrt(v) + eps)`` with
    epsilon outside the square root. Or Adam (beta 0.9 / 0.999, epsilon ``config.eps``) for
    baselines published with it."""
    mask = l2_mask if config.l2_params == "matlab" else None
    decay = (
        [optax.add_decayed_weights(config.weight_decay, mask=mask)] if config.weight_decay else []
    )
    if config.optimizer == "adam":
        return optax.chain(
            *decay, optax.adam(config.learning_rate, b1=0.9, b2=0.999, eps=config.eps)
        )
    return optax.chain(
        *decay,
        optax.rmsprop(
            config.learning_rate, decay=config.rms_decay, eps=config.eps, eps_in_sqrt=False
        ),
    )


def uses_dropout(model: nn.Module) -> bool:
    """Whether the network draws dropout masks in training (and so needs a key per step)."""
    return bool(getattr(model, "dropout", 0))


def run_key(seed: jax.Array) -> jax.Array:
    """The PRNG key of a run: initialisation and every epoch's order derive from it."""
    return jax.random.key(seed)


def init_run(
    model: nn.Module, tx, items: jax.Array, train_mask: jax.Array, seed: jax.Array
) -> RunState:
    """A fresh run: initialised network and optimizer, normalisation from its training items."""
    variables = model.init(jax.random.fold_in(run_key(seed), 0), items[:1], train=False)
    w = train_mask.reshape((-1,) + (1,) * (items.ndim - 1))
    count = jnp.maximum(train_mask.sum(), 1).astype(items.dtype)
    mean = jnp.where(w, items, 0).sum(0) / count  # where, not *: held-out items never leak in
    var = jnp.where(w, (items - mean) ** 2, 0).sum() / (count * np.prod(items.shape[1:]))
    scale = jnp.where(var > 0, jnp.sqrt(var), 1.0)
    params = variables["params"]
    return RunState(params, variables.get("batch_stats", {}), tx.init(params), mean, scale)


def normalise(state: RunState, x: jax.Array) -> jax.Array:
    """The run's input normalisation (its training items' mean image and std)."""
    return (x - state.mean) / state.scale


def num_steps(train_counts: np.ndarray, batch_size: int, drop_last: bool) -> int:
    """Steps per epoch that hold the largest run's mini-batches (at least one)."""
    most = int(np.max(train_counts))
    return max(1, most // batch_size if drop_last else -(-most // batch_size))


def epoch_batches(
    train_mask: jax.Array,
    seed: jax.Array,
    epoch: jax.Array,
    *,
    steps: int,
    batch_size: int,
    shuffle: str = "once",
    drop_last: bool = True,
) -> tuple[jax.Array, jax.Array]:
    """One epoch's mini-batches of a run: item indices and validity, both ``[steps, batch_size]``.

    A permutation of the run's own training items (from its seed): drawn once and kept
    (``shuffle="once"``, MATLAB's default) or fresh each epoch (``"every-epoch"``). With
    ``drop_last`` the items past the last complete mini-batch sit out the epoch, as in MATLAB
    (a run with fewer items than one batch trains on them as one partial batch); otherwise the
    ragged end is a partial batch. Steps a run has no items for are padded as invalid."""
    m = train_mask.shape[0]
    draw = 0 if shuffle == "once" else epoch
    r = jax.random.uniform(jax.random.fold_in(run_key(seed), draw + 1), (m,))
    order = jnp.argsort(jnp.where(train_mask, r, 2.0))  # this run's items first, shuffled
    total = steps * batch_size
    order = jnp.resize(order, (total,)) if total > m else order[:total]
    count = train_mask.sum()
    if drop_last:
        count = jnp.where(count >= batch_size, count // batch_size * batch_size, count)
    valid = jnp.arange(total) < count
    return order.reshape(steps, batch_size), valid.reshape(steps, batch_size)


def train_step(
    state: RunState,
    items: jax.Array,
    labels: jax.Array,
    idx_B: jax.Array,
    valid_B: jax.Array,
    *,
    model: nn.Module,
    tx,
    key: jax.Array | None = None,
) -> tuple[RunState, Metrics]:
    """One optimizer step on the valid items of a mini-batch; returns ``(state, metrics)``.
    ``key`` draws the dropout masks of networks that have dropout.

    A batch without valid items changes nothing and reports loss 0, count 0, accuracy 0."""
    rngs = {"dropout": key} if key is not None else None

    def loss_fn(params, batch_stats, x, y):
        logits, updates = model.apply(
            {"params": params, "batch_stats": batch_stats},
            x,
            train=True,
            mask=valid_B,
            mutable=["batch_stats"],
            rngs=rngs,
        )
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, y)
        loss = jnp.sum(ce * valid_B) / jnp.maximum(valid_B.sum(), 1)
        return loss, (updates.get("batch_stats", batch_stats), logits)

    y_B = labels[idx_B]
    x = jnp.where(valid_B[:, None, None, None], normalise(state, items[idx_B]), 0.0)
    (loss, (stats, logits)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params, state.batch_stats, x, y_B
    )
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    new = state._replace(
        params=optax.apply_updates(state.params, updates), batch_stats=stats, opt_state=opt_state
    )
    count = valid_B.sum().astype(jnp.int32)
    any_valid = count > 0
    new = jax.tree.map(lambda a, b: jnp.where(any_valid, a, b), new, state)
    correct = jnp.sum((logits.argmax(-1) == y_B) & valid_B)
    metrics = {
        "loss": jnp.where(any_valid, loss, 0.0),
        "count": count,
        "accuracy": correct / jnp.maximum(count, 1),
    }
    return new, metrics


def train_epochs(
    state: RunState,
    items: jax.Array,
    labels: jax.Array,
    train_mask: jax.Array,
    seed: jax.Array,
    first_epoch: jax.Array,
    *,
    model: nn.Module,
    tx,
    num_epochs: int,
    steps: int,
    batch_size: int,
    shuffle: str = "once",
    drop_last: bool = True,
) -> tuple[RunState, Metrics]:
    """``num_epochs`` epochs of one run in one program (``lax.scan`` over epochs and steps);
    returns the state and the steps' metrics, each ``[num_epochs, steps]``."""

    dropout = uses_dropout(model)

    def epoch(state, e):
        idx, valid = epoch_batches(
            train_mask,
            seed,
            e,
            steps=steps,
            batch_size=batch_size,
            shuffle=shuffle,
            drop_last=drop_last,
        )
        if not dropout:
            return lax.scan(
                lambda s, b: train_step(s, items, labels, *b, model=model, tx=tx),
                state,
                (idx, valid),
            )
        keys = jax.random.split(
            jax.random.fold_in(run_key(seed), 2**20 + e), steps
        )  # a mask per step
        return lax.scan(
            lambda s, b: train_step(s, items, labels, b[0], b[1], model=model, tx=tx, key=b[2]),
            state,
            (idx, valid, keys),
        )

    return lax.scan(epoch, state, first_epoch + jnp.arange(num_epochs))


def population_stats(
    state: RunState, items: jax.Array, train_mask: jax.Array, *, model: nn.Module
) -> Any:
    """BatchNorm statistics of the whole training set, as MATLAB R2018a's trainNetwork sets them
    after training: each BatchNorm layer's input mean and (biased) variance over the run's
    training items, the layers before it normalising with theirs. One training-mode pass with
    every training item in one masked batch computes exactly that; the running averages it
    would write are ``momentum * 0 + (1 - momentum) * batch``, so dividing by ``1 - momentum``
    reads the batch statistics back."""
    zeros = jax.tree.map(jnp.zeros_like, state.batch_stats)
    rngs = {"dropout": jax.random.key(0)} if uses_dropout(model) else None
    _, updates = model.apply(
        {"params": state.params, "batch_stats": zeros},
        normalise(state, items),
        train=True,
        mask=train_mask,
        mutable=["batch_stats"],
        rngs=rngs,
    )
    return jax.tree.map(lambda s: s / (1.0 - BN_MOMENTUM), updates["batch_stats"])


def finalize_run(
    state: RunState, items: jax.Array, train_mask: jax.Array, *, model: nn.Module
) -> RunState:
    """The run as MATLAB R2018a predicts with it (``TrainConfig.bn_stats="population"``): its
    BatchNorm statistics replaced by the training set's (:func:`population_stats`). A network
    without BatchNorm is returned as it is."""
    if not jax.tree.leaves(state.batch_stats):
        return state
    return state._replace(batch_stats=population_stats(state, items, train_mask, model=model))


def predict_run(
    state: RunState,
    inputs: jax.Array,
    test_idx: jax.Array,
    *,
    model: nn.Module,
    features: bool = False,
):
    """Eval-mode logits ``[T, K]`` (and penultimate features) for one run's test samples."""
    variables = {"params": state.params, "batch_stats": state.batch_stats}
    x = normalise(state, inputs[test_idx])
    return model.apply(variables, x, train=False, return_features=features)

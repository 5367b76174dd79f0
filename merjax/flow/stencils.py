"""Stencils shared by the flow methods and representations: finite differences and edge padding
as slices, resampling as two small constant matrices (no convolutions, no gathers)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax


def window(x: jax.Array, top: int, left: int, height: int, width: int) -> jax.Array:
    """``x[..., top : top + height, left : left + width]`` as one ``lax.slice``: the same values;
    inside a loop, jax2onnx converts ``x[..., a:b]`` on a symbolic batch to index arithmetic and
    a GatherND per read, and a ``lax.slice`` to one ONNX Slice."""
    lead = x.ndim - 2
    return lax.slice(
        x, (0,) * lead + (top, left), tuple(x.shape[:lead]) + (top + height, left + width)
    )


def gradient(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(d/dx, d/dy)`` of ``[..., H, W]``: central differences inside, one-sided at the borders,
    as ``np.gradient``."""

    def along(x, axis):
        n = x.shape[axis]
        first = lax.slice_in_dim(x, 1, 2, axis=axis) - lax.slice_in_dim(x, 0, 1, axis=axis)
        mid = 0.5 * (
            lax.slice_in_dim(x, 2, n, axis=axis) - lax.slice_in_dim(x, 0, n - 2, axis=axis)
        )
        last = lax.slice_in_dim(x, n - 1, n, axis=axis) - lax.slice_in_dim(
            x, n - 2, n - 1, axis=axis
        )
        return jnp.concatenate([first, mid, last], axis=axis)

    return along(x, x.ndim - 1), along(x, x.ndim - 2)


def pad_edge(x: jax.Array, widths: tuple[tuple[int, int], ...]) -> jax.Array:
    """``jnp.pad(x, widths, mode="edge")`` on the last ``len(widths)`` axes, as concatenated
    border slices: the same values, and a graph that exporters convert (jnp.pad's edge mode
    also emits zero-width pieces for the unpadded axes, which jax2onnx gets wrong)."""
    for i, (before, after) in enumerate(widths):
        axis = x.ndim - len(widths) + i
        n = x.shape[axis]
        parts = [lax.slice_in_dim(x, 0, 1, axis=axis)] * before
        parts += [x] + [lax.slice_in_dim(x, n - 1, n, axis=axis)] * after
        x = jnp.concatenate(parts, axis=axis) if len(parts) > 1 else x
    return x


def _keys_cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel, a = -0.5 (jax.image's "cubic")."""
    x = np.abs(x)
    near = ((1.5 * x - 2.5) * x) * x + 1.0
    far = ((-0.5 * x + 2.5) * x - 4.0) * x + 2.0
    return np.where(x >= 2.0, 0.0, np.where(x >= 1.0, far, near))


_KERNELS = {"linear": lambda x: np.maximum(0.0, 1.0 - np.abs(x)), "cubic": _keys_cubic}


@functools.lru_cache(maxsize=128)
def resize_weights(n_in: int, n_out: int, method: str, antialias: bool) -> np.ndarray:
    """``[n_in, n_out]`` weights of ``jax.image.resize(..., method, antialias)`` along one axis
    (jax.image's ``compute_weight_mat`` in numpy): the kernel, widened by the factor when
    antialiased downsampling, each output's weights normalised to sum to one. A resize is then two
    small matmuls of constants: the same numbers, in a graph every exporter converts."""
    if n_in == n_out:  # jax.image.resize leaves such an axis alone
        return np.eye(n_in, dtype=np.float32)
    scale = n_out / n_in
    kernel_scale = max(1.0 / scale, 1.0) if antialias else 1.0
    sample = (np.arange(n_out) + 0.5) / scale - 0.5
    w = _KERNELS[method]((sample[None, :] - np.arange(n_in)[:, None]) / kernel_scale)
    total = w.sum(axis=0, keepdims=True)
    w = np.where(np.abs(total) > 1000 * np.finfo(np.float32).eps, w / np.where(total, total, 1), 0)
    w = np.where(((sample >= -0.5) & (sample <= n_in - 0.5))[None, :], w, 0)
    return w.astype(np.float32)


def resize_hw(x: jax.Array, size: tuple[int, int], method: str, antialias: bool) -> jax.Array:
    """``jax.image.resize`` of the last two axes of ``x`` to ``size``, as two matmuls."""
    wh = resize_weights(x.shape[-2], int(size[0]), method, antialias)
    ww = resize_weights(x.shape[-1], int(size[1]), method, antialias)
    out = jnp.einsum("...yw,yh,wx->...hx", x, wh, ww, precision=lax.Precision.HIGHEST)
    return out.astype(x.dtype)


def fori_loop_reading(n: int, body, state, consts):
    """``lax.fori_loop(0, n, lambda _, s: body(s, consts), state)``, with ``consts`` (what the
    sweep reads but never changes: derivatives, parameters) carried in the loop state instead of
    closed over. XLA sees the same loop (a value carried unchanged is loop invariant); ONNX
    exporters convert a body that reads only its state, and not one with traced closures."""

    def step(_, carry):
        s, c = carry
        return body(s, c), c

    return lax.fori_loop(0, n, step, (state, consts))[0]


def while_loop_reading(cond, body, state, consts):
    """:func:`fori_loop_reading` for ``lax.while_loop``: ``cond(state, consts)`` and
    ``body(state, consts)``."""
    return lax.while_loop(
        lambda carry: cond(*carry), lambda carry: (body(*carry), carry[1]), (state, consts)
    )[0]

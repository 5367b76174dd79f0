"""Finite differences shared by the flow methods and representations (slices, no convolutions)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax


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

"""Horn-Schunck optical flow as a jitted, batched JAX stencil.

Two variants (docs/flow.md):

* ``"matlab"`` -- MATLAB's ``opticalFlowHS`` (the paper's tool): Sobel/8 derivatives of the
  second frame, ``It = second - first``, 4-neighbour mean, ``smoothness`` not squared,
  replicate borders. Optional ``velocity_difference`` stopping rule.
* ``"classic"`` -- Horn & Schunck (1981) exactly as ``pyoptflow.HornSchunck`` 1.5 computes it:
  2x2x2-cube derivatives of both frames, the 1/12-1/6 averaging kernel, ``alpha**2`` in the
  denominator (``smoothness`` plays ``alpha``), zero padding at the borders.

Every stencil is written as padding plus shifted slices plus elementwise arithmetic, which XLA
fuses into one loop nest per Jacobi sweep; this is far faster than ``lax.conv`` on CPU
(benchmarks/RESULTS.md) and needs no special casing for batching: all leading axes of
``[..., H, W]`` ride along.

Conventions: the output is ``[..., H, W, 2]`` float32 holding ``(vx, vy)`` in pixels per frame
pair; ``vx > 0`` is motion to the right, ``vy > 0`` motion down.
"""

from __future__ import annotations

import functools
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

from merjax.flow import stencils
from merjax.flow.inputs import intensities
from merjax.flow.settings import VARIANTS, HornSchunckSettings

Variant = Literal["matlab", "classic"]
_DEFAULTS = HornSchunckSettings()


# --------------------------------------------------------------------------- stencils


def _pad_hw(x: jax.Array, widths: tuple[tuple[int, int], tuple[int, int]], mode: str) -> jax.Array:
    """Pads the last two axes of ``x`` (``mode`` "edge" or "constant", zeros)."""
    if mode == "edge":
        return stencils.pad_edge(x, widths)
    return jnp.pad(x, [(0, 0)] * (x.ndim - 2) + list(widths), mode=mode)


def _neighbours(p: jax.Array) -> dict[tuple[int, int], jax.Array]:
    """The 3x3 neighbourhood of every pixel of a 1-padded ``[..., H+2, W+2]`` array."""
    h, w = p.shape[-2] - 2, p.shape[-1] - 2
    return {
        (dy, dx): stencils.window(p, 1 + dy, 1 + dx, h, w) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
    }


def _sobel_over_8(img: jax.Array) -> tuple[jax.Array, jax.Array]:
    """MATLAB's Sobel/8 gradients with replicate borders (correlation, not convolution)."""
    n = _neighbours(_pad_hw(img, ((1, 1), (1, 1)), "edge"))
    ix = ((n[-1, 1] - n[-1, -1]) + 2.0 * (n[0, 1] - n[0, -1]) + (n[1, 1] - n[1, -1])) / 8.0
    iy = ((n[1, -1] - n[-1, -1]) + 2.0 * (n[1, 0] - n[-1, 0]) + (n[1, 1] - n[-1, 1])) / 8.0
    return ix, iy


def _zero_pad1(x: jax.Array) -> jax.Array:
    """One ring of zeros around the last two axes."""
    return _pad_hw(x, ((1, 1), (1, 1)), "constant")


def _mean4_edge(p: jax.Array) -> jax.Array:
    """4-neighbour mean (kernel [[0,1,0],[1,0,1],[0,1,0]]/4, replicate borders) of a zero-padded
    field.

    A replicated neighbour is the pixel itself, so the mean is the zero-padded neighbour sum plus
    the pixel times its number of neighbours outside the image (1 on an edge, 2 in a corner).
    This keeps the Jacobi state zero-padded for both variants; ``jnp.pad(mode="edge")`` inside
    the sweep does not fuse (benchmarks/RESULTS.md).
    """
    n = _neighbours(p)
    h, w = p.shape[-2] - 2, p.shape[-1] - 2
    outside = np.zeros((h, w), np.float32)
    outside[0, :] += 1
    outside[-1, :] += 1
    outside[:, 0] += 1
    outside[:, -1] += 1
    return 0.25 * ((n[-1, 0] + n[1, 0] + n[0, -1] + n[0, 1]) + outside * n[0, 0])


def _mean8_zero(p: jax.Array) -> jax.Array:
    """Horn-Schunck's averaging kernel [[1,2,1],[2,0,2],[1,2,1]]/12 of a zero-padded field."""
    n = _neighbours(p)
    edges = n[-1, 0] + n[1, 0] + n[0, -1] + n[0, 1]
    corners = n[-1, -1] + n[-1, 1] + n[1, -1] + n[1, 1]
    return edges / 6.0 + corners / 12.0


def _cube_derivatives(f0: jax.Array, f1: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Horn-Schunck's 2x2x2-cube derivatives as ``scipy.signal.convolve2d(..., 'same')`` gives them.

    ``convolve2d`` with a 2x2 kernel in 'same' mode reads pixel (i, j) and its up/left
    neighbours with zeros outside, so every estimate sits at (i - 1/2, j - 1/2). pyoptflow's own
    kernels, flipped by the convolution, yield the negatives of these three; Horn-Schunck's update
    is invariant to negating all three, so the flow is the same number for number.
    """

    def up_left(x):  # returns x[i, j], x[i, j-1], x[i-1, j], x[i-1, j-1]
        p = _pad_hw(x, ((1, 0), (1, 0)), "constant")
        h, w = x.shape[-2:]
        return tuple(
            stencils.window(p, t, left, h, w) for t, left in ((1, 1), (1, 0), (0, 1), (0, 0))
        )

    a, a_l, a_u, a_ul = up_left(f0 + f1)
    ix = 0.25 * ((a + a_u) - (a_l + a_ul))
    iy = 0.25 * ((a + a_l) - (a_u + a_ul))
    d, d_l, d_u, d_ul = up_left(f1 - f0)
    it = 0.25 * (d + d_l + d_u + d_ul)
    return ix, iy, it


# --------------------------------------------------------------------------- Horn-Schunck


@functools.partial(jax.jit, static_argnames=("num_iter", "variant", "stop_rule"))
def _horn_schunck(
    f0: jax.Array,
    f1: jax.Array,
    smoothness: jax.Array,
    velocity_difference: jax.Array,
    *,
    num_iter: int,
    variant: str,
    stop_rule: bool,
) -> jax.Array:
    """Jitted core on float32 ``[..., H, W]`` frames; see :func:`horn_schunck`."""
    if variant == "matlab":
        ix, iy = _sobel_over_8(f1)
        it = f1 - f0
        denom = smoothness + ix * ix + iy * iy
        mean = _mean4_edge
    else:
        ix, iy, it = _cube_derivatives(f0, f1)
        denom = smoothness * smoothness + ix * ix + iy * iy
        mean = _mean8_zero

    # The Jacobi state (u, v) is kept with its ring of zeros, so a sweep reads its neighbours as
    # plain shifted slices and writes the padded result; padding inside the sweep instead makes
    # XLA:CPU bounds-check every neighbour read. The derivatives ride in the loop state
    # (stencils.fori_loop_reading), so the loop exports to ONNX.
    terms = (ix, iy, it, denom)

    def sweep(uv_p: tuple[jax.Array, jax.Array], terms) -> tuple[jax.Array, jax.Array]:
        (u_p, v_p), (ix, iy, it, denom) = uv_p, terms
        u_bar, v_bar = mean(u_p), mean(v_p)
        d = (ix * u_bar + iy * v_bar + it) / denom
        return _zero_pad1(u_bar - ix * d), _zero_pad1(v_bar - iy * d)

    def unpad_stack(u_p: jax.Array, v_p: jax.Array) -> jax.Array:
        h, w = u_p.shape[-2] - 2, u_p.shape[-1] - 2
        return jnp.stack([stencils.window(x, 1, 1, h, w) for x in (u_p, v_p)], axis=-1)

    zeros = _zero_pad1(jnp.zeros_like(f0))
    if not stop_rule:
        return unpad_stack(*stencils.fori_loop_reading(num_iter, sweep, (zeros, zeros), terms))

    # MATLAB's VelocityDifference: a pair stops once the largest change of either velocity
    # component between two sweeps is below the threshold. Each pair of a batch stops on its
    # own (frozen once converged), so a batched call equals per-pair calls.
    batch_shape = f0.shape[:-2]

    def cond(state, _):
        i, _, _, active = state
        return (i < num_iter) & jnp.any(active)

    def body(state, consts):
        (i, u, v, active), (terms, threshold) = state, consts
        u_new, v_new = sweep((u, v), terms)
        change = jnp.maximum(jnp.abs(u_new - u), jnp.abs(v_new - v)).max(axis=(-2, -1))
        keep = active[..., None, None]
        u, v = jnp.where(keep, u_new, u), jnp.where(keep, v_new, v)
        return i + 1, u, v, active & (change >= threshold)

    state0 = (jnp.int32(0), zeros, zeros, jnp.ones(batch_shape, dtype=bool))
    _, u_p, v_p, _ = stencils.while_loop_reading(cond, body, state0, (terms, velocity_difference))
    return unpad_stack(u_p, v_p)


def _check_smoothness(smoothness) -> None:
    """Rejects a non-positive smoothness when its value is known (not under a trace)."""
    try:
        s = np.asarray(smoothness, dtype=np.float64)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return
    except (TypeError, ValueError):
        raise ValueError(
            f"smoothness must be a positive finite scalar, got {smoothness!r}"
        ) from None
    if s.ndim != 0 or not np.isfinite(s) or s <= 0:
        raise ValueError(f"smoothness must be a positive finite scalar, got {smoothness!r}")


def horn_schunck(
    frame0: jax.Array | np.ndarray,
    frame1: jax.Array | np.ndarray,
    *,
    smoothness: float | jax.Array = _DEFAULTS.smoothness,
    num_iter: int = _DEFAULTS.num_iter,
    variant: Variant = _DEFAULTS.variant,
    velocity_difference: float | None = None,
    check_frames: bool = True,
) -> jax.Array:
    """Horn-Schunck optical flow from ``frame0`` to ``frame1``.

    Args:
      frame0, frame1: grey frames ``[..., H, W]`` of equal shape; any leading axes are a batch
        (a batch of clips is one call). Unsigned integers are scaled to [0, 1] by their dtype's
        maximum (uint8 / 255, uint16 / 65535); floats must be in [0, 1] (checked); signed
        integers are refused. A last axis of 3 or 4 is refused as a colour image: convert to grey.
      smoothness: MATLAB's ``Smoothness`` (``"matlab"``, not squared) or Horn-Schunck's
        ``alpha`` (``"classic"``, squared). Traced, so changing it does not recompile.
      num_iter: Jacobi sweeps (MATLAB's ``MaxIteration``); static.
      variant: ``"matlab"`` (default) or ``"classic"``; see the module docstring.
      velocity_difference: ``"matlab"`` only. ``None`` or 0 runs exactly ``num_iter`` sweeps in a
        ``lax.fori_loop`` (MATLAB's default, and reverse-differentiable); a positive value stops a
        pair when the largest absolute velocity change of a sweep falls below it
        (``lax.while_loop``; forward-mode differentiable only).
      check_frames: refuse frames with NaN or inf pixels (when their values are known, i.e.
        not under a trace). It reads the frames once more; benchmarks turn it off.

    Returns:
      ``[..., H, W, 2]`` float32 flow ``(vx, vy)``; ``vx > 0`` right, ``vy > 0`` down.

    Jitted once per (shape, dtype, num_iter, variant); works unchanged on CPU and GPU and is
    differentiable with respect to the frames and ``smoothness``.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    if not isinstance(num_iter, (int, np.integer)) or num_iter < 0:
        raise ValueError(f"num_iter must be a non-negative int, got {num_iter!r}")
    _check_smoothness(smoothness)
    stop_rule = bool(velocity_difference)
    if stop_rule:
        if variant != "matlab":
            raise ValueError(
                "velocity_difference is MATLAB's stopping rule; use it with variant='matlab'"
            )
        if velocity_difference < 0:
            raise ValueError(f"velocity_difference must be >= 0, got {velocity_difference!r}")
    f0, f1 = intensities(frame0, frame1, check_frames=check_frames)
    return _horn_schunck(
        f0,
        f1,
        jnp.asarray(smoothness, jnp.float32),
        jnp.asarray(velocity_difference or 0.0, jnp.float32),
        num_iter=int(num_iter),
        variant=variant,
        stop_rule=stop_rule,
    )

"""TV-L1 optical flow as a jitted, batched JAX program: the flow most micro-expression work uses.

The algorithm is the duality-based TV-L1 of Zach, Pock and Bischof (2007) with the coarse-to-fine
pyramid and warping of Wedel et al. (2009), as specified in Sánchez, Meinhardt-Llopis and
Facciolo, "TV-L1 Optical Flow Estimation", IPOL 2013 (whose parameter names are used here):

    for each scale, coarsest first (frames blurred and zoomed by ``zfactor``):
        for each of ``nwarps`` warps:
            warp frame1 and its gradient by the current flow u (bilinear, edges replicated)
            rho_c = I1w - grad(I1w) . u - I0
            for each of ``num_iter`` iterations:
                v = u + thresholding step on rho = rho_c + grad(I1w) . u with lambda * theta
                u = v + theta * div(p)                          (per flow component)
                p = (p + tau/theta grad(u)) / (1 + tau/theta |grad(u)|)
        the flow is zoomed to the next scale and scaled with it

Intensities. IPOL states its parameters for 0-255 images; merjax's frames are in [0, 1] (uint8 is
divided by 255, as for Horn-Schunck). The data term scales with the intensities, so the same
energy on [0, 1] frames has ``lambda`` multiplied by 255: the default ``lambda_=38.25`` is IPOL's
0.15. ``tau``, ``theta`` and ``epsilon`` are in flow units and do not change.

Iterations. IPOL stops each warp's iterations when the mean squared update falls below
``epsilon**2`` (at most 300). Here the count is fixed by default (``num_iter=10``,
``epsilon=None``): a ``lax.fori_loop`` whose cost is known and which is differentiable with
respect to the frames; ``epsilon=0.01, num_iter=300`` gives IPOL's stopping rule (a
``lax.while_loop``, each pair of a batch stopping on its own). Warps are bilinear (IPOL's are
bicubic, scikit-image's bilinear).

Conventions as :func:`merjax.flow.horn_schunck`: frames ``[..., H, W]`` with any leading batch
axes, output ``[..., H, W, 2]`` float32 ``(vx, vy)``, ``vx > 0`` right, ``vy > 0`` down; jitted
once per shape and static setting.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from merjax.flow import stencils
from merjax.flow.inputs import intensities
from merjax.flow.settings import TVL1Settings
from merjax.flow.stencils import gradient

_DEFAULTS = TVL1Settings()

MIN_SIDE = 16
"""IPOL's coarsest scale keeps both sides at least this long."""

_GRAD_IS_ZERO = 1e-10


def num_scales(height: int, width: int, nscales: int, zfactor: float) -> int:
    """Scales of the pyramid: at most ``nscales``, the coarsest at least :data:`MIN_SIDE` pixels
    (IPOL's rule: ``1 + log(min side / 16) / log(1 / zfactor)``)."""
    n = 1 + math.log(min(height, width) / MIN_SIDE) / math.log(1 / zfactor)
    return max(1, min(int(nscales), int(n)))


def _sizes(height: int, width: int, n: int, zfactor: float) -> list[tuple[int, int]]:
    return [(int(height * zfactor**s + 0.5), int(width * zfactor**s + 0.5)) for s in range(n)]


def _blur(x: jax.Array, sigma: float) -> jax.Array:
    """Separable Gaussian blur of the last two axes, replicated borders (radius 3 sigma)."""
    r = max(1, math.ceil(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k = (k / k.sum()).astype(np.float32)
    for axis in (-1, -2):
        n = x.shape[axis]
        xp = stencils.pad_edge(x, ((r, r),) if axis == -1 else ((r, r), (0, 0)))
        x = sum(
            float(k[i]) * lax.slice_in_dim(xp, i, i + n, axis=x.ndim + axis)
            for i in range(2 * r + 1)
        )
    return x


def _zoom(x: jax.Array, size: tuple[int, int]) -> jax.Array:
    """Resamples the last two axes to ``size`` (bicubic, as IPOL's zooms)."""
    return stencils.resize_hw(x, size, "cubic", antialias=False)


def _warp(images: list[jax.Array], u1: jax.Array, u2: jax.Array) -> list[jax.Array]:
    """Each ``[B, H, W]`` image sampled at ``(x + u1, y + u2)``: bilinear, edges replicated."""
    b, h, w = u1.shape
    x = jnp.clip(jnp.arange(w, dtype=u1.dtype) + u1, 0, w - 1)
    y = jnp.clip(jnp.arange(h, dtype=u1.dtype)[:, None] + u2, 0, h - 1)
    x0 = jnp.clip(jnp.floor(x), 0, w - 2).astype(jnp.int32)
    y0 = jnp.clip(jnp.floor(y), 0, h - 2).astype(jnp.int32)
    fx, fy = x - x0, y - y0
    idx = (y0 * w + x0).reshape(b, h * w)

    def sample(img, offset):
        return jnp.take_along_axis(img.reshape(b, h * w), idx + offset, axis=1).reshape(b, h, w)

    out = []
    for img in images:
        top = (1 - fx) * sample(img, 0) + fx * sample(img, 1)
        bottom = (1 - fx) * sample(img, w) + fx * sample(img, w + 1)
        out.append((1 - fy) * top + fy * bottom)
    return out


def _forward_gradient(u: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Forward differences, zero on the last column (x) and row (y)."""
    h, w = u.shape[-2:]
    win = functools.partial(stencils.window, u)  # lax.slice: one ONNX Slice in the loop
    ux = jnp.pad(win(0, 1, h, w - 1) - win(0, 0, h, w - 1), [(0, 0)] * (u.ndim - 1) + [(0, 1)])
    uy = jnp.pad(
        win(1, 0, h - 1, w) - win(0, 0, h - 1, w), [(0, 0)] * (u.ndim - 2) + [(0, 1), (0, 0)]
    )
    return ux, uy


def _divergence(p1: jax.Array, p2: jax.Array) -> jax.Array:
    """Minus the adjoint of :func:`_forward_gradient` (backward differences, IPOL's borders)."""
    h, w = p1.shape[-2:]
    last_col, last_row = np.arange(w) == w - 1, (np.arange(h) == h - 1)[:, None]
    p1 = jnp.where(last_col, 0.0, p1)  # a select, not a scatter: one ONNX Where in the loop
    p2 = jnp.where(last_row, 0.0, p2)
    d1 = p1 - jnp.pad(stencils.window(p1, 0, 0, h, w - 1), [(0, 0)] * (p1.ndim - 1) + [(1, 0)])
    d2 = p2 - jnp.pad(
        stencils.window(p2, 0, 0, h - 1, w), [(0, 0)] * (p2.ndim - 2) + [(1, 0), (0, 0)]
    )
    return d1 + d2


def _norm(a: jax.Array, b: jax.Array) -> jax.Array:
    """sqrt(a^2 + b^2) with a finite gradient at zero (the dual update meets many zeros)."""
    sq = a * a + b * b
    return jnp.where(sq > 0, jnp.sqrt(jnp.where(sq > 0, sq, 1.0)), 0.0)


def _warp_step(state, frames, params, num_iter: int, epsilon: float | None):
    """One warp: the thresholding / primal / dual iterations at one scale."""
    u1, u2, p11, p12, p21, p22 = state
    i0, i1, i1x, i1y = frames
    tau, lam, theta = params
    l_t = lam * theta
    taut = tau / theta
    i1w, i1wx, i1wy = _warp([i1, i1x, i1y], u1, u2)
    grad = i1wx * i1wx + i1wy * i1wy
    safe_grad = jnp.where(grad > _GRAD_IS_ZERO, grad, 1.0)
    rho_c = i1w - i1wx * u1 - i1wy * u2 - i0

    # What the iterations read but never change rides in the loop state
    # (stencils.fori_loop_reading), so the loop exports to ONNX.
    consts = (rho_c, i1wx, i1wy, grad, safe_grad, l_t, taut, theta)

    def iteration(s, c):
        u1, u2, p11, p12, p21, p22 = s
        rho_c, i1wx, i1wy, grad, safe_grad, l_t, taut, theta = c
        rho = rho_c + i1wx * u1 + i1wy * u2
        step = jnp.where(
            rho < -l_t * grad, l_t, jnp.where(rho > l_t * grad, -l_t, -rho / safe_grad)
        )
        step = jnp.where((grad > _GRAD_IS_ZERO) | (jnp.abs(rho) > l_t * grad), step, 0.0)
        v1, v2 = u1 + step * i1wx, u2 + step * i1wy
        new1 = v1 + theta * _divergence(p11, p12)
        new2 = v2 + theta * _divergence(p21, p22)
        g1x, g1y = _forward_gradient(new1)
        g2x, g2y = _forward_gradient(new2)
        n1 = 1.0 + taut * _norm(g1x, g1y)
        n2 = 1.0 + taut * _norm(g2x, g2y)
        return (
            new1,
            new2,
            (p11 + taut * g1x) / n1,
            (p12 + taut * g1y) / n1,
            (p21 + taut * g2x) / n2,
            (p22 + taut * g2y) / n2,
        )

    state = (u1, u2, p11, p12, p21, p22)
    if epsilon is None:
        return stencils.fori_loop_reading(num_iter, iteration, state, consts)

    # IPOL's rule: a pair stops once the mean squared update of an iteration is below epsilon^2.
    def cond(c, _):
        n, _, active = c
        return (n < num_iter) & jnp.any(active)

    def body(c, consts):
        n, s, active = c
        new = iteration(s, consts)
        change = ((new[0] - s[0]) ** 2 + (new[1] - s[1]) ** 2).mean(axis=(-2, -1))
        keep = active[:, None, None]
        s = tuple(jnp.where(keep, a, b) for a, b in zip(new, s, strict=True))
        return n + 1, s, active & (change >= epsilon * epsilon)

    active = jnp.ones(u1.shape[:1], bool)
    return stencils.while_loop_reading(cond, body, (jnp.int32(0), state, active), consts)[1]


@functools.partial(jax.jit, static_argnames=("nscales", "zfactor", "nwarps", "num_iter", "epsilon"))
def _tvl1(
    f0: jax.Array,
    f1: jax.Array,
    tau,
    lam,
    theta,
    *,
    nscales: int,
    zfactor: float,
    nwarps: int,
    num_iter: int,
    epsilon: float | None,
) -> jax.Array:
    """Jitted core on float32 ``[B, H, W]`` frames in [0, 1]; returns ``[B, H, W, 2]``."""
    h, w = f0.shape[-2:]
    sizes = _sizes(h, w, num_scales(h, w, nscales, zfactor), zfactor)
    sigma = 0.6 * math.sqrt(1.0 / (zfactor * zfactor) - 1.0)  # IPOL's smoothing before zooming out
    pyramid = [(f0, f1)]
    for size in sizes[1:]:
        a, b = pyramid[-1]
        pyramid.append((_zoom(_blur(a, sigma), size), _zoom(_blur(b, sigma), size)))
    params = (tau, lam, theta)
    u1 = u2 = None
    for (i0, i1), size in zip(reversed(pyramid), reversed(sizes), strict=True):
        if u1 is None:
            u1 = u2 = jnp.zeros_like(i0)
        else:  # zoom the coarser flow in, with its vectors
            prev = u1.shape[-2:]
            u1 = _zoom(u1, size) * (size[1] / prev[1])
            u2 = _zoom(u2, size) * (size[0] / prev[0])
        i1x, i1y = gradient(i1)
        zeros = jnp.zeros_like(i0)
        state = (u1, u2, zeros, zeros, zeros, zeros)
        frames = (i0, i1, i1x, i1y)
        state = stencils.fori_loop_reading(
            nwarps, lambda s, c: _warp_step(s, *c, num_iter, epsilon), state, (frames, params)
        )
        u1, u2 = state[0], state[1]
    return jnp.stack([u1, u2], axis=-1)


def tvl1(
    frame0: jax.Array | np.ndarray,
    frame1: jax.Array | np.ndarray,
    *,
    tau: float = _DEFAULTS.tau,
    lambda_: float = _DEFAULTS.lambda_,
    theta: float = _DEFAULTS.theta,
    nscales: int = _DEFAULTS.nscales,
    zfactor: float = _DEFAULTS.zfactor,
    nwarps: int = _DEFAULTS.nwarps,
    num_iter: int = _DEFAULTS.num_iter,
    epsilon: float | None = _DEFAULTS.epsilon,
    check_frames: bool = True,
) -> jax.Array:
    """TV-L1 optical flow from ``frame0`` to ``frame1`` (see the module docstring).

    Args:
      frame0, frame1: grey frames ``[..., H, W]`` of equal shape (at least 8x8); leading axes are
        a batch. Unsigned integers are scaled to [0, 1] by their dtype's maximum; floats are used
        as given (in [0, 1]).
      tau: time step of the dual update (IPOL 0.25; stable for tau <= 0.25).
      lambda_: weight of the data term for [0, 1] intensities (IPOL's 0.15 x 255). Smaller is
        smoother.
      theta: coupling of the primal and auxiliary flows (IPOL 0.3).
      nscales: pyramid scales at most; the coarsest keeps sides >= 16 px (IPOL's rule).
      zfactor: zoom between scales (IPOL 0.5).
      nwarps: warps per scale (IPOL 5).
      num_iter: iterations per warp (fixed; with ``epsilon``: at most).
      epsilon: None for fixed iterations (differentiable), else IPOL's stopping threshold.
      check_frames: refuse NaN or inf pixels when the values are known.

    Returns:
      ``[..., H, W, 2]`` float32 flow ``(vx, vy)``.
    """
    for name, value in (("tau", tau), ("lambda_", lambda_), ("theta", theta)):
        if not isinstance(value, jax.core.Tracer) and not (np.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    if not 0 < zfactor < 1:
        raise ValueError(f"zfactor must be in (0, 1), got {zfactor!r}")
    for name, value in (("nscales", nscales), ("nwarps", nwarps), ("num_iter", num_iter)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if epsilon is not None and not epsilon > 0:
        raise ValueError(f"epsilon must be None (fixed iterations) or > 0, got {epsilon!r}")
    f0, f1 = intensities(frame0, frame1, min_side=8, check_frames=check_frames)
    batch = f0.shape[:-2]
    f0 = f0.reshape((-1,) + f0.shape[-2:])
    f1 = f1.reshape((-1,) + f1.shape[-2:])
    flow = _tvl1(
        f0,
        f1,
        jnp.float32(tau),
        jnp.float32(lambda_),
        jnp.float32(theta),
        nscales=int(nscales),
        zfactor=float(zfactor),
        nwarps=int(nwarps),
        num_iter=int(num_iter),
        epsilon=None if epsilon is None else float(epsilon),
    )
    return flow.reshape(batch + flow.shape[-3:])

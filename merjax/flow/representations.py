"""Network inputs from a flow: the paper's representations, optical strain, resizing."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from merjax.flow.stencils import gradient, resize_weights

REPRESENTATIONS: dict[str, int] = {
    "vx": 1,
    "vy": 1,
    "mag": 1,
    "vxvy": 2,
    "vxvym": 3,
    "strain": 1,
    "vxvystrain": 3,
    "ststnet": 3,
}
"""Flow representations and their channel counts."""


def _safe_norm(a: jax.Array, b: jax.Array) -> jax.Array:
    """sqrt(a^2 + b^2) with a finite (zero) gradient at the origin."""
    sq = a * a + b * b
    nonzero = sq > 0
    return jnp.where(nonzero, jnp.sqrt(jnp.where(nonzero, sq, 1.0)), 0.0)


def optical_strain(flow: jax.Array) -> jax.Array:
    """Optical strain magnitude ``[..., H, W]`` of a flow ``[..., H, W, 2]``.

    As in STSTNet (Liong et al., 2019): with ``e_xx = du/dx``, ``e_yy = dv/dy`` and
    ``e_xy = e_yx = (du/dy + dv/dx) / 2``, ``|e| = sqrt(e_xx^2 + e_yy^2 + e_xy^2 + e_yx^2)``.
    """
    u, v = flow[..., 0], flow[..., 1]
    du_dx, du_dy = gradient(u)
    dv_dx, dv_dy = gradient(v)
    e_xy = 0.5 * (du_dy + dv_dx)
    return _safe_norm(_safe_norm(du_dx, dv_dy), jnp.sqrt(2.0) * e_xy)


def representation(flow: jax.Array, kind: str) -> jax.Array:
    """Network input ``[..., H, W, C]`` from a flow ``[..., H, W, 2]``.

    ``kind``: ``vx``, ``vy``, ``mag`` (magnitude M), ``vxvy`` (the paper's Vx-Vy pair), ``vxvym``
    (Vx, Vy, M: the 3-channel ResNet input), ``strain`` (optical strain magnitude),
    ``vxvystrain`` (Vx, Vy, strain) or ``ststnet`` (STSTNet's input, Liong et al. 2019: the same
    three channels, in the order of the authors' released data, ``norm_u_v_os``). Channel counts
    are in ``REPRESENTATIONS``.
    """
    if kind not in REPRESENTATIONS:
        raise ValueError(
            f"unknown flow representation {kind!r}; expected one of {sorted(REPRESENTATIONS)}"
        )
    if flow.ndim < 3 or flow.shape[-1] != 2:
        raise ValueError(f"flow must have shape [..., H, W, 2], got {flow.shape}")
    vx, vy = flow[..., 0], flow[..., 1]
    channels = {
        "vx": lambda: [vx],
        "vy": lambda: [vy],
        "mag": lambda: [_safe_norm(vx, vy)],
        "vxvy": lambda: [vx, vy],
        "vxvym": lambda: [vx, vy, _safe_norm(vx, vy)],
        "strain": lambda: [optical_strain(flow)],
        "vxvystrain": lambda: [vx, vy, optical_strain(flow)],
        "ststnet": lambda: [vx, vy, optical_strain(flow)],
    }[kind]()
    return jnp.stack(channels, axis=-1)


def input_maps(flow: jax.Array, size: int, kind: str) -> jax.Array:
    """What a network of input side ``size`` reads of a flow ``[..., H, W, 2]``: the flow resized
    to ``size x size`` (when it is not that size), then its representation ``kind``. Training
    (merjax.context) and inference (merjax.inference) both call this, so they cannot differ."""
    if flow.shape[-3:-1] != (size, size):
        flow = resize_flow(flow, (size, size))
    return representation(flow, kind)


def resize_flow(flow: jax.Array, size: tuple[int, int]) -> jax.Array:
    """Resizes a flow ``[..., H, W, 2]`` to ``size = (h, w)`` (linear, antialiased when
    downsampling, as ``jax.image.resize``), scaling the vectors with the image.

    A displacement of ``vx`` pixels at width ``W`` is ``vx * w / W`` pixels at width ``w``
    (likewise ``vy`` with the heights).
    """
    if flow.ndim < 3 or flow.shape[-1] != 2:
        raise ValueError(f"flow must have shape [..., H, W, 2], got {flow.shape}")
    h, w = (int(s) for s in size)
    if h <= 0 or w <= 0:
        raise ValueError(f"size must be two positive ints (h, w), got {size!r}")
    in_h, in_w = flow.shape[-3], flow.shape[-2]
    wh, ww = resize_weights(in_h, h, "linear", True), resize_weights(in_w, w, "linear", True)
    out = jnp.einsum(
        "...ywc,yh,wx->...hxc", flow, wh, ww, precision=jax.lax.Precision.HIGHEST
    ).astype(flow.dtype)
    return out * jnp.asarray([w / in_w, h / in_h], out.dtype)

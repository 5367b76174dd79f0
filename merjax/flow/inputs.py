"""Frames as the flow methods read them: intensities in [0, 1], checked before any work.

Shared by Horn-Schunck and TV-L1 so that both refuse the same bad input the same way: frames of
different shapes, colour images read as batches, signed integers, NaN or inf pixels.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def to_intensity(frame: jax.Array | np.ndarray) -> jax.Array:
    """Frames as float32 intensities in [0, 1]: unsigned integers are divided by their dtype's
    maximum (uint8 by 255, uint16 by 65535), floats are kept as they are (give them in [0, 1]).

    Signed integers and booleans are refused: they have no intensity range to scale by."""
    if not hasattr(frame, "dtype"):
        frame = np.asarray(frame)
    dtype = np.dtype(frame.dtype)
    if jnp.issubdtype(dtype, jnp.unsignedinteger):
        return jnp.asarray(frame, jnp.float32) / float(np.iinfo(dtype).max)
    if jnp.issubdtype(dtype, jnp.floating):
        return jnp.asarray(frame, jnp.float32)
    raise TypeError(
        "frames must be unsigned integers (uint8, uint16: scaled to [0, 1]) or floating point in "
        "[0, 1], "
        f"got dtype {dtype}"
        + ("; cast signed integer frames first" if jnp.issubdtype(dtype, jnp.integer) else "")
    )


FLOAT_RANGE = (-0.5, 1.5)
"""The values a float frame may hold: intensities in [0, 1], with room for what resampling adds
(cubic interpolation overshoots by a few percent) and rounding; frames in 0-255 or 0-65535 are
far outside and refused."""


def check_values(frame: jax.Array, name: str = "frame", *, is_float: bool = True) -> None:
    """Rejects NaN or inf pixels and, for float frames, values outside [0, 1], when the values
    are known (not under a trace, where they cannot be looked at). One NaN would spread over
    much of the flow; a float frame in 0..255 gives a flow of another scale entirely."""
    if isinstance(frame, jax.core.Tracer):
        return
    bad = int(jnp.size(frame) - jnp.isfinite(frame).sum())
    if bad:
        raise ValueError(
            f"{name} has {bad} non-finite pixel(s) (NaN or inf); fix or drop those frames"
        )
    if is_float and jnp.size(frame):
        low, high = float(jnp.min(frame)), float(jnp.max(frame))
        if high > FLOAT_RANGE[1] or low < FLOAT_RANGE[0]:
            hint = " (it looks like 0-255: divide by 255)" if 1.5 < high <= 255.5 else ""
            raise ValueError(
                f"{name} is floating point with values in [{low:g}, {high:g}]; float frames must "
                f"be intensities in [0, 1]{hint}, or pass the integer frames as they were read "
                "(uint8, uint16: scaled by their range)"
            )


def check_layout(shape: tuple[int, ...]) -> None:
    """Colour images ``[H, W, 3]`` would silently be read as a batch of H grey frames W x 3."""
    if len(shape) >= 3 and shape[-1] in (3, 4):
        raise ValueError(
            f"frames of shape {shape} look like colour images (last axis {shape[-1]}): convert "
            "them to "
            "grey [..., H, W] first (e.g. merjax.inference.to_gray for OpenCV's BGR); frames 3 or "
            "4 "
            "pixels wide are not accepted"
        )


def intensities(
    frame0, frame1, *, min_side: int = 2, check_frames: bool = True
) -> tuple[jax.Array, jax.Array]:
    """Both frames as float32 intensities after every check (shape, layout, dtype, values: no NaN
    or inf, float frames in [0, 1])."""
    shape0, shape1 = np.shape(frame0), np.shape(frame1)
    if len(shape0) < 2:
        raise ValueError(f"frames must be at least 2-D [..., H, W]; frame0 has shape {shape0}")
    if shape0 != shape1:
        raise ValueError(f"frame0 and frame1 must have the same shape, got {shape0} and {shape1}")
    if shape0[-1] < min_side or shape0[-2] < min_side:
        raise ValueError(
            f"frames must be at least {min_side}x{min_side} pixels, got H, W = {shape0[-2:]}"
        )
    check_layout(shape0)
    is_float = [
        jnp.issubdtype(np.asarray(f).dtype if not hasattr(f, "dtype") else f.dtype, jnp.floating)
        for f in (frame0, frame1)
    ]
    f0, f1 = to_intensity(frame0), to_intensity(frame1)
    if check_frames:
        check_values(f0, "frame0", is_float=is_float[0])
        check_values(f1, "frame1", is_float=is_float[1])
    return f0, f1

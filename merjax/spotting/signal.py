"""Training-free spotting, as the MEGC baselines spot: motion between frames t - k and t over
facial regions, from merjax's jitted flow batched over the whole video.

For each frame t the flow (TV-L1 by default) from frame t - k is averaged in each facial region
(face-relative boxes, :data:`REGIONS`); the nose region's mean flow is subtracted from every
region's, which removes a head translation the whole face shares; a region's motion is the
length of what is left, averaged with the same at t + k (so the frame is compared with its head
and its tail frame, and an expression that rises and returns peaks once, at its apex), and the
video's signal is the mean of its ``top`` most moving regions
(the eye regions left out by default: blinks move them more than any micro-expression). ``k``
comes from the frame rate: about half an expression's length (:data:`HALF_SECONDS`; at 30 fps 6
and 18 frames, SOFTNet's k for CAS(ME)^2). Peaks are frames whose signal is the largest within
``k`` frames on either side (nearby peaks merge into the highest) and above a threshold relative
to the video's own signal, ``mean + p (max - mean)``; each gives the interval ``[t - k, t +
k]``. Micro and macro intervals are spotted in two passes with their own ``k``, and both passes
see a strong expression. Which one it is, the two signals say: an expression whose whole rise
fits in the micro k moves as much over k_micro frames as over k_macro (the micro signal near the
macro peak is at least ``micro_ratio`` of the macro one), so that macro peak is dropped and the
micro peaks stand; otherwise it is a macro-expression, and micro peaks inside its interval (its
rise seen through the short window) are dropped.

A relative threshold finds peaks in any signal, pure sensor noise included, so a peak must also
clear the video's own noise floor (:func:`noise_floor`): its signal's median plus the largest
value noise alone would reach over the video's frames, plus a margin, in units of the noise's
spread measured from frame-to-frame differences (consecutive values come from independent
frame pairs, so their differences hold the noise and little of an expression's slow rise).

    crops = read_frames(video.paths(), settings.size, where=video.name, fps=video.fps)
    numbers = [video.numbers[i] for i in crops.kept]
    result = spot(crops.frames_FxHxW, video.fps, numbers, settings, crops.regions)
    result.intervals, result.signals["micro"]
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import contextvars
import dataclasses
import functools
import hashlib
import logging
import zipfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from merjax import batches, checkpoint, faces, files
from merjax import flow as flow_lib
from merjax.data.frames import read_gray
from merjax.data.intervals import KINDS, Interval
from merjax.errors import DataError
from merjax.faces import FaceSettings
from merjax.flow import FlowSettings

# Face-relative boxes (x0, y0, x1, y1) in the face crop. The nose is the reference.
REGIONS: dict[str, tuple[float, float, float, float]] = {
    "brow_left": (0.12, 0.20, 0.45, 0.36),
    "brow_right": (0.55, 0.20, 0.88, 0.36),
    "eye_left": (0.15, 0.34, 0.45, 0.48),
    "eye_right": (0.55, 0.34, 0.85, 0.48),
    "nose": (0.40, 0.44, 0.60, 0.62),
    "cheek_left": (0.12, 0.48, 0.38, 0.66),
    "cheek_right": (0.62, 0.48, 0.88, 0.66),
    "mouth_left": (0.22, 0.62, 0.50, 0.84),
    "mouth_right": (0.50, 0.62, 0.78, 0.84),
    "chin": (0.32, 0.82, 0.68, 0.98),
}
EYES = ("eye_left", "eye_right")
REFERENCE = "nose"
# How the head's own motion is taken off each flow before the regions are measured: "nose", the
# nose region's mean flow subtracted (a translation, as SOFTNet and the MEGC baselines); or
# "similarity", a translation, roll and scale fitted robustly to the flow over the face's regions
# (eyes left out) and subtracted, which also takes off a head that turns in the image plane.
HEAD = ("nose", "similarity")
MEASURED = tuple(REGIONS)  # the columns of a motion array: every region, the eyes too
# About half of an expression's length, seconds: k = round(fps x this).
HALF_SECONDS = {"micro": 0.2, "macro": 0.6}


@dataclasses.dataclass(frozen=True)
class SpotSettings:
    """How the training-free spotter measures motion and picks intervals."""

    size: int = 32  # face crop side the flows are computed at
    # TV-L1: the nose compensation subtracts displacements, and TV-L1 measures displacements;
    # the paper's MATLAB Horn-Schunck (10 iterations on [0, 1] intensities) measures a
    # gradient-weighted motion in which regions of different texture are not comparable (a
    # 1 px shift reads 0.01). Its size is not used: ``size`` is. Faces: one box found on the
    # first frame, the regions from its landmarks, no alignment -- on the photo-face long videos
    # both spotters scored higher so than aligned frame by frame (benchmarks/RESULTS.md,
    # "Faces"); the nose's mean flow already takes off a head translation.
    flow: FlowSettings = FlowSettings(method="tvl1", faces=FaceSettings(align="box"))
    half_seconds: tuple[float, float] = (HALF_SECONDS["micro"], HALF_SECONDS["macro"])
    threshold: float = 0.2  # p of mean + p (max - mean), per video and kind
    top: int = 3  # regions averaged into the signal
    mask_eyes: bool = True
    micro_ratio: float = 0.8  # a macro peak this much matched by the micro signal is micro
    # Noise spreads above the expected noise maximum a peak must reach (noise_floor); None:
    # no floor (the relative threshold alone, as the MEGC baselines).
    noise_margin: float | None = 3.0
    # The least motion a peak must reach whatever the video's noise, as a fraction of the face
    # crop's side (0.001: 0.1 px on a 100 px face): a video without sensor noise has a noise
    # floor of 0, which every wobble of the flow clears. A displacement: with Horn-Schunck's
    # gradient-weighted motion, set it anew.
    min_motion: float = 0.001
    head: str = "similarity"  # HEAD: how the head's motion is taken off
    # Scale each pair's second frame to the first's mean brightness before the flow: lighting
    # flicker changes the image's gain, and a flow that assumes constant brightness reads a
    # change of gain as motion everywhere.
    match_brightness: bool = True
    # A peak where the eyes move this many times as much as the signal is a blink, not an
    # expression (dropped); None: no such rule.
    blink_ratio: float | None = 1.5
    batch: int = 256  # frame pairs per jitted call

    def __post_init__(self):
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold p must be in [0, 1], got {self.threshold}")
        if self.size < 8:
            raise ValueError(f"size must be at least 8 pixels, got {self.size}")
        if not 1 <= self.top <= len(self.regions()) - 1:
            raise ValueError(f"top must be 1..{len(self.regions()) - 1}, got {self.top}")
        half = self.half_seconds
        if len(half) != 2 or not all(np.isfinite(h) and h > 0 for h in half) or half[0] >= half[1]:
            raise ValueError(
                f"half_seconds must be (micro, macro) seconds with 0 < micro < macro, got {half!r}"
            )
        if not 0.0 < self.micro_ratio <= 1.0:
            raise ValueError(f"micro_ratio must be in (0, 1], got {self.micro_ratio!r}")
        if not isinstance(self.batch, int) or self.batch < 1:
            raise ValueError(f"batch must be an integer >= 1, got {self.batch!r}")
        if self.head not in HEAD:
            raise ValueError(f"head must be one of {HEAD}, got {self.head!r}")
        if not (np.isfinite(self.min_motion) and 0 <= self.min_motion < 1):
            raise ValueError(f"min_motion must be a fraction in [0, 1), got {self.min_motion!r}")
        r = self.blink_ratio
        if r is not None and not (isinstance(r, (int, float)) and np.isfinite(r) and r > 0):
            raise ValueError(f"blink_ratio must be None or a number > 0, got {r!r}")
        m = self.noise_margin
        if m is not None and not (isinstance(m, (int, float)) and np.isfinite(m) and m >= 0):
            raise ValueError(f"noise_margin must be None or a number >= 0, got {m!r}")

    def k(self, kind: str, fps: float) -> int:
        """Frames between the two frames of a flow, for intervals of ``kind`` at ``fps``."""
        if fps <= 0:
            raise DataError(f"frame rate {fps} is not positive")
        return max(1, round(self.half_seconds[KINDS.index(kind)] * fps))

    def ks(self, fps: float) -> dict[str, int]:
        """Per kind, its k at ``fps``; a rate at which spotting cannot tell the kinds apart is a
        DataError: a micro k below 2 frames (a flow one frame apart measures noise), or the two
        kinds' k equal (at 1 fps both are 1, and every interval is called micro)."""
        ks = {kind: self.k(kind, fps) for kind in KINDS}
        if ks["micro"] < 2 or ks["micro"] >= ks["macro"]:
            raise DataError(
                f"at {fps:g} fps a micro-expression's k is {ks['micro']} frame(s) and a "
                f"macro-expression's {ks['macro']}: spotting needs a micro k of 2 frames or more, "
                f"below the macro k (a rate of {2 / self.half_seconds[0]:.1f} fps or more); if the "
                "video's stated rate is wrong, give the right one"
            )
        return ks

    def regions(self) -> list[str]:
        """The regions of the signal: every region but the eyes when they are masked."""
        return [r for r in REGIONS if not (self.mask_eyes and r in EYES)]

    def describe(self) -> str:
        """The rule in words, for a report's protocol."""
        head = {"nose": "the nose's mean flow", "similarity": "a fitted similarity motion"}
        floor = (
            "no noise floor"
            if self.noise_margin is None
            else (
                f"the noise floor (margin {self.noise_margin:g}, at least {self.min_motion:g} of "
                "the crop)"
            )
        )
        blink = "" if self.blink_ratio is None else f"; blinks: eyes >= {self.blink_ratio:g}x"
        return (
            f"flows {self.size}x{self.size} ({self.flow.method}"
            f"{', brightness matched' if self.match_brightness else ''}), head motion: "
            f"{head[self.head]} taken off; peaks above mean + {self.threshold:g} (max - mean) and "
            f"{floor}{blink}"
        )

    def least_motion(self) -> float:
        """:attr:`min_motion` in the signal's units, pixels of the crop."""
        return self.min_motion * self.size


def region_weights(
    size: int, names: Sequence[str], boxes: dict[str, tuple[float, ...]] | None = None
) -> np.ndarray:
    """``[A, size * size]``: each region's pixels, weights summing to 1 (a region's mean); the
    regions' boxes in crop units from ``boxes`` (landmark regions, :mod:`merjax.faces.regions`)
    or the fixed fractions :data:`REGIONS`."""
    boxes = REGIONS if boxes is None else boxes
    out = np.zeros((len(names), size, size), np.float32)
    for i, name in enumerate(names):
        x0, y0, x1, y1 = boxes[name]
        out[i, int(y0 * size) : max(int(y1 * size), int(y0 * size) + 1),
            int(x0 * size) : max(int(x1 * size), int(x0 * size) + 1)] = 1.0  # fmt: skip
    out /= out.sum((1, 2), keepdims=True)
    return out.reshape(len(names), -1)


def eye_mask(size: int, boxes: dict[str, tuple[float, ...]] | None = None) -> np.ndarray:
    """``[size, size, 1]``: 0 over the eyes (blinks), 1 elsewhere."""
    boxes = REGIONS if boxes is None else boxes
    keep = np.ones((size, size, 1), np.float32)
    for eye in EYES:
        x0, y0, x1, y1 = boxes[eye]
        keep[int(y0 * size) : max(int(y1 * size), int(y0 * size) + 1),
             int(x0 * size) : max(int(x1 * size), int(x0 * size) + 1)] = 0.0  # fmt: skip
    return keep


def face_support(size: int, boxes: dict[str, tuple[float, ...]] | None = None) -> np.ndarray:
    """``[size * size]``: 1 over the face's regions but the eyes (where the head's motion is
    fitted: blinks are no head motion, and the background beyond the face does not move with
    it), 0 elsewhere."""
    names = [r for r in REGIONS if r not in EYES]
    inside = region_weights(size, names, boxes) > 0
    support = inside.any(0).astype(np.float32)
    return support * eye_mask(size, boxes).reshape(-1)


def take_off_head(uv_BxSxSx2: jnp.ndarray, support_P: jnp.ndarray, steps: int = 3) -> jnp.ndarray:
    """The flow with the head's motion taken off: a similarity motion (translation, roll about
    the support's centre, scale) fitted to the flow over ``support`` (weights per pixel) by
    least squares, reweighted ``steps`` times so that pixels far from the fit -- an
    expression, a small part of the face -- count less (Cauchy weights at the residual's RMS).
    For small motions a similarity is ``d = t + [[s, -r], [r, s]] (p - c)``; with ``c`` the
    weighted centre the four parameters decouple and each has a closed form."""
    b, h, w, _ = uv_BxSxSx2.shape
    yy, xx = jnp.mgrid[0:h, 0:w]
    x = xx.reshape(-1).astype(jnp.float32)
    y = yy.reshape(-1).astype(jnp.float32)
    uv = uv_BxSxSx2.reshape(b, -1, 2)
    weight = jnp.broadcast_to(support_P, (b, h * w))
    for step in range(steps + 1):
        total = weight.sum(1, keepdims=True) + 1e-12
        cx = (weight * x).sum(1, keepdims=True) / total
        cy = (weight * y).sum(1, keepdims=True) / total
        dx, dy = x - cx, y - cy  # [B, P]
        t = (weight[..., None] * uv).sum(1) / total  # [B, 2]
        u, v = uv[..., 0] - t[:, :1], uv[..., 1] - t[:, 1:]
        den = (weight * (dx * dx + dy * dy)).sum(1, keepdims=True) + 1e-12
        scale = (weight * (dx * u + dy * v)).sum(1, keepdims=True) / den
        roll = (weight * (dx * v - dy * u)).sum(1, keepdims=True) / den
        model = jnp.stack([scale * dx - roll * dy, roll * dx + scale * dy], -1) + t[:, None]
        residual = uv - model
        if step < steps:
            r2 = (residual**2).sum(-1)
            rms2 = (support_P * r2).sum(1, keepdims=True) / support_P.sum() + 1e-12
            weight = support_P / (1.0 + r2 / rms2)
    return residual.reshape(b, h, w, 2)


@functools.lru_cache(maxsize=16)
def _motion_program(settings: SpotSettings, feature_size: int) -> Callable:
    """Jitted ``(first [B, H, W], second [B, H, W], weights [A, H*W], keep [H, W, 1], support
    [H*W]) -> (motion [B, A], features)``: each region's (:data:`MEASURED`) flow length after
    the head's motion is taken off (:data:`HEAD`); with ``feature_size`` that flow, eyes zeroed,
    as (Vx, Vy, strain) maps ``[B, f, f, 3]`` for the learned spotter. The regions are
    arguments, so every video's landmark regions share one program."""
    ref = MEASURED.index(REFERENCE)
    params = settings.flow.params()

    @jax.jit
    def program(first, second, weights, keep, support):
        if settings.match_brightness:
            first, second = flow_lib.to_intensity(first), flow_lib.to_intensity(second)
            # The median of the pixels' ratios over the face: a gain moves every pixel's
            # ratio alike, motion only those at edges.
            ratio = (first.reshape(first.shape[0], -1) + 1e-3) / (
                second.reshape(first.shape[0], -1) + 1e-3
            )
            inside = support > 0
            gain = jnp.nanmedian(jnp.where(inside, ratio, jnp.nan), axis=1, keepdims=True)
            gain = jnp.nan_to_num(gain, nan=1.0)[:, :, None]
            second = jnp.clip(second * gain, 0.0, 1.0)
        uv = flow_lib.compute(first, second, settings.flow.method, **params)  # [B, S, S, 2]
        if settings.head == "similarity":
            uv = take_off_head(uv, support)
        mean_uv = jnp.einsum("rp,bpc->brc", weights, uv.reshape(uv.shape[0], -1, 2))
        moved = mean_uv - mean_uv[:, ref : ref + 1] if settings.head == "nose" else mean_uv
        motion = jnp.linalg.norm(moved, axis=-1)
        if not feature_size:
            return motion, None
        maps = flow_lib.input_maps(uv * keep, feature_size, "ststnet")
        return motion, maps

    return program


def motion_pairs(
    first_BxHxW: np.ndarray,
    second_BxHxW: np.ndarray,
    settings: SpotSettings,
    feature_size: int = 0,
    regions: dict[str, tuple[float, ...]] | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """``(motion [B, A], features or None)`` of explicit frame pairs (a batch shape the caller
    keeps fixed, so that one program serves a stream), a column per region of :data:`MEASURED`;
    ``regions``: the face's landmark regions (crop units), else the fixed fractions
    :data:`REGIONS`."""
    weights = region_weights(settings.size, MEASURED, regions)
    keep = (
        eye_mask(settings.size, regions)
        if settings.mask_eyes
        else np.ones((settings.size, settings.size, 1), np.float32)
    )
    support = face_support(settings.size, regions)
    m, f = _motion_program(settings, feature_size)(
        first_BxHxW, second_BxHxW, weights, keep, support
    )
    return np.asarray(m), (None if f is None else np.asarray(f))


_MOTION_CACHE: contextvars.ContextVar[Path | None] = contextvars.ContextVar(
    "motion_cache", default=None
)


@contextlib.contextmanager
def cached_motion(folder: str | Path):
    """Within it, :func:`motion` keeps what it computes in ``folder`` and reads it back on a
    rerun: a long video's flows cost minutes, its motion and features a few kilobytes. Keyed on
    the frames' bytes, k, the settings, the feature size, the regions and merjax's code, so a
    changed input is computed again; a file that does not read back is computed again too."""
    token = _MOTION_CACHE.set(Path(folder))
    try:
        yield
    finally:
        _MOTION_CACHE.reset(token)


def motion(
    frames_FxHxW: np.ndarray,
    k: int,
    settings: SpotSettings,
    *,
    feature_size: int = 0,
    regions: dict[str, tuple[float, ...]] | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """``(motion [F, A], features [F, f, f, 3] or None)`` for flows from frame t - k to t (a
    column per region of :data:`MEASURED`); the
    first k frames (no earlier frame) are 0. In batches of ``settings.batch`` pairs, the last
    padded, so one program serves the whole video."""
    frames = np.asarray(frames_FxHxW)
    n = len(frames)
    if n <= k:
        raise DataError(f"a video of {n} frames is too short for k = {k} (it needs more than k)")
    folder = _MOTION_CACHE.get()
    if folder is None:
        return _motion(frames, k, settings, feature_size, regions)
    content = hashlib.sha256(np.ascontiguousarray(frames).tobytes()).hexdigest()
    key = checkpoint.digest(
        [content, frames.shape, str(frames.dtype), k, repr(settings), feature_size, regions]
        + [checkpoint.code_digest()]
    )
    path = folder / f"motion-{key}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                return z["motion"], (z["features"] if feature_size else None)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
            logging.getLogger(__name__).warning(
                "motion cache %s does not read back (%s): computing it again", path, e
            )
    m, f = _motion(frames, k, settings, feature_size, regions)
    folder.mkdir(parents=True, exist_ok=True)
    files.savez(path, motion=m, **({"features": f} if f is not None else {}))
    return m, f


def _motion(frames, k, settings, feature_size, regions):
    n = len(frames)
    out = np.zeros((n, len(MEASURED)), np.float32)
    feats = np.zeros((n, feature_size, feature_size, 3), np.float32) if feature_size else None
    targets = np.arange(k, n)
    for b in batches.padded(targets, min(settings.batch, len(targets))):
        m, f = motion_pairs(frames[b.index - k], frames[b.index], settings, feature_size, regions)
        out[targets[b.real]] = m[: b.count]
        if feats is not None:
            feats[targets[b.real]] = f[: b.count]
    return out, feats


def signal(motion_FxA: np.ndarray, settings: SpotSettings, k: int | None = None) -> np.ndarray:
    """The video's signal ``[F]``: per frame the mean of the ``top`` most moving regions (the
    nose, the reference, left out). With ``k``, each region's motion at t is the mean of the
    flows t - k -> t and t -> t + k (the latter as the motion at t + k): as the MEGC baselines
    compare a frame with both its head and tail frames, an expression that rises and returns
    gives one peak, at its apex, and a head movement that stays gives half of one."""
    m = both_ends(motion_FxA, k)
    cols = [i for i, r in enumerate(MEASURED) if r in settings.regions() and r != REFERENCE]
    m = np.sort(m[:, cols], axis=1)[:, ::-1]
    return m[:, : settings.top].mean(1)


def both_ends(motion_FxA: np.ndarray, k: int | None) -> np.ndarray:
    """Each region's motion at t as the mean of the flows t - k -> t and t -> t + k (the latter
    the motion at t + k); without ``k`` the motion as it is."""
    m = np.asarray(motion_FxA)
    if k:
        later = np.zeros_like(m)
        later[:-k] = m[k:]
        m = 0.5 * (m + later)
    return m


def eye_signal(motion_FxA: np.ndarray, k: int | None = None) -> np.ndarray:
    """``[F]``: the eyes' mean motion, measured as the signal's regions are (:func:`both_ends`),
    which the blink rule (:func:`is_blink`) compares with the signal."""
    m = both_ends(motion_FxA, k)
    return m[:, [MEASURED.index(e) for e in EYES]].mean(1)


def is_blink(eyes_at: float, signal_at: float, ratio: float | None) -> bool:
    """The blink rule at a peak: the eyes move ``ratio`` times as much as the signal or more (a
    blink moves the lids, and the brows only through them). The stream decides by it too."""
    return ratio is not None and float(eyes_at) >= ratio * float(signal_at)


def threshold(signal_F: np.ndarray, k: int, p: float) -> float:
    """``mean + p (max - mean)`` of the signal from frame k on (earlier frames have no flow)."""
    s = np.asarray(signal_F)[k:]
    return float(s.mean() + p * (s.max() - s.mean())) if len(s) else float("inf")


def noise_spread(signal_F: np.ndarray, k: int) -> float:
    """The spread (a standard deviation) of the signal's noise from frame k on, from its
    frame-to-frame differences: 1.4826 x their median absolute deviation, over sqrt(2) (a
    difference holds two values' noise). Robust to the frames that move: an expression changes
    the signal little from one frame to the next, and few frames are its onset or offset."""
    s = np.asarray(signal_F, np.float64)[k:]
    if len(s) < 3:
        return 0.0
    d = np.diff(s)
    return float(1.4826 * np.median(np.abs(d - np.median(d))) / np.sqrt(2))


def noise_floor(signal_F: np.ndarray, k: int, margin: float | None, least: float = 0.0) -> float:
    """The video's own noise floor of the signal from frame k on: its median plus
    ``sqrt(2 ln n) + margin`` noise spreads (:func:`noise_spread`), where ``sqrt(2 ln n)`` is
    about how far the largest of n values of Gaussian noise lies above their middle, and the
    margin covers the heavier tail of flow lengths; at least ``least`` (a video without noise
    has a spread of 0); ``-inf`` (no floor) without a margin."""
    s = np.asarray(signal_F, np.float64)[k:]
    if margin is None or not len(s):
        return float("-inf")
    spread = noise_spread(s, 0)
    return max(
        float(least), float(np.median(s) + (np.sqrt(2 * np.log(max(len(s), 2))) + margin) * spread)
    )


def is_peak(window: np.ndarray, at: int, level: float) -> bool:
    """The peak rule at one frame: ``window[at]`` (the signal at t, in the signal from k frames
    before t to k after) is at least ``level`` and the largest of the window, the first of
    equal values -- so nearby peaks merge into the highest -- and the signal rises to it and
    has a frame after it. So an edge of the signal is no peak (a signal that only falls from
    its first frame, the start of a video), nor is a flat one (a still video, whose threshold
    equals its every value). The stream decides by it too."""
    w = np.asarray(window, np.float64)
    if not 0 < at < len(w) - 1:
        return False
    return bool(w[at] >= level and w[at - 1] < w[at] == w.max() and np.argmax(w) == at)


def peaks(signal_F: np.ndarray, k: int, level: float) -> list[int]:
    """Frames t >= k that are peaks (:func:`is_peak`) of the signal: earlier frames, which
    have no flow, are in no window."""
    s = np.asarray(signal_F, np.float64)
    return [
        t
        for t in range(k, len(s))
        if is_peak(s[max(k, t - k) : t + k + 1], t - max(k, t - k), level)
    ]


@dataclasses.dataclass
class SpotResult:
    """What spotting one video found: intervals (frame numbers), and per kind the signal, its
    threshold, its k and its peaks (positions in the frame list); with a noise floor, per kind
    the floor (of the motion signal) and how many peaks above the threshold it dropped."""

    intervals: list[Interval]
    signals: dict[str, np.ndarray]
    thresholds: dict[str, float]
    ks: dict[str, int]
    peaks: dict[str, list[int]]
    floors: dict[str, float] = dataclasses.field(default_factory=dict)
    below_floor: dict[str, int] = dataclasses.field(default_factory=dict)
    floor_of_scores: bool = True  # the floors are of the signals (motion) themselves
    blinks: dict[str, int] = dataclasses.field(default_factory=dict)  # peaks dropped as blinks

    def level(self, kind: str) -> float:
        """The value a peak of ``kind``'s signal must reach: its threshold, or where the floor
        is of the signal itself and higher, the floor."""
        floor = self.floors.get(kind, float("-inf")) if self.floor_of_scores else float("-inf")
        return max(self.thresholds[kind], floor)


def intervals_from(
    scores: dict[str, np.ndarray],
    ks: dict[str, int],
    p: float,
    numbers: Sequence[int],
    micro_ratio: float | None = None,
    *,
    motion: dict[str, np.ndarray] | None = None,
    noise_margin: float | None = None,
    min_motion: float = 0.0,
    eyes: dict[str, np.ndarray] | None = None,
    blink_ratio: float | None = None,
) -> SpotResult:
    """Peaks of each kind's score above its relative threshold, as intervals ``[t - k, t + k]``
    in frame numbers. With ``micro_ratio`` (two motion signals of one scale), a macro peak whose
    micro signal within k_micro of it reaches ``micro_ratio`` of its macro signal is a short
    expression (dropped; the micro peaks stand), and micro peaks inside a kept macro interval
    are dropped. Without it (scores of a classifier) the kinds are left as they are. With
    ``noise_margin``, a peak is kept only where the motion signal (``motion``, per kind; the
    scores themselves when they are motion) reaches its :func:`noise_floor` (at least
    ``min_motion``) within k of it. With ``eyes`` (per kind, :func:`eye_signal`) and
    ``blink_ratio``, a peak is a blink (:func:`is_blink`; dropped) where, at the frame of most
    motion within k of it, the eyes move that many times as much as the motion signal."""
    numbers = list(numbers)
    n = len(numbers)
    found: dict[str, list[int]] = {}
    levels, floors, below, blinks = {}, {}, {}, {}
    for kind in KINDS:
        k = ks[kind]
        levels[kind] = threshold(scores[kind], k, p)
        found[kind] = peaks(scores[kind], k, levels[kind])
        # Both rules read the motion at the frame of most motion within k of each peak (the
        # peak itself for motion): the motion a classifier's peak stands on may be noise's or a
        # blink's.
        m = np.asarray((scores if motion is None else motion)[kind], np.float64)
        at = {t: max(k, t - k) + int(np.argmax(m[max(k, t - k) : t + k + 1])) for t in found[kind]}
        if noise_margin is not None:
            floors[kind] = noise_floor(m, k, noise_margin, min_motion)
            kept = [t for t in found[kind] if m[at[t]] >= floors[kind]]
            below[kind] = len(found[kind]) - len(kept)
            found[kind] = kept
        if eyes is not None and blink_ratio is not None:
            e = eyes[kind]
            kept = [t for t in found[kind] if not is_blink(e[at[t]], m[at[t]], blink_ratio)]
            blinks[kind] = len(found[kind]) - len(kept)
            found[kind] = kept
    if micro_ratio is not None:
        found["macro"] = [t for t in found["macro"] if not is_short(scores, ks, t, micro_ratio)]
        spans = [(t - ks["macro"], t + ks["macro"]) for t in found["macro"]]
        found["micro"] = [t for t in found["micro"] if not any(a <= t <= b for a, b in spans)]
    # Each frame's run of consecutive frame numbers: an interval stays inside its peak's run,
    # so it never spans frames missing from the video.
    run_of = np.cumsum(np.r_[0, np.diff(numbers) != 1]) if n else np.zeros(0, int)
    out = []
    for kind in KINDS:
        k = ks[kind]
        for t in found[kind]:
            same = np.flatnonzero(run_of == run_of[t])
            a, b = max(int(same[0]), t - k), min(int(same[-1]), t + k)
            out.append(Interval(numbers[a], numbers[b], kind, numbers[t]))
    out.sort(key=lambda i: (i.onset, i.kind))
    return SpotResult(
        out, dict(scores), levels, dict(ks), found, floors, below, motion is None, blinks
    )


def rises_within_micro(micro_near: np.ndarray, macro_at: float, ratio: float) -> bool:
    """The rule between the kinds at a macro peak: its expression rises within the micro k when
    the micro signal near it (``micro_near``: within k_micro of the peak) reaches ``ratio`` of
    the macro signal there (``macro_at``). The stream decides by it too."""
    near = np.asarray(micro_near, np.float64)
    return bool(len(near)) and float(near.max()) >= ratio * float(macro_at)


def is_short(scores: dict[str, np.ndarray], ks: dict[str, int], t: int, ratio: float) -> bool:
    """Whether the expression of the macro peak at ``t`` rises within the micro k
    (:func:`rises_within_micro` on the micro signal within k_micro of t)."""
    k = ks["micro"]
    near = np.asarray(scores["micro"])[max(0, t - k) : t + k + 1]
    return rises_within_micro(near, scores["macro"][t], ratio)


def spot(
    frames_FxHxW: np.ndarray,
    fps: float,
    numbers: Sequence[int],
    settings: SpotSettings,
    regions: dict[str, tuple[float, ...]] | None = None,
) -> SpotResult:
    """Micro- and macro-expression intervals of one video (face crops at ``settings.size``;
    ``regions``: its landmark regions, else the fixed fractions)."""
    ks = settings.ks(fps)
    signals, eyes = {}, {}
    for kind in KINDS:
        m = motion(frames_FxHxW, ks[kind], settings, regions=regions)[0]
        signals[kind], eyes[kind] = signal(m, settings, ks[kind]), eye_signal(m, ks[kind])
    return intervals_from(
        signals,
        ks,
        settings.threshold,
        numbers,
        settings.micro_ratio,
        noise_margin=settings.noise_margin,
        min_motion=settings.least_motion(),
        eyes=eyes,
        blink_ratio=settings.blink_ratio,
    )


class VideoCrops(NamedTuple):
    """A long video's face crops as spotting reads them."""

    frames_FxHxW: np.ndarray  # uint8 crops of the frames that show a face
    kept: list[int]  # their positions in the video's frame list
    regions: dict[str, tuple[float, ...]] | None  # landmark regions (crop units), or None
    note: str  # what reading noticed: no face, two faces, the frames without a face


REGIONS_FROM = {True: "landmarks", False: "fixed fractions of the face box (no landmarks)"}


def read_frames(
    paths: Sequence[str],
    size: int,
    *,
    where: str,
    face: FaceSettings | None = None,
    fps: float = 30.0,
    images: Iterable[np.ndarray] | None = None,
) -> VideoCrops:
    """Every frame's face crop at ``size``, through the face tracker (:class:`merjax.faces.Tracker`:
    with landmarks, each frame aligned to the template and the frames without a face left out;
    without, one box found on the first frame, else the whole frame and a note). The frames are
    the image files ``paths``, decoded in threads (OpenCV releases the GIL), or ``images``
    (``[H, W]`` uint8 grey, one per path: a video file's frames); tracking runs in order."""
    face = face or FaceSettings()
    tracker = faces.Tracker(face, (size, size), fps, where)
    shape = None

    def same_size(img, p):
        nonlocal shape
        shape = img.shape if shape is None else shape
        if img.shape != shape:  # one face crops every frame: sizes must agree
            raise DataError(
                f"{where}: frame {p!r} is {img.shape[1]}x{img.shape[0]}, the video's first "
                f"frame {shape[1]}x{shape[0]}: every frame of a video must have one size"
            )
        return img

    crops, kept = [], []
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        decoded = (
            pool.map(read_gray, paths)
            if images is None
            else (img for img, _ in zip(images, paths, strict=False))
        )
        for i, img in enumerate(decoded):
            crop = tracker.step(same_size(img, paths[i]))
            if crop is not None:
                crops.append(crop)
                kept.append(i)
    if not crops:
        raise DataError(f"{where}: no frame shows a face ({len(paths)} frames)")
    return VideoCrops(np.stack(crops), kept, tracker.regions, "; ".join(tracker.summary()))

"""Alignment that removes the head's motion and keeps the face's.

Each frame is mapped to the canonical face (:mod:`merjax.faces.template`) by the similarity
transform (rotation, scale, translation) that best maps its *stable* landmarks -- eye corners,
nose bridge, tip and base -- to the template's, in the least-squares sense. The brows and the
mouth move with the expression and take no part in the fit, so a brow raise stays in the aligned
crop while a head turn, nod or drift is taken out.

    crops_TxHxW = faces.align_clip(frames_TxHxW, size=(128, 128))

Landmarks of a frame are taken inside the box where the previous frame's face was (the detector
runs once, on the first frame), so a clip costs one detection and one landmark fit per frame.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from merjax.errors import DataError
from merjax.faces import models, template
from merjax.faces.boxes import Box

# A crop whose corners fall this far outside the frame (fraction of the crop's area) is noted:
# the face is cut by the frame border and the crop's edge repeats the border's pixels.
CUT_FRACTION = 0.05


def similarity(points_src_Nx2: np.ndarray, points_dst_Nx2: np.ndarray) -> np.ndarray:
    """``[2, 3]`` float64: the similarity transform (no reflection) mapping ``src`` to ``dst``
    with the least squared error (Umeyama 1991 for 2-D: the complex ratio of centred points)."""
    s = np.asarray(points_src_Nx2, np.float64)
    d = np.asarray(points_dst_Nx2, np.float64)
    if s.shape != d.shape or s.ndim != 2 or s.shape[1] != 2 or len(s) < 2:
        raise ValueError(f"similarity needs two [N >= 2, 2] point sets, got {s.shape}, {d.shape}")
    ms, md = s.mean(0), d.mean(0)
    S, D = s - ms, d - md
    norm = float((S**2).sum())
    if norm <= 1e-12:
        raise ValueError("similarity needs points that are not all at one place")
    a = float((S * D).sum()) / norm
    b = float((S[:, 0] * D[:, 1] - S[:, 1] * D[:, 0]).sum()) / norm
    R = np.array([[a, -b], [b, a]])
    return np.c_[R, md - R @ ms]


def apply(M_2x3: np.ndarray, points_Nx2: np.ndarray) -> np.ndarray:
    """Points mapped by an affine ``[2, 3]`` transform."""
    p = np.asarray(points_Nx2, np.float64)
    return p @ np.asarray(M_2x3)[:, :2].T + np.asarray(M_2x3)[:, 2]


def invert(M_2x3: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(np.asarray(M_2x3, np.float64))


def template_points(size: tuple[int, int]) -> np.ndarray:
    """The template's 68 points in pixels of an ``(H, W)`` crop."""
    h, w = size
    return template.TEMPLATE_68 * np.array([w, h], np.float32)


def transform_of(points_Px2: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The frame -> crop transform of a face shape (68 or 5 points): its stable points onto the
    template's."""
    src, dst = template.stable(points_Px2)
    return similarity(src, dst * np.array([size[1], size[0]], np.float32))


def warp(gray_HxW: np.ndarray, M_2x3: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The ``(H, W)`` crop of ``gray`` under ``M`` (frame -> crop), uint8. A large face is first
    reduced with an area filter (as ``cv2.resize`` does) so the bilinear warp does not alias."""
    M = np.asarray(M_2x3, np.float64)
    scale = float(np.sqrt(abs(np.linalg.det(M[:, :2]))))
    h, w = size
    if scale < 0.5:
        # Reduce only the part of the frame the crop sees, to a scale of about 1 px per px.
        corners = apply(invert(M), [(0, 0), (w, 0), (0, h), (w, h)])
        x0, y0 = np.floor(corners.min(0)).astype(int) - 2
        x1, y1 = np.ceil(corners.max(0)).astype(int) + 2
        H, W = gray_HxW.shape
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(W, x1), min(H, y1)
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            part = gray_HxW[y0:y1, x0:x1]
            nw, nh = max(2, round((x1 - x0) * scale)), max(2, round((y1 - y0) * scale))
            small = cv2.resize(part, (nw, nh), interpolation=cv2.INTER_AREA)
            # crop = M (x0 + x / fx, y0 + y / fy): fold the reduction into the transform.
            fx, fy = nw / (x1 - x0), nh / (y1 - y0)
            to_part = np.array([[1 / fx, 0, x0], [0, 1 / fy, y0]], np.float64)
            M = M[:, :2] @ to_part[:, :2]  # linear part
            M = np.c_[M, np.asarray(M_2x3)[:, :2] @ to_part[:, 2] + np.asarray(M_2x3)[:, 2]]
            gray_HxW = small
    return cv2.warpAffine(
        gray_HxW, M, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def outside(M_2x3: np.ndarray, frame_shape: tuple[int, int], size: tuple[int, int]) -> float:
    """The fraction of the crop (sampled on a grid) that lies outside the frame."""
    h, w = size
    yy, xx = np.mgrid[0:8, 0:8]
    grid = np.c_[(xx.ravel() + 0.5) * w / 8, (yy.ravel() + 0.5) * h / 8]
    src = apply(invert(M_2x3), grid)
    H, W = frame_shape
    out = (src[:, 0] < 0) | (src[:, 1] < 0) | (src[:, 0] > W - 1) | (src[:, 1] > H - 1)
    return float(out.mean())


def smooth(Ms_Tx2x3: np.ndarray, window: int) -> np.ndarray:
    """Each transform averaged with its neighbours' (a centred window, shorter at the ends).
    The mean of similarity transforms' parameters is a similarity transform."""
    Ms = np.asarray(Ms_Tx2x3, np.float64)
    half = window // 2
    return np.stack([Ms[max(0, t - half) : t + half + 1].mean(0) for t in range(len(Ms))])


def box_from(M_2x3: np.ndarray, canonical_box: np.ndarray) -> Box:
    """The frame box whose centre and size in crop coordinates are ``canonical_box`` (x0, y0,
    x1, y1) under ``M``: the detector's box carried along with the face (upright, as the
    detector gives it; the bounding box of the rotated box would grow with the head's roll and
    the landmark model, trained on detector boxes, would fit worse)."""
    x0, y0, x1, y1 = canonical_box
    cx, cy = apply(invert(M_2x3), [((x0 + x1) / 2, (y0 + y1) / 2)])[0]
    scale = float(np.sqrt(abs(np.linalg.det(np.asarray(M_2x3)[:, :2]))))
    w, h = (x1 - x0) / scale, (y1 - y0) / scale
    return int(round(cx - w / 2)), int(round(cy - h / 2)), int(round(w)), int(round(h))


def canonical(M_2x3: np.ndarray, box: Box) -> np.ndarray:
    """A detector box in crop coordinates (x0, y0, x1, y1) under ``M``: its centre mapped, its
    sides scaled (see :func:`box_from`)."""
    x, y, w, h = box
    cx, cy = apply(M_2x3, [(x + w / 2, y + h / 2)])[0]
    scale = float(np.sqrt(abs(np.linalg.det(np.asarray(M_2x3)[:, :2]))))
    return np.array(
        [cx - w * scale / 2, cy - h * scale / 2, cx + w * scale / 2, cy + h * scale / 2]
    )


JITTER = 0.04  # of the box's side: the shifts of the boxes precise_landmarks fits in


def precise_landmarks(model: models.FaceModel, gray: np.ndarray, box: Box) -> np.ndarray:
    """The landmarks' median over the box and the 8 boxes shifted by ``JITTER`` of its side: the
    shape predictor's answer depends on where its box lies, by about a pixel, and the median of
    nine fits removes most of that (benchmarks/RESULTS.md has what it costs)."""
    x, y, w, h = box
    s = max(1, round(JITTER * w))
    shifts = [(0, 0), (s, 0), (-s, 0), (0, s), (0, -s), (s, s), (-s, -s), (s, -s), (-s, s)]
    fits = [model.landmarks(gray, (x + dx, y + dy, w, h)) for dx, dy in shifts]
    return np.median(np.stack(fits), axis=0).astype(np.float32)


def fit_frames(
    grays: Sequence[np.ndarray], model: models.FaceModel, size: tuple[int, int], box: Box
) -> tuple[np.ndarray, list[np.ndarray]]:
    """``(transforms [T, 2, 3], landmarks per frame)`` of frames showing one face found at ``box``
    on the first: each frame's landmarks are taken in the box carried from the previous frame."""
    Ms, shapes = [], []
    canon = None
    for gray in grays:
        pts = precise_landmarks(model, gray, box)
        M = transform_of(pts, size)
        if canon is None:
            canon = canonical(M, box)
        box = box_from(M, canon)
        Ms.append(M)
        shapes.append(pts)
    return np.stack(Ms), shapes


def transforms(
    grays: Sequence[np.ndarray], model: models.FaceModel, size, box: Box, align: str, window: int
) -> tuple[np.ndarray, list[np.ndarray]]:
    """The frame -> crop transforms of a clip by the ``align`` rule (frame, smoothed, onset)."""
    Ms, shapes = fit_frames(grays, model, size, box)
    if align == "onset":
        Ms = np.repeat(Ms[:1], len(Ms), axis=0)
    elif align == "smoothed":
        Ms = smooth(Ms, window)
    elif align != "frame":
        raise ValueError(f"align must be 'frame', 'smoothed' or 'onset', got {align!r}")
    return Ms, shapes


def align_clip(
    frames_TxHxW: np.ndarray,
    size: tuple[int, int] = (128, 128),
    *,
    align: str = "frame",
    points: int = 68,
    smooth_frames: int = 5,
) -> np.ndarray:
    """The aligned face crops ``[T, H, W]`` uint8 of a clip's frames (``[T, H, W]`` grey, or
    colour ``[T, H, W, 3]`` BGR), by dlib's landmarks (``points``: 68 or 5): the largest face of
    the first frame, each frame mapped to the template by its own transform (``align="frame"``),
    smoothed over ``smooth_frames`` frames, or the first frame's for all (``"onset"``)."""
    frames = list(frames_TxHxW)
    if not frames:
        raise DataError("align_clip needs at least one frame")
    grays = [models.as_gray(f, f"frame {i}") for i, f in enumerate(frames)]
    if len({g.shape for g in grays}) > 1:
        raise DataError(f"frames differ in size: {sorted({g.shape for g in grays})}")
    from merjax.faces import tracking  # tracking builds on this module

    model = models.get("dlib", points)
    box, _ = tracking.find_face(model, grays[0], tuple(size))
    if box is None:
        raise DataError("no face found on frame 0 (the first frame) of the clip")
    Ms, _ = transforms(grays, model, tuple(size), box, align, smooth_frames)
    return np.stack([warp(g, M, tuple(size)) for g, M in zip(grays, Ms, strict=True)])

"""Face crops of a clip's frames by a :class:`~merjax.faces.settings.FaceSettings`: the one face
rule for clips, ``predict``'s frame pairs and the flow cache.

The face is found on the first frame (a clip's onset frame). Without landmarks its box crops
every frame; with them every frame is aligned (:mod:`merjax.faces.align`). No face on the first
frame: the whole frame is used and a note says so (``no face found on ...; using the whole
frame``). Two faces: the largest is used and a note says so; a face cut by the frame border is
noted too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from merjax.errors import DataError
from merjax.faces import align, boxes, models, tracking
from merjax.faces.settings import FaceSettings

UNALIGNED = "no face with landmarks on"
"""How the note of a frame cropped by the Haar box for want of a face's landmarks begins."""


class Fit(NamedTuple):
    """How a clip's frames are cropped: per-frame transforms (aligned), or one box (None: the
    whole frame), and the notes."""

    transforms: np.ndarray | None  # [T, 2, 3] frame -> crop
    box: boxes.Box | None
    notes: tuple[str, ...]


def fit(
    grays: Sequence[np.ndarray],
    size: tuple[int, int],
    settings: FaceSettings,
    where: str,
    mode: str | None = None,
) -> Fit:
    """The crops' geometry for one face's frames (``where`` names the first); ``mode`` overrides
    the settings' alignment (``frame`` for callers that smooth themselves)."""
    size = tuple(int(s) for s in size)
    if len({g.shape for g in grays}) > 1:
        raise DataError(f"{where}: the frames differ in size {sorted({g.shape for g in grays})}")
    model = settings.model()
    first = models.as_gray(grays[0], where)
    mode = mode or settings.mode
    if model.points and mode != "box":
        box, count = tracking.find_face(model, first, size)
        found = [box] * count
    else:
        found = model.detect(first)
    notes = []
    if model.name != "haar" and mode != "box":
        if not found:
            # Faces dlib misses, or whose landmarks fit no face, may still be boxed by the
            # cascade; the frames are then cropped by that box, unaligned, as before landmarks.
            box, _ = tracking.find_face(models.haar_model(), first, size)
            if box is not None:
                notes.append(f"{UNALIGNED} {where}; OpenCV's Haar box crops the frames (no "
                             "alignment)")  # fmt: skip
                return Fit(None, box, tuple(notes))
    if not found:
        notes.append(f"no face found on {where}; using the whole frame")
    elif len(found) > 1:
        notes.append(f"{len(found)} faces on {where}: the largest is used")
    if not found or mode == "box":
        return Fit(None, found[0] if found else None, tuple(notes))
    Ms, _ = align.transforms(grays, model, size, found[0], mode, settings.smooth)
    if max(align.outside(M, first.shape, size) for M in Ms) > align.CUT_FRACTION:
        notes.append(f"the face is cut by the frame border near {where} (the crop repeats the "
                     "border's pixels)")  # fmt: skip
    return Fit(Ms, found[0], tuple(notes))


def crops(grays: Sequence[np.ndarray], size: tuple[int, int], geometry: Fit) -> np.ndarray:
    """``[T, H, W]`` uint8: the frames cropped by ``geometry`` (one transform per frame)."""
    size = tuple(int(s) for s in size)
    if geometry.transforms is None:
        return np.stack([boxes.crop_resize(g, geometry.box, size) for g in grays])
    Ms = geometry.transforms
    return np.stack([align.warp(g, M, size) for g, M in zip(grays, Ms, strict=True)])


def prepare(
    grays: Sequence[np.ndarray], size: tuple[int, int], settings: FaceSettings, where: str
) -> tuple[np.ndarray, str]:
    """``([T, H, W] uint8 crops, note)`` of one face's frames (``where`` names the first)."""
    geometry = fit(grays, size, settings, where)
    return crops(grays, size, geometry), "; ".join(geometry.notes)

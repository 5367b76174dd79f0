"""Faces as the field finds them: detection, landmarks, alignment, regions and tracking.

    from merjax import faces
    points_68x2 = faces.landmarks(gray)              # the largest face's, or None
    crops_TxHxW = faces.align_clip(frames_TxHxW, size=(128, 128))
    M_2x3 = faces.similarity(points_src, points_dst)

Detectors are values (:mod:`merjax.faces.models`): dlib's HOG detector with its 68- or 5-point
landmarks when ``merjax[faces]`` is installed, OpenCV's Haar cascade otherwise. docs/faces.md
says what each step does and why.
"""

from __future__ import annotations

import numpy as np

from merjax.faces import align, boxes, models, pipeline, regions, template, tracking
from merjax.faces.align import align_clip, similarity
from merjax.faces.boxes import Box, crop_resize
from merjax.faces.models import FaceModel, as_gray
from merjax.faces.settings import FaceSettings
from merjax.faces.tracking import Tracker


def landmarks(gray_HxW: np.ndarray, points: int = 68) -> np.ndarray | None:
    """The largest face's landmarks ``[points, 2]`` float32 (x, y) by dlib (68 or 5 points), or
    None when no face is found."""
    gray = as_gray(gray_HxW, "landmarks")
    model = models.get("dlib", points)
    box, _ = tracking.find_face(model, gray, (128, 128))
    return None if box is None else model.landmarks(gray, box)


__all__ = [
    "Box",
    "FaceModel",
    "FaceSettings",
    "Tracker",
    "align",
    "align_clip",
    "as_gray",
    "boxes",
    "crop_resize",
    "landmarks",
    "models",
    "pipeline",
    "regions",
    "similarity",
    "template",
    "tracking",
]

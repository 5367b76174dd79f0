"""Face boxes: OpenCV's bundled Haar cascade, the one-box rule, and cropping by a box.

Without landmarks, one box found on the first frame (a clip's onset frame) crops every frame, so
the crop adds no motion between the frames whose flow is measured (:mod:`merjax.faces.pipeline`
states the rule for clips, :mod:`merjax.faces.tracking` for videos and streams); with them,
:mod:`merjax.faces.align` replaces the box by an alignment.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import cv2
import numpy as np

from merjax.errors import DataError

Box = tuple[int, int, int, int]  # x, y, width, height

log = logging.getLogger(__name__)


_local = threading.local()


def _cascade() -> cv2.CascadeClassifier:
    """One classifier per thread: a CascadeClassifier shared between threads returns wrong
    boxes (seen with the flow cache's reader pool)."""
    if not hasattr(_local, "cascade"):
        _local.cascade = _load_cascade()
    return _local.cascade


def _load_cascade() -> cv2.CascadeClassifier:
    if not hasattr(cv2, "CascadeClassifier") or not hasattr(cv2, "data"):
        raise DataError(
            f"OpenCV {cv2.__version__} has no bundled Haar cascades (OpenCV 5 dropped them); "
            "install opencv-python-headless<5, or use the databases' cropped frames"
        )
    path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise DataError(f"cannot load OpenCV's Haar cascade {str(path)!r}")
    return cascade


def detect_face(gray: np.ndarray, *, min_fraction: float = 0.15) -> Box | None:
    """The largest frontal face in a ``[H, W]`` uint8 image, or None.

    ``min_fraction`` is the smallest face side as a fraction of the image's shorter side.
    """
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise ValueError(f"detect_face needs a [H, W] uint8 image, got {gray.shape} {gray.dtype}")
    side = int(min(gray.shape) * min_fraction)
    faces = _cascade().detectMultiScale(
        cv2.equalizeHist(gray), scaleFactor=1.1, minNeighbors=5, minSize=(side, side)
    )
    if len(faces) == 0:
        return None
    x, y, w, h = max(faces, key=lambda f: f[2] * f[3])
    return int(x), int(y), int(w), int(h)


def crop_resize(gray: np.ndarray, box: Box | None, size: tuple[int, int]) -> np.ndarray:
    """Crops ``box`` (or keeps the whole frame) and resizes to ``size = (H, W)`` (area filter)."""
    if box is not None:
        x, y, w, h = box
        gray = gray[y : y + h, x : x + w]
    return cv2.resize(gray, (size[1], size[0]), interpolation=cv2.INTER_AREA)

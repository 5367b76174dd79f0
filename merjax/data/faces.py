"""Face crops: the databases' own crops when given, else OpenCV's bundled Haar cascade.

Where the face is looked for, and what happens without one, is one rule for a clip, a long
video, a stream and new frames given to ``predict`` (:func:`box_on_first_frame`): the face is
found on the first frame (a clip's onset frame) and that one box crops every frame, so the crop
adds no motion between the frames whose flow is measured; when the first frame shows no face,
the whole frame is used and a note says so (``no face found on ...; using the whole frame``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from merjax.data.frames import read_gray
from merjax.data.sample import Sample
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


def box_on_first_frame(first_gray: np.ndarray, where: str) -> tuple[Box | None, str]:
    """``(box, note)`` by merjax's one face rule (module docstring): the face on the first frame
    (``where`` names it), or None and a note that the whole frame is used."""
    box = detect_face(first_gray)
    if box is None:
        return None, f"no face found on {where}; using the whole frame"
    return box, ""


def face_box(sample: Sample) -> tuple[Box | None, str]:
    """``(box, note)`` for a clip: None for cropped frames; else the rule on its onset frame."""
    if sample.cropped:
        return None, ""
    onset = read_gray(sample.onset_path, sample.bit_depth)
    box, note = box_on_first_frame(onset, repr(str(sample.onset_path)))
    if note:
        log.warning("%s (%s)", note, sample.source)
    return box, note


def crop_resize(gray: np.ndarray, box: Box | None, size: tuple[int, int]) -> np.ndarray:
    """Crops ``box`` (or keeps the whole frame) and resizes to ``size = (H, W)`` (area filter)."""
    if box is not None:
        x, y, w, h = box
        gray = gray[y : y + h, x : x + w]
    return cv2.resize(gray, (size[1], size[0]), interpolation=cv2.INTER_AREA)


def load_frames(
    sample: Sample, numbers: Sequence[int], size: tuple[int, int], box: Box | None = None
) -> np.ndarray:
    """Frames ``numbers`` of a clip, face-cropped with ``box`` and resized: ``[N, H, W]`` uint8.

    Frames of one clip must share a size; a DataError names the clip otherwise.
    """
    imgs = [read_gray(sample.frame_path(n), sample.bit_depth) for n in numbers]
    if len({i.shape for i in imgs}) > 1:
        raise DataError(
            f"{sample.source} ({sample.clip}): frames {list(numbers)} differ in size "
            f"{[i.shape for i in imgs]}"
        )
    return np.stack([crop_resize(i, box, size) for i in imgs])

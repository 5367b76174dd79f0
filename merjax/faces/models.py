"""Face detectors and landmark models as values, chosen by name (as train/strategies.py does).

A :class:`FaceModel` is a NamedTuple of functions: ``detect(gray) -> boxes`` (largest first) and
``landmarks(gray, box) -> [P, 2]`` (x, y) float32, or None for a model without landmarks.

- ``dlib``: dlib's HOG frontal-face detector and its 68- or 5-point shape predictor, read from
  the ``face-recognition-models`` package (``pip install 'merjax[faces]'``). The 68-point model
  was trained on iBUG 300-W, whose licence excludes commercial use; the 5-point model is free to
  use, and alignment needs no more than its five points (README, "Faces").
- ``haar``: OpenCV's bundled frontal-face cascade (:mod:`merjax.faces.boxes`), a box and no
  landmarks: the fallback without the extra.

Nothing is downloaded: the model files ship inside the installed package and are found with
``importlib.util.find_spec`` (importing ``face_recognition_models`` needs ``pkg_resources``,
which new setuptools no longer has).
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

from merjax.errors import DataError
from merjax.faces import boxes

log = logging.getLogger(__name__)

Box = boxes.Box
INSTALL = "pip install 'merjax[faces]'"
MODEL_FILES = {
    68: "shape_predictor_68_face_landmarks.dat",
    5: "shape_predictor_5_face_landmarks.dat",
}
# dlib's HOG window is 80 px, 40 px with the image upsampled once (four times the cost, and more
# false detections: merjax.faces.tracking.find_face upsamples only when it found no face). Frames
# longer than DETECT_SIDE are reduced to it (a 2040x1088 SAMM frame costs several times as much at
# full size).
DETECT_SIDE = 667
MIN_SIDE = 24  # no face detector finds a face in fewer pixels


class FaceModel(NamedTuple):
    """A face detector with its landmark model (or none)."""

    name: str  # "dlib" or "haar"
    points: int  # landmarks per face: 68, 5, or 0 (a box only)
    # ([H, W] uint8, upsample: look for smaller faces too) -> boxes, largest first
    detect: Callable[..., list[Box]]
    landmarks: Callable[[np.ndarray, Box], np.ndarray | None]  # -> [P, 2] float32 (x, y)
    files: tuple[str, ...] = ()  # the model files it reads


def dlib_available() -> bool:
    """Whether dlib and the predictors' package are installed (without importing the latter)."""
    return all(importlib.util.find_spec(m) is not None for m in ("dlib", "face_recognition_models"))


def model_dir() -> Path:
    """The folder of the installed predictors (``face_recognition_models/models``)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"dlib's landmark models are not installed: {INSTALL}")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def as_gray(image: np.ndarray, where: str = "frame") -> np.ndarray:
    """``[H, W]`` uint8 from a grey or BGR/BGRA uint8 image; one clear error for anything else
    (16-bit frames must be scaled first: :func:`merjax.data.frames.to_uint8` knows their depth)."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] in (3, 4) and image.dtype == np.uint8:
        code = cv2.COLOR_BGR2GRAY if image.shape[2] == 3 else cv2.COLOR_BGRA2GRAY
        image = cv2.cvtColor(image, code)
    if image.dtype != np.uint8:
        raise DataError(
            f"{where}: face detection needs 8-bit pixels, got {image.dtype} (scale 16-bit frames "
            "to 8 bits first, as merjax.data.frames.read_gray does with their bit depth)"
        )
    if image.ndim != 2:
        raise DataError(f"{where}: expected a grey or colour image, got shape {image.shape}")
    if min(image.shape) < MIN_SIDE:
        raise DataError(
            f"{where}: a {image.shape[1]}x{image.shape[0]} frame is too small to find a face in "
            f"(sides of {MIN_SIDE} px or more)"
        )
    return image


# --------------------------------------------------------------------------- dlib

# One predictor per model file and one detector for the process: loading the 68-point file takes
# about 0.4 s and 100 MB, making a detector 0.3 s, and the flow cache reads clips in a pool of
# new threads each time. The predictor's fit is a const call, safe from several threads; the
# detector keeps scratch state, so its calls take turns (detection is rare: once per clip).
_predictors: dict[tuple[int, str], object] = {}
_load_lock = threading.Lock()
_detect_lock = threading.Lock()
_shared: dict[str, object] = {}


def _predictor(points: int, folder: str):
    key = (points, folder)
    with _load_lock:
        if key not in _predictors:
            import dlib

            path = Path(folder) / MODEL_FILES[points]
            if not path.is_file():
                raise DataError(f"dlib's {points}-point model {str(path)!r} is missing: {INSTALL}")
            try:
                _predictors[key] = dlib.shape_predictor(str(path))
            except RuntimeError as e:
                raise DataError(
                    f"dlib's {points}-point model {str(path)!r} cannot be read ({e}); reinstall "
                    f"it: pip install --force-reinstall face-recognition-models"
                ) from None
        return _predictors[key]


def _detector():
    with _load_lock:
        if "detector" not in _shared:
            import dlib

            _shared["detector"] = dlib.get_frontal_face_detector()
        return _shared["detector"]


def _dlib_objects(points: int, folder: str):
    return _detector(), _predictor(points, folder)


def _dlib_detect(
    gray: np.ndarray, upsample: bool = False, *, points: int, folder: str
) -> list[Box]:
    detector, _ = _dlib_objects(points, folder)
    short = min(gray.shape)
    scale = min(1.0, DETECT_SIDE / short)
    img = gray if scale == 1.0 else cv2.resize(gray, None, fx=scale, fy=scale,
                                               interpolation=cv2.INTER_AREA)  # fmt: skip
    with _detect_lock:
        found = detector(img, int(upsample))
    out = [
        (
            int(round(r.left() / scale)),
            int(round(r.top() / scale)),
            int(round(r.width() / scale)),
            int(round(r.height() / scale)),
        )
        for r in found
    ]
    return sorted(out, key=lambda b: -b[2] * b[3])


def _dlib_landmarks(gray: np.ndarray, box: Box, *, points: int, folder: str) -> np.ndarray:
    import dlib

    _, predictor = _dlib_objects(points, folder)
    x, y, w, h = box
    shape = predictor(gray, dlib.rectangle(int(x), int(y), int(x + w), int(y + h)))
    return np.array([(p.x, p.y) for p in shape.parts()], np.float32)


def dlib_model(points: int = 68, folder: str | Path | None = None) -> FaceModel:
    """dlib's HOG detector with its ``points``-point predictor (68 or 5), from ``folder`` (the
    installed package's by default). Loading waits for the first call; a missing or corrupt file
    is a DataError naming it then."""
    if points not in MODEL_FILES:
        raise ValueError(f"dlib's landmark models have 68 or 5 points, got {points!r}")
    if importlib.util.find_spec("dlib") is None:
        raise DataError(f"dlib is not installed: {INSTALL}")
    folder = str(folder if folder is not None else model_dir())
    return FaceModel(
        "dlib",
        points,
        functools.partial(_dlib_detect, points=points, folder=folder),
        functools.partial(_dlib_landmarks, points=points, folder=folder),
        (str(Path(folder) / MODEL_FILES[points]),),
    )


# --------------------------------------------------------------------------- haar


def haar_model() -> FaceModel:
    """OpenCV's Haar cascade: boxes, no landmarks."""

    def detect(gray: np.ndarray, upsample: bool = False) -> list[Box]:
        box = boxes.detect_face(gray)
        return [] if box is None else [box]

    return FaceModel("haar", 0, detect, lambda gray, box: None)


_said = threading.Lock()
_told: set[str] = set()


def resolve(detector: str) -> str:
    """The detector a setting names: ``auto`` is dlib when installed, else Haar (said once per
    process, with how to install dlib)."""
    if detector != "auto":
        return detector
    if dlib_available():
        return "dlib"
    with _said:
        if "haar" not in _told:
            _told.add("haar")
            log.warning(
                "faces: OpenCV's Haar cascade (boxes, no landmarks, no alignment); for dlib's "
                "landmarks and alignment: %s",
                INSTALL,
            )
    return "haar"


@functools.lru_cache(maxsize=8)
def get(detector: str = "auto", points: int = 68) -> FaceModel:
    """The model named ``detector`` (``dlib``, ``haar`` or ``auto``) with ``points`` landmarks."""
    name = resolve(detector)
    if name == "dlib":
        return dlib_model(points)
    if name == "haar":
        return haar_model()
    raise ValueError(f"face detector must be 'dlib', 'haar' or 'auto', got {detector!r}")

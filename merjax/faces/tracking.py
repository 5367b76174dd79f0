"""Faces through a long video or a stream: detect now and then, landmarks on every frame.

Detection costs tens of milliseconds a frame and landmarks under one (benchmarks/RESULTS.md), so
a :class:`Tracker` detects on the first frame, every ``redetect_s`` seconds and when the face is
lost, and between detections takes the landmarks in the box carried along with the face from the
previous frame. The crop's transform is refitted only when the stable points have moved more than
``REALIGN_PX`` (in frame pixels) from where they were at the last fit: a still head keeps one
transform, so the landmarks' own jitter adds no motion, and a moving head is followed.

A face is lost when its landmarks no longer fit a face (their stable points, after the best
similarity transform, lie more than ``LOST_RESIDUAL`` of the eye distance from the template's),
when the carried box has left the frame, or when a re-detection finds nothing; a crop that
suddenly differs from the previous one (correlation under ``CHANGED``) is re-detected at once.
Frames without a face give no crop; the tracker lists them as runs
(:attr:`Tracker.faceless_runs`), and callers skip them. A first frame whose landmarks fit no face
(``FACE_RESIDUAL``) is cropped by the box rule.

Without alignment (Haar, or ``align="box"``) it is merjax's first rule: one box, found on the first
frame, crops every frame, or the whole frame and a note when there is none; with dlib's 68
points the regions still come from the first frame's landmarks.
"""

from __future__ import annotations

import collections
import hashlib
import threading

import numpy as np

from merjax.faces import align, boxes, models, regions, template
from merjax.faces.settings import FaceSettings

REALIGN_PX = 1.0
LOST_RESIDUAL = 0.12
# Landmarks on the first frame whose stable points lie further than this from the template (eye
# distances, after the best similarity) are not a face's to align on: dlib's detector boxes the
# synthetic drawn faces, but its landmarks there are 0.04-0.08 off (a real face: under 0.01).
FACE_RESIDUAL = 0.03
# A crop this little correlated with the previous one (a cut, the face gone, a hand over it)
# is checked by a detection at once: landmarks alone always find some shape in their box.
CHANGED = 0.5


def fit_residual(points_Px2: np.ndarray, M_2x3: np.ndarray, size) -> float:
    """The stable points' RMS distance from the template after ``M``, in eye distances."""
    src, dst = template.stable(points_Px2)
    dst = dst * np.array([size[1], size[0]], np.float32)
    eye = float(np.linalg.norm(dst[np.argmax(dst[:, 0])] - dst[np.argmin(dst[:, 0])]))
    return float(np.sqrt(((align.apply(M_2x3, src) - dst) ** 2).sum(1).mean())) / max(eye, 1e-6)


_found: collections.OrderedDict = collections.OrderedDict()
_found_lock = threading.Lock()
MEMO = 4096  # frames whose detection is remembered (a flow cache recomputed at another size
# or method, or a clip read again, detects on the same onset frames)


def find_face(model: models.FaceModel, gray: np.ndarray, size) -> tuple[boxes.Box | None, int]:
    """``(box, faces found)``: the largest detection whose landmarks fit a face (all detections
    for a model without landmarks), looked for again in the image upsampled when there is none
    (faces under dlib's 80 px window); None when no face is found. Remembered per frame content
    (the last ``MEMO`` frames), as a detection costs tens of milliseconds."""
    key = (model.name, model.points, model.files, gray.shape, hashlib.sha1(gray.tobytes()).digest())
    with _found_lock:
        if key in _found:
            _found.move_to_end(key)
            return _found[key]
    answer = _find_face(model, gray, size)
    with _found_lock:
        _found[key] = answer
        while len(_found) > MEMO:
            _found.popitem(last=False)
    return answer


def _find_face(model: models.FaceModel, gray: np.ndarray, size) -> tuple[boxes.Box | None, int]:
    for upsample in (False, True):
        boxed = model.detect(gray, upsample)
        found = boxed
        if model.points:
            found = [b for b in boxed if landmarks_fit(model.landmarks(gray, b), size)]
        if found:
            return found[0], len(found)
        if boxed or not model.points:
            # Something face-sized was boxed but is no face to align on (a drawn face): the
            # upsampled search, four times the cost, looks only for faces too small to box.
            break
    return None, 0


def landmarks_fit(points_Px2: np.ndarray, size) -> bool:
    """Whether a shape's stable points fit the template as a face's do (``FACE_RESIDUAL``)."""
    return fit_residual(points_Px2, align.transform_of(points_Px2, size), size) <= FACE_RESIDUAL


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    a = a.astype(np.float32).ravel() - a.mean()
    b = b.astype(np.float32).ravel() - b.mean()
    denom = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum()) / denom if denom > 0 else 0.0


def ranges(runs: list[list[int]], most: int = 20) -> str:
    """``3-7, 12`` for the runs [[3, 7], [12, 12]] (the first ``most``, then how many more)."""
    out = [f"{a}" if a == b else f"{a}-{b}" for a, b in runs[:most]]
    if len(runs) > most:
        out.append(f"and {len(runs) - most} more runs")
    return ", ".join(out)


class Tracker:
    """Follows one face through grey frames; :meth:`step` gives each frame's ``size`` crop."""

    def __init__(self, settings: FaceSettings, size: tuple[int, int], fps: float, where: str):
        self.settings, self.size, self.where = settings, tuple(size), where
        self.model = settings.model()
        self.redetect = max(1, round(settings.redetect_s * fps))
        self.frame = -1
        self.box: boxes.Box | None = None
        self._canon = None  # the detector's box in crop coordinates
        self._M = None  # the transform in use
        self._fitted_at = None  # stable points the transform was fitted to
        self._recent: collections.deque = collections.deque(maxlen=settings.smooth)
        self._last_detect = -(10**9)
        self._fallback = False  # no face on the first frame to align on: the box rule
        self.faceless_runs: list[list[int]] = []  # [first, last] frames without a face
        self.notes: list[str] = []
        self.regions: dict[str, tuple[float, ...]] | None = None  # from the first aligned face
        self.detections = 0
        self.realigned = 0
        self._said_cut = self._said_two = False
        self._last_crop: np.ndarray | None = None

    @property
    def aligns(self) -> bool:
        return self.settings.landmarks and self.settings.mode != "box"

    def step(self, gray: np.ndarray) -> np.ndarray | None:
        """The crop of the next frame (``[H, W]`` uint8), or None when it shows no face."""
        self.frame += 1
        if self.frame == 0 and self.aligns:
            # No face with a face's landmarks on the first frame: the box rule.
            self._fallback = not self._detect(gray)
        if not self.aligns or self._fallback:
            return self._box_rule(gray)
        crop = self._aligned(gray)
        if crop is None:  # kept as runs: a stream's memory stays bounded however long
            runs = self.faceless_runs
            if runs and runs[-1][1] == self.frame - 1:
                runs[-1][1] = self.frame
            else:
                runs.append([self.frame, self.frame])
        return crop

    @property
    def faceless(self) -> int:
        """How many frames showed no face."""
        return sum(b - a + 1 for a, b in self.faceless_runs)

    def _box_rule(self, gray):
        if self.frame == 0:
            found = []
            if not self._fallback:
                box, count = find_face(self.model, gray, self.size)
                found = [box] * count if box is not None else []
                if found and self.model.points == 68:
                    # Unaligned, the regions still come from the face's landmarks, mapped
                    # into the box's crop.
                    x, y, w, h = box
                    pts = self.model.landmarks(gray, box)
                    inside = (pts - [x, y]) * [self.size[1] / w, self.size[0] / h]
                    self.regions = regions.boxes(inside, self.size)
            if not found and self.model.name != "haar":
                # Faces dlib misses or whose landmarks fit no face (the drawn faces) may still
                # be boxed by the cascade, as before landmarks.
                found = models.haar_model().detect(gray)
                if found:
                    self.notes.append(
                        f"no face with landmarks on the first frame of {self.where}; OpenCV's "
                        "Haar box crops the frames (no alignment)"
                    )
            self.box = found[0] if found else None
            if not found:
                self.notes.append(f"no face found on the first frame of {self.where}; using the "
                                  "whole frame")  # fmt: skip
            elif len(found) > 1:
                self._two(len(found))
        return boxes.crop_resize(gray, self.box, self.size)

    def _two(self, n):
        if not self._said_two:
            self._said_two = True
            self.notes.append(
                f"{n} faces on frame {self.frame} of {self.where}: the largest is used"
            )

    def _detect(self, gray) -> bool:
        self._last_detect = self.frame
        self.detections += 1
        box, count = find_face(self.model, gray, self.size)
        if box is None:
            return False
        if count > 1:
            self._two(count)
        self.box = box
        self._canon = None
        return True

    def _lose(self):
        self.box, self._canon, self._M, self._fitted_at = None, None, None, None
        self._last_crop = None
        self._recent.clear()

    def _aligned(self, gray):
        since = self.frame - self._last_detect
        if self.box is None:
            # Lost: look again, but not on every frame (a detection costs tens of ms).
            if since < max(1, self.redetect // 8) or not self._detect(gray):
                return None
        elif since >= self.redetect and not self._detect(gray):
            self._lose()
            return None
        H, W = gray.shape
        x, y, w, h = self.box
        if x + w <= 0 or y + h <= 0 or x >= W or y >= H:
            self._lose()
            return None
        pts = self.model.landmarks(gray, self.box)
        M_fit = align.transform_of(pts, self.size)
        if fit_residual(pts, M_fit, self.size) > LOST_RESIDUAL:
            self._lose()
            return None
        if self._canon is None:
            self._canon = align.canonical(M_fit, self.box)
        self.box = align.box_from(M_fit, self._canon)
        stable, _ = template.stable(pts)
        moved = (
            self._fitted_at is None or float(np.abs(stable - self._fitted_at).max()) > REALIGN_PX
        )
        if moved:
            self._fitted_at = stable
            M_fit = align.transform_of(
                align.precise_landmarks(self.model, gray, self.box), self.size
            )
            self._recent.append(M_fit)
            self.realigned += 1
            if self.settings.mode == "onset" and self._M is not None:
                pass  # onset: the first transform stays until the face is lost
            elif self.settings.mode == "smoothed":
                self._M = np.mean(np.stack(self._recent), axis=0)
            else:
                self._M = M_fit
        if self._M is None:
            self._M = M_fit
        if self.regions is None:
            self.regions = regions.of_shape(pts, self._M, self.size)
        if (
            not self._said_cut
            and align.outside(self._M, gray.shape, self.size) > align.CUT_FRACTION
        ):
            self._said_cut = True
            self.notes.append(
                f"the face is cut by the frame border on frame {self.frame} of {self.where} "
                "(the crop repeats the border's pixels there)"
            )
        crop = align.warp(gray, self._M, self.size)
        if self._last_crop is not None and _correlation(crop, self._last_crop) < CHANGED:
            if self._last_detect != self.frame and not self._detect(gray):
                self._lose()
                return None
        self._last_crop = crop
        return crop

    def crop_at(self, gray: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """The last frame's crop geometry applied to ``gray`` at another ``size`` (a model's)."""
        if self._M is None:
            return boxes.crop_resize(gray, self.box, size)
        scale = np.diag([size[1] / self.size[1], size[0] / self.size[0]])
        return align.warp(gray, scale @ self._M, tuple(size))

    def summary(self) -> list[str]:
        """The notes, with the frames without a face named."""
        out = list(self.notes)
        if self.faceless_runs:
            out.append(
                f"{self.faceless} frame(s) of {self.where} show no face and are skipped "
                f"(frames {ranges(self.faceless_runs)}, counted from 0)"
            )
        return out

"""Real-time spotting: frames in as they arrive, each interval out once it has ended, classified.

    spotter = StreamSpotter(fps=30, model=inference.load("runs/.../models/vy-3cl"))
    for frame in video_frames("face.mp4").frames:
        for d in spotter.push(frame):
            print(d.onset, d.apex, d.offset, d.kind, d.label)
    for d in spotter.flush():
        ...

The signal is the training-free spotter's (:mod:`merjax.spotting.signal`): the same regions, k and
rules, flows computed in jitted batches of ``chunk`` new frames. Two things differ from spotting a
whole video, because a stream has no future: the relative threshold and the noise floor are taken
over the signal so far (its last ``window_s`` seconds; nothing is decided in the first ``warmup_s``
seconds, which only fill it), and each decision waits for the frames it needs. The signal at frame t
needs frame t + k, and a peak at t is decided once the signal is known k frames past it: a macro
interval (offset t + k_macro) is out k_macro frames after its offset. A micro peak is also held
until every macro peak that could contain it is decided, so that the rise of a macro-expression is
not reported as a micro one: a micro interval is out ``3 k_macro - k_micro`` frames after its offset
(1.6 s at any frame rate with the default k). Add up to one chunk to both; ``Detection.latency_s``
records the wall-clock time from the arrival of the offset frame. Memory is bounded: the frames kept
are the last ``4 k_macro + 2 chunk``, the signal the last ``window_s`` seconds.
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from merjax import batches, faces
from merjax.data.frames import open_video, shortfall_note, stated_frame_count
from merjax.data.intervals import KINDS
from merjax.errors import DataError
from merjax.spotting import signal as sig


@dataclasses.dataclass(frozen=True)
class Detection:
    """A spotted interval of the stream (frame indices from 0) and what the model made of it."""

    onset: int
    apex: int
    offset: int
    kind: str
    label: str = ""
    probabilities: tuple[float, ...] = ()
    latency_s: float = 0.0  # from the arrival of frame `offset` to this detection


class StreamSpotter:
    """Spots micro- and macro-expression intervals in a stream of grey frames."""

    def __init__(
        self,
        fps: float,
        settings: sig.SpotSettings = sig.SpotSettings(),
        *,
        model=None,
        crop: str = "face",
        window_s: float = 60.0,
        warmup_s: float = 2.0,
        chunk: int = 16,
    ):
        if fps <= 0:
            raise DataError(f"frame rate must be positive, got {fps}")
        self.fps, self.settings, self.model, self.crop = fps, settings, model, crop
        self.ks = settings.ks(fps)
        self.chunk = chunk
        kmax = max(self.ks.values())
        keep = 4 * kmax + 2 * chunk + 2
        self._small: collections.deque = collections.deque(maxlen=keep)  # spotting crops
        self._model: collections.deque = collections.deque(maxlen=keep)  # model-size crops
        self._arrived: collections.deque = collections.deque(maxlen=keep)  # wall clock
        self._motion = {k: collections.deque(maxlen=keep) for k in KINDS}  # [A] per frame
        self._window = max(1, int(window_s * fps))
        # No peak is decided in the first warmup_s seconds: they fill the threshold's window.
        self._warmup = int(warmup_s * fps)
        self._values = {k: collections.deque(maxlen=self._window) for k in KINDS}
        self._recent = {k: collections.deque(maxlen=keep) for k in KINDS}
        self._eyes = {k: collections.deque(maxlen=keep) for k in KINDS}  # beside _recent
        self._flowed = 0  # frames whose motion (flow from k frames before) is known
        self._known = {k: 0 for k in KINDS}  # frames whose signal is known
        self._held: list[int] = []  # micro peaks waiting for the macro decisions
        self._macro_spans: collections.deque = collections.deque(maxlen=64)
        self._face: collections.deque = collections.deque(maxlen=keep)  # frame shows a face
        self.tracker = faces.Tracker(settings.flow.faces, (settings.size,) * 2, fps, "the stream")
        self._model_size = None if model is None else tuple(model.spec.frame_size)
        self.box: faces.Box | None = None
        self.frames_seen = 0
        self.detections = 0

    @property
    def notes(self) -> list[str]:
        """What the face tracker noticed: no face, two faces, the frames without a face."""
        return self.tracker.summary() if self.crop == "face" else []

    # ---------------------------------------------------------------- frames in

    def push(self, gray: np.ndarray) -> list[Detection]:
        """Adds one ``[H, W]`` uint8 frame; returns the intervals that became certain. A frame
        without a face (the tracker lost it) repeats the last crop, and the flows that touch it
        count as no motion, so spotting skips it; :attr:`notes` names those frames."""
        if self.crop == "face":
            small = self.tracker.step(gray)
            self.box = self.tracker.box
        else:
            small = faces.crop_resize(gray, None, (self.settings.size,) * 2)
        has_face = small is not None
        if not has_face:
            small = (
                self._small[-1] if self._small else np.zeros((self.settings.size,) * 2, np.uint8)
            )
        self._small.append(small)
        self._face.append(has_face)
        if self.model is not None:
            self._model.append(self._model_crop(gray, has_face))
        self._arrived.append(time.perf_counter())
        self.frames_seen += 1
        if self.frames_seen - self._flowed >= self.chunk:
            return self._advance()
        return []

    def _model_crop(self, gray: np.ndarray, has_face: bool) -> np.ndarray:
        """The frame at the model's size, cropped by the tracker's current geometry."""
        if self.crop != "face":
            return faces.crop_resize(gray, None, self._model_size)
        if not has_face:
            return self._model[-1] if self._model else np.zeros(self._model_size, np.uint8)
        return self.tracker.crop_at(gray, self._model_size)

    def flush(self) -> list[Detection]:
        """The end of the stream: computes what is left and decides every pending peak."""
        out = self._advance(final=True)
        for kind in KINDS:  # peaks near the end have fewer than k frames after them
            end = self._known[kind]
            out += self._decide(kind, range(max(0, end - self.ks[kind]), end))
        return out + self._release(final=True)

    # ---------------------------------------------------------------- internals

    def _index(self, t: int) -> int:
        """Position of frame ``t`` in the frame buffers."""
        return len(self._small) - (self.frames_seen - t)

    def _motion_at(self, kind: str, t: int) -> np.ndarray:
        m = self._motion[kind]
        return m[len(m) - (self._flowed - t)]

    def _advance(self, final: bool = False) -> list[Detection]:
        start, upto = self._flowed, self.frames_seen
        frames = np.stack(self._small)
        for kind in KINDS:  # region motion of the new frames, in fixed-size batches
            k = self.ks[kind]
            rows = np.zeros((upto - start, len(sig.MEASURED)), np.float32)
            targets = [t for t in range(start, upto) if t >= k]
            idx = np.array([self._index(t) for t in targets], int)
            at = np.array([t - start for t in targets], int)
            face = np.asarray(self._face, bool)
            for b in batches.padded(idx, self.chunk):
                m, _ = sig.motion_pairs(
                    frames[b.index - k], frames[b.index], self.settings,
                    regions=self.tracker.regions,
                )  # fmt: skip
                m = m * (face[b.index - k] & face[b.index])[:, None]  # no face: no motion
                rows[at[b.real]] = m[: b.count]
            self._motion[kind].extend(rows)
        self._flowed = upto
        out: list[Detection] = []
        for kind in KINDS:  # the signal at t needs the motion at t + k (or the stream's end)
            k, known = self.ks[kind], self._known[kind]
            ready = upto if final else max(known, upto - k)
            for t in range(known, ready):
                m = self._motion_at(kind, t)
                later = self._motion_at(kind, t + k) if t + k < upto else np.zeros_like(m)
                both = (0.5 * (m + later))[None]
                value = float(sig.signal(both, self.settings)[0])
                self._values[kind].append(value)
                self._recent[kind].append(value)
                self._eyes[kind].append(float(sig.eye_signal(both)[0]))
            self._known[kind] = ready
            if not final:
                out += self._decide(kind, range(max(0, known - k), max(0, ready - k)))
        return out + self._release()

    def _level(self, kind: str) -> float:
        """The threshold over the signal so far (its first k frames, which have no flow, while
        they are still in the window), or its noise floor over the same frames if higher: the
        whole-video rule, since there a peak is the largest value within k of itself."""
        skip = self.ks[kind] if self._known[kind] <= self._window else 0
        values = np.asarray(self._values[kind])
        relative = sig.threshold(values, skip, self.settings.threshold)
        return max(
            relative,
            sig.noise_floor(values, skip, self.settings.noise_margin, self.settings.least_motion()),
        )

    def _value(self, kind: str, t: int) -> float | None:
        """The signal at frame t if it is known and still kept."""
        rec = self._recent[kind]
        i = len(rec) - (self._known[kind] - t)
        return rec[i] if 0 <= i < len(rec) else None

    def _decide(self, kind: str, ts) -> list[Detection]:
        """Peaks at frames ``ts`` (each with its k following signal values known, or the stream
        over), by the whole-video spotter's rules: :func:`merjax.spotting.signal.is_peak`, the
        blink rule :func:`merjax.spotting.signal.is_blink` and, between the kinds,
        :func:`merjax.spotting.signal.rises_within_micro`."""
        k, level, out = self.ks[kind], self._level(kind), []
        for t in ts:
            v = self._value(kind, t) if t >= max(k, self._warmup) else None
            if v is None or v < level:  # below the level: no window to build
                continue
            lo = max(k, t - k)
            window = [self._value(kind, u) for u in range(lo, min(self._known[kind], t + k + 1))]
            if None in window or not sig.is_peak(np.asarray(window), t - lo, level):
                continue
            eyes = self._eyes[kind][len(self._recent[kind]) - (self._known[kind] - t)]
            if sig.is_blink(eyes, v, self.settings.blink_ratio):
                continue
            if kind == "macro":
                km = self.ks["micro"]
                near = [self._value("micro", u) for u in range(t - km, t + km + 1)]
                near = np.asarray([x for x in near if x is not None])
                if sig.rises_within_micro(near, v, self.settings.micro_ratio):
                    continue  # a short expression: its micro peaks stand
                self._macro_spans.append((t - k, t + k))
                self._held = [p for p in self._held if not t - k <= p <= t + k]
                out.append(self._detection("macro", t))
            else:
                self._held.append(t)
        return out

    def _release(self, final: bool = False) -> list[Detection]:
        """Micro peaks no macro peak can still contain (macro peaks up to t + k_macro are
        decided once the macro signal is known k_macro frames past them)."""
        decided = self._known["macro"] - self.ks["macro"]  # macro peaks before this: decided
        out, keep = [], []
        for t in self._held:
            if any(a <= t <= b for a, b in self._macro_spans):
                continue
            if final or t + self.ks["macro"] < decided:
                out.append(self._detection("micro", t))
            else:
                keep.append(t)
        self._held = keep
        return out

    def _detection(self, kind: str, t: int) -> Detection:
        k = self.ks[kind]
        onset, offset = max(0, t - k), min(self.frames_seen - 1, t + k)
        label, probs = "", ()
        if self.model is not None:
            a, b = self._index(onset), self._index(t)
            if a >= 0 and b >= 0:
                frames = np.stack(self._model)
                p = np.asarray(self.model.classify(frames[a : a + 1], frames[b : b + 1]))[0]
                label, probs = self.model.spec.class_names[int(p.argmax())], tuple(map(float, p))
        i = self._index(offset)
        arrived = self._arrived[i] if 0 <= i < len(self._arrived) else time.perf_counter()
        self.detections += 1
        return Detection(onset, t, offset, kind, label, probs, time.perf_counter() - arrived)


# ---------------------------------------------------------------------------- sources and sinks


@dataclasses.dataclass
class FrameSource:
    """Grey frames of a video file or camera, read as they come; ``fps`` as the source states
    it; ``notes`` what was noticed (a variable frame rate)."""

    frames: Iterator[np.ndarray]
    fps: float
    name: str
    notes: list[str]


MAX_CAMERA = 255


def open_source(
    video: str | Path | None = None, camera: int | None = None, fps: float | None = None
) -> FrameSource:
    """Frames of a video file or of camera ``camera``; one clear error when it cannot be
    opened. ``fps`` overrides the rate the source states; a video file that states none is an
    error asking for it (spotting's windows are in seconds), a camera that states none is taken
    as 30 fps (noted)."""
    import cv2

    if (video is None) == (camera is None):
        raise DataError("give a video file or a camera index, not both or neither")
    if video is not None:
        cap, name = open_video(video), str(video)
    else:
        # OpenCV crashes on a negative index (SIGSEGV) and raises its own error on one beyond
        # a C int; no system numbers its cameras past a few hundred.
        if not isinstance(camera, (int, np.integer)) or not 0 <= camera <= MAX_CAMERA:
            raise DataError(f"--camera must be a camera index 0..{MAX_CAMERA}, got {camera}")
        cap, name = cv2.VideoCapture(int(camera)), f"camera {camera}"
        if not cap.isOpened():
            raise DataError(f"camera {camera} cannot be opened (no such camera, or it is busy)")
    notes = []
    stated = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    if fps is not None:
        if not (np.isfinite(fps) and fps > 0):
            cap.release()
            raise DataError(f"--fps must be a positive frame rate, got {fps}")
        if np.isfinite(stated) and stated > 0 and abs(stated - fps) > 1e-3 * fps:
            notes.append(f"{name} states {stated:g} fps; spotted at --fps={fps:g}")
        stated = float(fps)
    elif stated <= 0 or not np.isfinite(stated):
        if video is not None:
            cap.release()
            raise DataError(f"{name} states no frame rate: give it with --fps")
        stated = 30.0
        notes.append(f"{name} states no frame rate: taken as 30 fps")
    fps = stated

    # A file whose header states its frame count: each frame is held back until the next one
    # reads, so that the last can be dropped if the file ends short (shortfall_note).
    stated_count = stated_frame_count(cap) if video is not None else 0

    def frames():
        n, warned, held = 0, False, None
        try:
            while True:
                ok, frame = cap.read()
                if not ok:
                    short = shortfall_note(name, n, stated_count)
                    if held is not None and short:
                        notes.append(f"{short}, {n - 1} are spotted")
                    elif held is not None:
                        yield held
                    break
                if video is not None and not warned and n > 0:
                    if drifts(cap.get(cv2.CAP_PROP_POS_MSEC), n, fps):
                        notes.append(
                            f"{name} has a variable frame rate: its timestamps drift from frame "
                            f"counts at the stated {fps:.2f} fps; spotting counts frames, so "
                            "intervals in seconds are approximate"
                        )
                        warned = True
                gray = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
                n += 1
                if stated_count <= 0:
                    yield gray
                    continue
                if held is not None:
                    yield held
                held = gray
        finally:
            cap.release()

    return FrameSource(frames(), fps, name, notes)


def drifts(position_ms: float, index: int, fps: float) -> bool:
    """Whether frame ``index``'s timestamp (OpenCV's position after reading it) is off its
    constant-rate time by more than 1.5 frames, or 1% of the elapsed time on long videos: a
    variable frame rate (phones write those), which frame counts misstate in seconds.
    A container without timestamps reports 0, which says nothing."""
    frame_ms = 1000 / fps
    return position_ms > 0 and abs(position_ms - index * frame_ms) > 1.5 * frame_ms * max(
        1, index / 100
    )


class DetectionCSV:
    """The detections as a CSV written as they come (flushed per row) into ``<path>.partial``,
    renamed to ``path`` by :meth:`close` -- also after Ctrl-C, so what was spotted is kept."""

    HEADER = ["onset", "apex", "offset", "onset_s", "offset_s", "kind", "class"]

    def __init__(self, path: str | Path, fps: float, class_names=()):
        self.path = Path(path)
        self.tmp = self.path.with_name(self.path.name + ".partial")
        self.fps = fps
        self._file = open(self.tmp, "w", newline="")  # noqa: SIM115 -- closed by close()
        self._writer = csv.writer(self._file)
        self._writer.writerow(self.HEADER + [f"p_{c}" for c in class_names] + ["latency_s"])
        self._file.flush()
        self.rows = 0

    def write(self, d: Detection) -> None:
        self._writer.writerow(
            [d.onset, d.apex, d.offset, f"{d.onset / self.fps:.3f}", f"{d.offset / self.fps:.3f}"]
            + [d.kind, d.label, *(f"{p:.4f}" for p in d.probabilities), f"{d.latency_s:.4f}"]
        )
        self._file.flush()
        self.rows += 1

    def close(self) -> Path:
        self._file.close()
        os.replace(self.tmp, self.path)
        return self.path

    def discard(self) -> None:
        """Nothing worth keeping (the stream failed before anything was spotted): the partial
        file, which is ours, goes; ``path`` is untouched."""
        self._file.close()
        self.tmp.unlink(missing_ok=True)

"""Synthetic long videos in the spotting databases' layouts, so spotting runs without data.

    python -m merjax.data.synthetic_long --out DIR [--size=tiny]

Writes ``CASME3/``, ``SAMMLV/`` and ``CASME_sq/`` folders in the layouts
:mod:`merjax.data.longvideo` reads, at each database's frame rate (30, 200 and 30 fps), with
their annotation files: per subject one or more videos of a neutral face
(:func:`merjax.data.render.draw_face`) in which, at known intervals,

* micro-expressions (0.25-0.5 s, about 1 px) and macro-expressions (1-3 s, 3-6 px) move where
  their action units act (the recognition database's motions: negative, positive and surprise),
* the eyes blink (0.1-0.3 s, every 2.5-6 s; CAS(ME)^3's ``eye blink`` sheet lists them),
* the mouth moves as in talking (3-5 Hz for 2-5 s),
* the head drifts slowly and now and then jerks (2-5 px in 0.2 s),

with sensor noise. The annotation files carry the official files' quirks where there are known
ones: CAS(ME)^3's video ``J`` beside folder ``j``; SAMM-LV's note rows above the header, a
macro-expression of onset 0 and an apex of -1; CAS(ME)^2's headerless sheets and an offset of 0.
One departure: CAS(ME)^3's annotation is written as ``CAS(ME)3_part_A_v2.xlsx`` (the official
one is an old-format ``.xls``, which no maintained library writes); the loader reads either.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from pathlib import Path

import cv2
import numpy as np
import openpyxl

from merjax import files
from merjax.data import casme3 as casme3_lib
from merjax.data import emotions, longvideo, render, submission
from merjax.data import samm as samm_lib
from merjax.data.intervals import Interval
from merjax.data.render import class_blobs, intensity_profile, motion_field, write_jpeg

log = logging.getLogger(__name__)

# Bump when the output changes (5: the photo faces; 4: SAMM-LV words from all of SAMM's
# negative ones).
_VERSION = 5
FACES = ("drawn", "photo")
FOLDERS = {"casme3": "CASME3", "samm_lv": "SAMMLV", "casme_sq": "CASME_sq"}


@dataclasses.dataclass(frozen=True)
class LongSpec:
    """Sizes of the synthetic long videos."""

    subjects: int  # per database
    seconds: dict  # video length per database
    frame: tuple[int, int]  # (H, W) whole frames
    face: tuple[int, int]  # face side range, pixels
    micro_gap: tuple[float, float] = (6.0, 12.0)  # seconds between micro-expressions
    macro_gap: tuple[float, float] = (8.0, 16.0)
    blink_gap: tuple[float, float] = (2.5, 6.0)
    noise: float = 2.0  # sensor noise, grey levels (standard deviation)
    # "drawn" (render.draw_face) or "photo" (render.photo_canvas: the astronaut photograph);
    # landmarks find the photo's face.
    faces: str = "drawn"
    # What varies in real recordings (spotting_robustness sweeps them); the defaults are the
    # videos as they were before these existed, draw for draw.
    micro_amp: float = 1.0  # micro-expression amplitude, times the default 0.8-1.4 px
    macro_amp: float = 1.0  # macro-expression amplitude, times the default 3-6 px
    density: float = 1.0  # expressions per minute, times the default (0: none)
    blink_rate: float = 1.0  # blinks per minute, times the default (0: none)
    talk: bool = True  # the mouth moves as in talking, about once a minute
    drift: float = 1.0  # head drift speed and jerk size, times the default (0: a still head)
    # Slow head roll, degrees at most (a sine of 8-15 s); None: 3 for the photo, 0 drawn faces.
    turn: float | None = None
    flicker: float = 0.0  # lighting flicker: relative brightness swing (0.05: +-5 %)

    def __post_init__(self):
        for name in ("micro_amp", "macro_amp", "density", "blink_rate", "drift", "flicker"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and np.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a number >= 0, got {v!r}")
        if self.turn is not None and not (np.isfinite(self.turn) and 0 <= self.turn <= 30):
            raise ValueError(f"turn must be None or 0..30 degrees, got {self.turn!r}")
        if not (np.isfinite(self.noise) and self.noise >= 0):
            raise ValueError(f"noise must be a number >= 0, got {self.noise!r}")
        if self.faces not in FACES:
            raise ValueError(f"faces must be one of {FACES}, got {self.faces!r}")

    def max_turn(self) -> float:
        return (0.0 if self.faces == "drawn" else 3.0) if self.turn is None else float(self.turn)


SPECS = {
    "full": LongSpec(
        subjects=3,
        seconds={"casme3": 150.0, "samm_lv": 45.0, "casme_sq": 150.0},
        frame=(120, 160),
        face=(96, 110),
    ),
    "tiny": LongSpec(
        subjects=2,
        seconds={"casme3": 16.0, "samm_lv": 4.0, "casme_sq": 16.0},
        frame=(96, 128),
        face=(72, 80),
        micro_gap=(3.0, 5.0),
        macro_gap=(5.0, 8.0),
    ),
}


@dataclasses.dataclass
class _Event:
    start: int  # frame index
    stop: int  # inclusive
    apex: int
    field: np.ndarray  # [H, W, 2] displacement at full intensity
    kind: str  # micro, macro, blink, talk
    emotion: str | None = None
    hz: float = 0.0  # talking: mouth oscillation


def _timeline(rng, spec: LongSpec, n: int, fps: float, canvas_shape, box) -> list[_Event]:
    """The events of one video, micro and macro never overlapping each other (0.5 s apart)."""
    events: list[_Event] = []
    taken: list[tuple[int, int]] = []

    def free(a, b):
        gap = int(0.5 * fps)
        return all(b + gap < s or a - gap > e for s, e in taken) and a >= 1 and b < n - 1

    for kind, gap, dur, amp, scale in (
        ("macro", spec.macro_gap, (1.0, 3.0), (3.0, 6.0), spec.macro_amp),
        ("micro", spec.micro_gap, (0.25, 0.5), (0.8, 1.4), spec.micro_amp),
    ):
        if spec.density != 1.0:  # the same draws, spread further apart or closer together
            gap = (gap[0] / spec.density, gap[1] / spec.density) if spec.density else None
        t = rng.uniform(1.0, gap[0]) if gap else float("inf")
        while t * fps < n:
            length = max(3, int(rng.uniform(*dur) * fps))
            start = int(t * fps)
            stop = start + length - 1
            if free(start, stop):
                emotion = str(rng.choice(list(render.MEGC2019_MOTIONS)))
                cls = int(rng.choice(render.MEGC2019_MOTIONS[emotion]))
                field = (scale * rng.uniform(*amp)) * motion_field(
                    class_blobs(rng, cls), box, canvas_shape, rng.uniform(0.06, 0.09)
                )
                apex = start + max(1, int(length * rng.uniform(0.3, 0.5)))
                events.append(_Event(start, stop, apex, field, kind, emotion))
                taken.append((start, stop))
            t += rng.uniform(*gap)
    blink_gap = spec.blink_gap
    if spec.blink_rate != 1.0:
        blink_gap = tuple(g / spec.blink_rate for g in blink_gap) if spec.blink_rate else None
    t = rng.uniform(0.5, blink_gap[1]) if blink_gap else float("inf")
    while t * fps < n - 2:
        length = max(2, int(rng.uniform(0.1, 0.3) * fps))
        start = int(t * fps)
        lids = [(0.32, 0.38, 0.0, 1.0), (0.68, 0.38, 0.0, 1.0)]  # both upper lids down
        field = rng.uniform(2.5, 4.0) * motion_field(lids, box, canvas_shape, 0.05)
        events.append(
            _Event(start, min(n - 1, start + length - 1), start + length // 2, field, "blink")
        )
        t += rng.uniform(*blink_gap)
    for _ in range(max(1, int(n / fps / 60)) if spec.talk else 0):  # talking, once a minute
        length = int(rng.uniform(2.0, 5.0) * fps)
        start = int(rng.uniform(0, max(1, n - length)))
        field = rng.uniform(1.0, 2.0) * motion_field(
            [(0.5, 0.78, 0.0, 1.0)], box, canvas_shape, 0.08
        )
        events.append(
            _Event(
                start, min(n - 1, start + length - 1), start, field, "talk", hz=rng.uniform(3, 5)
            )
        )
    return events


def _intensity(e: _Event, i: int, fps: float) -> float:
    if not e.start <= i <= e.stop:
        return 0.0
    if e.kind == "talk":
        return float(0.5 - 0.5 * np.cos(2 * np.pi * e.hz * (i - e.start) / fps))
    prof = intensity_profile(e.stop - e.start + 1, e.apex - e.start, 0.0)
    return float(prof[i - e.start])


def _head(rng, n: int, fps: float, side: int, scale: float = 1.0) -> np.ndarray:
    """Head translation per frame ``[n, 2]``: a slow drift and a few quick jerks (both times
    ``scale``)."""
    drift = np.cumsum(rng.normal(0, 0.004 * side / 100 * (30 / fps) ** 0.5, (n, 2)), axis=0)
    jerks = np.zeros((n, 2))
    for _ in range(max(1, int(n / fps / 25))):
        at, dur = int(rng.uniform(0, n)), max(2, int(0.2 * fps))
        step = rng.uniform(2, 5) * np.array([np.cos(a := rng.uniform(0, 2 * np.pi)), np.sin(a)])
        ramp = np.clip((np.arange(n) - at) / dur, 0, 1)[:, None]
        jerks += ramp * step
    return (scale * (drift + jerks)).astype(np.float32)


def _render(rng, spec: LongSpec, fps: float, seconds: float):
    """``(frames generator, events)`` of one video."""
    h, w = spec.frame
    drawn = spec.faces == "drawn"
    canvas, box = (render.face_canvas if drawn else render.photo_canvas)(rng, spec.frame, spec.face)
    side = box[2]
    n = int(seconds * fps)
    events = _timeline(rng, spec, n, fps, (h, w), box)
    head = _head(rng, n, fps, side, spec.drift)
    noise_seed = int(rng.integers(2**31))
    # The head rolls slowly about the face's centre (by default only the photo's).
    turn = np.random.default_rng([noise_seed, 1])
    top = spec.max_turn()
    roll_deg = turn.uniform(top / 2, top) * np.sin(
        2 * np.pi * np.arange(n) / (turn.uniform(8.0, 15.0) * fps) + turn.uniform(0, 2 * np.pi)
    )
    cx, cy = box[0] + box[2] / 2, box[1] + box[2] / 2
    # Lighting flicker: a slow beat of mains flicker against the frame rate, and a jitter.
    light = np.random.default_rng([noise_seed, 2])
    gain = 1.0 + spec.flicker * (
        0.7 * np.sin(2 * np.pi * light.uniform(0.5, 3.0) * np.arange(n) / fps)
        + 0.3 * light.uniform(-1, 1, n)
    )

    def frames():
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        noise = np.random.default_rng(noise_seed)
        for i in range(n):
            d = np.zeros((h, w, 2), np.float32)
            for e in events:
                a = _intensity(e, i, fps)
                if a:
                    d += a * e.field
            sx, sy = xx, yy
            if top:  # where each pixel of the rolled head comes from
                c, s = (
                    np.float32(np.cos(np.radians(roll_deg[i]))),
                    np.float32(np.sin(np.radians(roll_deg[i]))),
                )
                sx = cx + c * (xx - cx) + s * (yy - cy)
                sy = cy - s * (xx - cx) + c * (yy - cy)
            img = cv2.remap(
                canvas,
                sx - d[..., 0] - head[i, 0],
                sy - d[..., 1] - head[i, 1],
                cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_REFLECT,
            )
            if spec.flicker:
                img *= np.float32(gain[i])
            img += noise.normal(0, spec.noise, img.shape).astype(np.float32)
            yield np.clip(np.rint(img), 0, 255).astype(np.uint8)

    return frames(), events


def _word(rng, database: str, emotion: str) -> str:
    return str(rng.choice(emotions.WORDS[database][emotion]))


def _write_casme3(root: Path, spec: LongSpec, rng) -> None:
    fps = longvideo.FPS["casme3"]
    rows, blinks, labels = [], [], []
    for s in range(spec.subjects):
        sid, video = f"spNO.{s + 1}", "ja"[s % 2]
        written = "J" if video == "j" else video  # CAS(ME)^3's 'J' beside folder 'j'
        folder = root / casme3_lib.FRAMES / sid / video / "color"
        folder.mkdir(parents=True)
        frames, events = _render(rng, spec, fps, spec.seconds["casme3"])
        for i, img in enumerate(frames):
            write_jpeg(folder / f"{i}.jpg", cv2.cvtColor(img, cv2.COLOR_GRAY2BGR))
        for e in sorted(events, key=lambda e: e.start):
            if e.kind in ("micro", "macro"):
                kind = "Micro-expression" if e.kind == "micro" else "Macro-expression"
                rows.append(
                    (sid, written, str(e.start), str(e.apex), str(e.stop), "4", kind, "III")
                )
                if e.kind == "micro":
                    word = _word(rng, "casme3", e.emotion)
                    labels.append(
                        (sid, video, str(e.start), str(e.apex), str(e.stop), "4", "III", word)
                    )
            elif e.kind == "blink":
                blinks.append((sid, video, str(e.start), str(e.stop)))
    header = ("Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Expression type")
    _save(
        root / (longvideo.CASME3_FILE + "x"),
        [
            (longvideo.CASME3_SHEETS[0], [(*header, "Objective class"), *rows]),
            (longvideo.CASME3_SHEETS[1], [("Subject", "Filename", "Onset", "Offset"), *blinks]),
        ],
    )
    header = ("Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Objective class", "emotion")
    _save(root / casme3_lib.LABEL_FILE, [(casme3_lib.SHEET, [header, *labels])])


def _write_samm_lv(root: Path, spec: LongSpec, rng) -> None:
    fps = longvideo.FPS["samm_lv"]
    rows, codes = [], []
    for s in range(spec.subjects):
        sid = f"{s + 6:03d}"
        video = f"{sid}_1"
        folder = root / "SAMM_longvideos" / video
        folder.mkdir(parents=True)
        frames, events = _render(rng, spec, fps, spec.seconds["samm_lv"])
        for i, img in enumerate(frames):
            write_jpeg(folder / f"{video}_{i + 1:04d}.jpg", img)
        k = 0
        for e in sorted(events, key=lambda e: e.start):
            if e.kind not in ("micro", "macro"):
                continue
            k += 1
            name = f"{video}_{k}"
            onset, apex, offset = e.start + 1, e.apex + 1, e.stop + 1
            kind = "Micro - 1/2" if e.kind == "micro" else "Macro"
            rows.append((sid, name, "1", onset, apex, offset, offset - onset + 1, kind, "12", ""))
            if e.kind == "micro":
                word = _word(rng, "samm_lv", e.emotion)
                codes.append(
                    (
                        sid,
                        name,
                        "1",
                        onset,
                        apex,
                        offset,
                        offset - onset + 1,
                        kind,
                        "12",
                        "",
                        word,
                        1,
                        "",
                    )
                )
        # Quirks: a long macro row of onset 0 (public readers leave these out), an apex of -1.
        rows.append((sid, f"{video}_{k + 1}", "1", 0, 10, 40, 41, "Macro", "", "a long one"))
        if s == 0:  # the first expression of the first video gets an apex of -1
            i = next(j for j, r in enumerate(rows) if r[3] > 0)
            rows[i] = (*rows[i][:4], -1, *rows[i][5:])
    common = ("Subject", "Filename", "Inducement Code")
    notes = [(f"SAMM Long Videos release notes line {i + 1}",) for i in range(9)]
    header = (*common, "Onset", "Apex", "Offset", "Duration", "Type", "Action Units", "Notes")
    _save(root / "SAMM_LongVideos_V3_Release.xlsx", [("Sheet1", [*notes, header, *rows])])
    notes = [(f"SAMM note {i + 1}",) for i in range(13)]
    header = (*common, "Onset Frame", "Apex Frame", "Offset Frame", "Duration", "Type")
    header += ("Action Units", "Notes", "Estimated Emotion", "Objective Classes", "Comments")
    _save(root / samm_lib.CODES, [("Sheet1", [*notes, header, *codes])])


def _write_casme_sq(root: Path, spec: LongSpec, rng) -> None:
    fps = longvideo.FPS["casme_sq"]
    rows, naming_subjects = [], []
    names = {"0101": "disgust1", "0102": "anger2"}
    for s in range(spec.subjects):
        participant, subject = s + 1, f"s{s + 15}"
        code = sorted(names)[s % 2]
        folder = root / "rawpic" / subject / f"{s + 15}_{code}{names[code][:-1]}video"
        folder.mkdir(parents=True)
        frames, events = _render(rng, spec, fps, spec.seconds["casme_sq"])
        for i, img in enumerate(frames):
            write_jpeg(folder / f"img{i + 1}.jpg", img)
        naming_subjects.append((None, subject, participant))
        k, micros = 0, 0
        for e in sorted(events, key=lambda e: e.start):
            if e.kind not in ("micro", "macro"):
                continue
            k += 1
            micros += e.kind == "micro"
            kind = "micro-expression" if e.kind == "micro" else "macro-expression"
            emotion = _word(rng, "casme_sq", e.emotion) if e.kind == "micro" else "others"
            offset = e.stop + 1
            if e.kind == "micro" and micros == 1 and s == 0:
                offset = 0  # CAS(ME)^2 leaves some offsets 0: the apex ends the interval
            rows.append(
                (
                    participant,
                    f"{names[code]}_{k}",
                    e.start + 1,
                    e.apex + 1,
                    offset,
                    "12",
                    emotion,
                    kind,
                    "x",
                )
            )
    _save(
        root / longvideo.CASME_SQ_FILE,
        [
            ("Sheet1", rows),
            ("naming rule2", naming_subjects),
            ("naming rule1", list(names.items())),
        ],
    )


def write(
    out: str | Path, *, size: str = "full", seed: int = 0, spec: LongSpec | None = None
) -> dict[str, Path]:
    """Writes the long videos under ``out`` (of ``size``, or of ``spec``); returns
    ``{database: root}``. Deterministic."""
    if spec is None and size not in SPECS:
        raise ValueError(f"size must be one of {sorted(SPECS)}, got {size!r}")
    stamp = _stamp(size, seed) if spec is None else {"spec": "custom", "seed": seed}
    out = files.new_dir(out, _writer(spec or SPECS[size], seed), stamp=stamp, stamp_file=STAMP)
    return {name: out / folder for name, folder in FOLDERS.items()}


STAMP = "synthetic_long.json"  # what the videos were written as: size, seed, version


def _writer(spec: LongSpec, seed: int, databases=tuple(FOLDERS)):
    """Writes the layouts ``databases`` of ``spec`` and ``seed`` into a folder (each layout's
    videos the same whichever others are written). Deterministic."""
    writers = {"casme3": _write_casme3, "samm_lv": _write_samm_lv, "casme_sq": _write_casme_sq}

    def write_into(folder: Path) -> None:
        for i, (name, writer) in enumerate(writers.items()):
            if name not in databases:
                continue
            root = folder / FOLDERS[name]
            root.mkdir(parents=True)
            writer(root, spec, np.random.default_rng([seed, 27, i]))

    return write_into


def _save(path: Path, sheets: list[tuple[str, list]]) -> None:
    """A workbook of ``(sheet title, rows)``, the first sheet first."""
    book = openpyxl.Workbook()
    for i, (title, rows) in enumerate(sheets):
        ws = book.active if i == 0 else book.create_sheet(title)
        ws.title = title
        for r in rows:
            ws.append(tuple(r))
    book.save(path)


def write_video(paths, out: str | Path, fps: float) -> Path:
    """The frames at ``paths`` as one Motion-JPEG ``.avi`` (a codec every OpenCV build writes):
    a long video as a file, for the stream (``predict --spot``) and its benchmark."""
    first = cv2.imread(str(paths[0]))
    h, w = first.shape[:2]
    out = Path(out)
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    if not writer.isOpened():
        raise OSError(f"OpenCV cannot write {str(out)!r}")
    try:
        for p in paths:
            writer.write(cv2.imread(str(p)))
    finally:
        writer.release()
    return out


# The fields LongSpec gained after version 5: left out of a digest while at their defaults, so
# the videos written before them (the same, draw for draw) keep their cache key.
_LATER_FIELDS = ("micro_amp", "macro_amp", "density", "blink_rate", "talk", "drift", "turn")
_LATER_FIELDS += ("flicker",)


def _digest(spec: LongSpec, seed: int, extra=()) -> str:
    fields = dataclasses.asdict(spec)
    default = LongSpec(subjects=1, seconds={}, frame=(1, 1), face=(1, 1))
    for name in _LATER_FIELDS:
        if fields[name] == getattr(default, name):
            del fields[name]
    text = json.dumps([fields, seed, _VERSION, *extra], sort_keys=True, default=list)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _stamp(size: str, seed: int, faces: str = "drawn") -> dict:
    digest = _digest(dataclasses.replace(SPECS[size], faces=faces), seed)
    return {"size": size, "seed": seed, "version": _VERSION, "digest": digest}


def ensure_spec(
    cache_dir: str | Path,
    spec: LongSpec,
    *,
    seed: int = 0,
    databases: tuple[str, ...] = tuple(FOLDERS),
    progress=None,
) -> dict[str, Path]:
    """:func:`ensure` for any ``spec`` (a robustness sweep's settings), writing only the layouts
    ``databases``; the folder is named by a digest of everything that decides its videos."""
    unknown = sorted(set(databases) - set(FOLDERS))
    if unknown or not databases:
        raise ValueError(f"databases must be some of {list(FOLDERS)}, got {list(databases)}")
    digest = _digest(spec, seed, sorted(databases))
    out = Path(cache_dir) / f"synthetic-long-custom-{digest}"
    files.written_once(
        out,
        _writer(spec, seed, databases),
        stamp={"spec": "custom", "seed": seed, "version": _VERSION, "digest": digest},
        stamp_file=STAMP,
        progress=progress,
    )
    return {name: out / FOLDERS[name] for name in databases}


def ensure(
    cache_dir: str | Path, *, size: str = "full", seed: int = 0, faces: str = "drawn"
) -> dict[str, Path]:
    """The long videos for ``(size, seed, faces)`` under ``cache_dir``, written on first use
    (once, by the first of several runs that start together: :func:`merjax.files.written_once`).
    """
    if size not in SPECS:
        raise ValueError(f"size must be one of {sorted(SPECS)}, got {size!r}")
    if faces not in FACES:
        raise ValueError(f"faces must be one of {FACES}, got {faces!r}")
    tag = "" if faces == "drawn" else f"-{faces}"
    out = Path(cache_dir) / f"synthetic-long-{size}{tag}-seed{seed}-v{_VERSION}"
    if not (out / STAMP).is_file():
        log.info("writing the synthetic long videos (%s%s, seed %d) to %s", size, tag, seed, out)
    spec = dataclasses.replace(SPECS[size], faces=faces)
    files.written_once(
        out,
        _writer(spec, seed),
        stamp=_stamp(size, seed, faces),
        stamp_file=STAMP,
        progress=log.info,
    )
    return {name: out / folder for name, folder in FOLDERS.items()}


UNLABELLED = "videos"  # the test root inside an unlabelled set; beside it, the truth files
TRUTH_FILES = {"spotting": "truth_spotting.csv", "str": "truth_str.csv"}


def _write_unlabelled(spec: LongSpec, seed: int):
    """Writes three unlabelled 30 fps test videos as the challenge hands them out -- frames in
    a ``color/`` folder numbered from 0 (CAS(ME)^3), frames numbered from 1 with a gap of five
    missing frames (SAMM), a Motion-JPEG ``.avi`` -- and, beside the test root, their truth in
    the submission's columns (:mod:`merjax.data.submission`), MEGC 2019's classes."""
    fps = longvideo.FPS["casme3"]

    def write_into(folder: Path) -> None:
        root = folder / UNLABELLED
        truth: dict[str, list[Interval]] = {}
        rng = np.random.default_rng([seed, 31])
        for form, vid in enumerate(("cas/spNO.201/a", "samm/201_1", "clips/s203")):
            frames, events = _render(rng, spec, fps, spec.seconds["casme3"])
            frames = list(frames)
            numbers = list(range(len(frames))) if form != 1 else [i + 1 for i in range(len(frames))]
            keep = list(range(len(frames)))
            if form == 1:  # five frames missing where no expression is
                busy = {
                    i
                    for e in events
                    if e.kind in ("micro", "macro")
                    for i in range(e.start - 5, e.stop + 6)
                }
                at = next(
                    i
                    for i in range(len(frames) // 3, len(frames) - 10)
                    if not busy & set(range(i, i + 5))
                )
                keep = [i for i in keep if not at <= i < at + 5]
            if form == 0:
                out = root / vid / "color"
                out.mkdir(parents=True)
                (root / vid / "depth").mkdir()  # CAS(ME)^3's depth frames: not a video
                write_jpeg(root / vid / "depth" / "0.jpg", frames[0])
            elif form == 1:
                out = root / vid
                out.mkdir(parents=True)
            if form in (0, 1):
                for i in keep:
                    name = (
                        f"{numbers[i]}.jpg"
                        if form == 0
                        else f"{vid.split('/')[-1]}_{numbers[i]:05d}.jpg"
                    )
                    write_jpeg(out / name, frames[i])
            else:
                (root / "clips").mkdir(parents=True)
                writer = cv2.VideoWriter(
                    str(root / f"{vid}.avi"), cv2.VideoWriter_fourcc(*"MJPG"), fps, spec.frame[::-1]
                )
                try:
                    for img in frames:
                        writer.write(cv2.cvtColor(img, cv2.COLOR_GRAY2BGR))
                finally:
                    writer.release()
            truth[vid] = [
                Interval(numbers[e.start], numbers[e.stop], e.kind, numbers[e.apex], e.emotion)
                for e in sorted(events, key=lambda e: e.start)
                if e.kind in ("micro", "macro")
            ]
        submission.write(folder / TRUTH_FILES["spotting"], truth, truth=True)
        submission.write(folder / TRUTH_FILES["str"], truth, emotion=True, truth=True)

    return write_into


def ensure_unlabelled(
    cache_dir: str | Path, *, size: str = "full", seed: int = 0, faces: str = "drawn"
) -> Path:
    """The synthetic unlabelled test set for ``(size, seed, faces)`` under ``cache_dir``,
    written on first use: returns its folder (``videos/``, the test root, and the truth
    files :data:`TRUTH_FILES`)."""
    if size not in SPECS:
        raise ValueError(f"size must be one of {sorted(SPECS)}, got {size!r}")
    spec = dataclasses.replace(SPECS[size], faces=faces)
    digest = _digest(spec, seed, ["unlabelled"])
    out = Path(cache_dir) / f"synthetic-unlabelled-{size}-{faces}-seed{seed}-{digest}"
    files.written_once(
        out,
        _write_unlabelled(spec, seed),
        stamp={"spec": "unlabelled", "seed": seed, "version": _VERSION, "digest": digest},
        stamp_file=STAMP,
    )
    return out


def _main(argv=None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder to write (must not exist or be empty)")
    parser.add_argument("--size", default="full", choices=sorted(SPECS))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        roots = write(args.out, size=args.size, seed=args.seed)
    except (FileExistsError, ValueError) as e:
        parser.exit(2, f"error: {e}\n")
    for name, root in roots.items():
        print(f"{name}: {root}")


if __name__ == "__main__":
    _main()

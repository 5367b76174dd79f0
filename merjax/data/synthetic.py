"""A synthetic micro-expression database in the CASME II, SAMM and SMIC-HS layouts.

The embedded default of ``merjax.main`` and the tests' data. It is written to disk with the
official spreadsheet formats and folder layouts (including their quirks: CASME II's blank
columns and '/' apex, a clip that ends at its apex, SAMM's 13 note rows, Duration formulas and
inconsistent zero padding), so the real loaders read it.

What is in a clip (docs/data.md): a face that differs per subject (geometry, skin tone,
texture); a motion localised where the class's action units act -- I: lip corners up (AU6/12),
II: brows up (AU1/2/5), III: brows down and together (AU4/7), IV: nose wrinkle and upper lip up
(AU9/10), V: lip corners down (AU15/17), VI: one lip corner (AU14), VII: one random region --
peaking at 0.4-1.5 px at the apex with per-sample amplitude, asymmetry and position jitter;
onset -> apex -> offset timing at 200 fps (30-80 ms each way); small global head drift; an
unrelated nuisance motion in some clips; sensor noise and JPEG compression.

CASME II-style clips are face crops (``Cropped/subNN/CLIP/reg_imgF.jpg``); SAMM-style clips are
whole grey frames with the face inside (``SAMM/SUBJ/CLIP/SUBJ_F.jpg``), so the face detector runs;
SMIC-HS-style clips (for the MEGC 2019 composite) are whole frames too
(``HS/sN/micro/EMOTION/sN_ne_01/imageF.bmp``), their emotions shown by the objective classes'
motions (negative: III-V, positive: I, surprise: II).

    python -m merjax.data.synthetic --out /tmp/synth            # composite-like
    python -m merjax.data.synthetic --out /tmp/synth --size=tiny --baseline
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
from pathlib import Path

import cv2
import numpy as np
import openpyxl

from merjax.data import casme2 as casme2_lib
from merjax.data import emotions
from merjax.data import samm as samm_lib

log = logging.getLogger(__name__)

# Bump when the generator's output changes (2: SMIC-HS beside CASME II and SAMM; 3: CAS(ME)^3).
_VERSION = 3

CASME2_EMOTIONS = ("happiness", "surprise", "disgust", "disgust", "repression", "fear", "others")
SAMM_EMOTIONS = ("Happiness", "Surprise", "Anger", "Disgust", "Sadness", "Contempt", "Other")
ACTION_UNITS = ("6+12", "1+2+5", "4+7", "9+10", "15+17", "R14", "24")

# Action-unit motions in face coordinates: (x, y) of the blob centre as fractions of the face
# box, (vx, vy) its direction; "m" mirrors the blob to the other side with vx negated.
_AU_BLOBS: dict[int, list[tuple[float, float, float, float, bool]]] = {
    0: [(0.38, 0.70, -0.4, -0.9, True), (0.30, 0.55, 0.0, -0.5, True)],
    1: [
        (0.33, 0.31, 0.0, -1.0, True),
        (0.42, 0.31, 0.0, -0.8, True),
        (0.33, 0.38, 0.0, -0.4, True),
    ],
    2: [(0.35, 0.31, 0.6, 0.8, True), (0.33, 0.41, 0.0, -0.3, True)],
    3: [(0.44, 0.52, 0.0, -0.8, True), (0.50, 0.63, 0.0, -1.0, False)],
    4: [(0.38, 0.70, 0.0, 1.0, True), (0.50, 0.82, 0.0, -0.6, False)],
}


@dataclasses.dataclass(frozen=True)
class Spec:
    """Sizes of a synthetic database. Class counts are for objective classes I..VII."""

    casme2_subjects: int
    samm_subjects: int
    casme2_counts: tuple[int, ...]
    samm_counts: tuple[int, ...]
    casme2_face: tuple[int, int]  # range of face-crop sides (CASME II crops vary in size)
    samm_frame: tuple[int, int]  # (H, W) of SAMM-style whole frames
    samm_face: tuple[int, int]  # range of face sides inside them
    smic_subjects: int = 16
    smic_counts: tuple[int, ...] = (66, 51, 40)  # negative, positive, surprise (SMIC-HS-E's 157)
    smic_frame: tuple[int, int] = (240, 320)  # SMIC-HS whole frames (640x480 in the real one)
    smic_face: tuple[int, int] = (130, 160)
    casme3_subjects: int = 28
    # anger, disgust, fear, happy, others, sad, surprise (merjax.data.casme3.EMOTIONS): a third
    # of Part A's 64, 250, 86, 55, 161, 57, 187
    casme3_counts: tuple[int, ...] = (21, 83, 29, 18, 54, 19, 62)
    casme3_frame: tuple[int, int] = (240, 320)  # colour whole frames (1280x720 in the real one)
    casme3_face: tuple[int, int] = (130, 160)
    rise: tuple[int, int] = (6, 16)  # frames onset -> apex (30-80 ms at 200 fps)
    fall: tuple[int, int] = (6, 16)  # frames apex -> offset
    amplitude: tuple[float, float] = (0.3, 1.5)  # peak displacement in pixels of the face box
    noise: float = 3.0  # sensor noise, grey levels
    nuisance: float = 0.6  # probability of an unrelated motion in a clip


SPECS: dict[str, Spec] = {
    # Class and subject counts of the MEGC 2018 composite (docs/data.md), plus VI/VII
    # rows that the composite must drop.
    "full": Spec(
        casme2_subjects=26,
        samm_subjects=21,
        casme2_counts=(25, 15, 99, 26, 20, 4, 12),
        samm_counts=(24, 13, 20, 8, 3, 3, 8),
        casme2_face=(100, 140),
        samm_frame=(240, 320),
        samm_face=(130, 160),
    ),
    # For tests: a few subjects, small frames, short clips.
    "tiny": Spec(
        casme2_subjects=3,
        samm_subjects=3,
        casme2_counts=(2, 2, 3, 2, 2, 0, 1),
        samm_counts=(2, 1, 2, 1, 1, 0, 1),
        casme2_face=(44, 52),
        samm_frame=(96, 128),
        samm_face=(64, 72),
        smic_subjects=3,
        smic_counts=(3, 2, 2),
        smic_frame=(96, 128),
        smic_face=(64, 72),
        casme3_subjects=3,
        casme3_counts=(1, 2, 1, 1, 2, 1, 2),
        casme3_frame=(96, 128),
        casme3_face=(64, 72),
        rise=(2, 4),
        fall=(2, 3),
    ),
}


# --------------------------------------------------------------------------- faces and motion


def draw_face(rng: np.random.Generator, side: int) -> np.ndarray:
    """A neutral face, ``[side, side]`` float32 grey, on a dark background.

    Proportions were chosen so that OpenCV's frontal-face Haar cascade finds it.
    """
    s = side
    img = np.full((s, s), 40.0, np.float32)
    yy, xx = np.mgrid[0:s, 0:s] / s
    cx, cy = 0.5 + rng.uniform(-0.02, 0.02), 0.52
    skin = rng.uniform(150, 200)
    ell = ((xx - cx) / rng.uniform(0.33, 0.4)) ** 2 + ((yy - cy) / rng.uniform(0.43, 0.48)) ** 2
    img = np.where(ell < 1, skin - 25 * (xx - cx) - 30 * np.clip(ell, 0, 1), img).astype(np.float32)

    def ellipse(x, y, ax, ay, value, angle=0.0):
        cv2.ellipse(
            img,
            (int(x * s * 16), int(y * s * 16)),
            (int(ax * s * 16), int(ay * s * 16)),
            angle,
            0,
            360,
            float(value),
            -1,
            cv2.LINE_AA,
            4,
        )

    ey, ex = rng.uniform(0.38, 0.43), rng.uniform(0.15, 0.19)
    for sign in (-1, 1):
        ellipse(cx + sign * ex, ey, 0.08, 0.035, skin * 0.65)  # eye socket
        ellipse(cx + sign * ex, ey, 0.025, 0.022, 30)  # iris
        ellipse(
            cx + sign * ex,
            ey - rng.uniform(0.07, 0.09),
            0.08,
            0.02,
            skin * 0.3,
            sign * rng.uniform(0, 12),
        )  # brow
    ellipse(cx, 0.57, 0.05, 0.025, skin * 0.55)  # nose base
    ellipse(cx, 0.50, 0.025, 0.08, min(255.0, skin * 1.15))  # nose bridge
    ellipse(cx, rng.uniform(0.68, 0.72), rng.uniform(0.10, 0.14), 0.025, skin * 0.4)  # mouth
    texture = cv2.GaussianBlur(rng.normal(0, 1, (s, s)).astype(np.float32), (0, 0), s / 40)
    img += 8 * texture / texture.std() * (ell < 1)
    return cv2.GaussianBlur(img, (0, 0), s * 0.015)


def class_blobs(rng: np.random.Generator, cls: int) -> list[tuple[float, float, float, float]]:
    """The (x, y, vx, vy) motion blobs of one sample of class ``cls`` (0-based), jittered."""
    if cls < 5:
        out = []
        for x, y, vx, vy, mirror in _AU_BLOBS[cls]:
            sides = ((x, vx), (1 - x, -vx)) if mirror else ((x, vx),)
            for bx, bvx in sides:
                gain = rng.uniform(0.4, 1.0)  # asymmetry
                out.append(
                    (bx + rng.normal(0, 0.025), y + rng.normal(0, 0.025), bvx * gain, vy * gain)
                )
        return out
    if cls == 5:  # one lip corner, pulled sideways (AU14, contempt)
        side = rng.choice([-1, 1])
        return [(0.5 + side * 0.12, 0.70, side * 1.0, -0.2)]
    angle = rng.uniform(0, 2 * np.pi)  # VII: anything, anywhere
    return [(rng.uniform(0.25, 0.75), rng.uniform(0.25, 0.8), np.cos(angle), np.sin(angle))]


def motion_field(blobs, box, shape, width: float) -> np.ndarray:
    """Displacement ``[H, W, 2]`` of unit peak from blobs in face coordinates of ``box``."""
    x0, y0, side = box
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    d = np.zeros((*shape, 2), np.float32)
    for bx, by, vx, vy in blobs:
        g = np.exp(
            -((xx - x0 - bx * side) ** 2 + (yy - y0 - by * side) ** 2) / (2 * (width * side) ** 2)
        )
        d[..., 0] += vx * g
        d[..., 1] += vy * g
    peak = np.abs(d).max()
    return d / peak if peak > 0 else d


def intensity_profile(num: int, apex: int, fall_to: float) -> np.ndarray:
    """Expression intensity per frame index 0..num-1: 0 at onset, 1 at ``apex``, ``fall_to`` at
    the last frame (smooth sin^2 ramps)."""
    t = np.arange(num, dtype=np.float32)
    rise = np.sin(0.5 * np.pi * np.clip(t / max(apex, 1), 0, 1)) ** 2
    down = (
        1
        - (1 - fall_to)
        * np.sin(0.5 * np.pi * np.clip((t - apex) / max(num - 1 - apex, 1), 0, 1)) ** 2
    )
    return np.where(t <= apex, rise, down)


def _render_clip(
    rng, spec: Spec, canvas, box, cls, rise, fall, extra_after: int
) -> list[np.ndarray]:
    """Frames onset..offset(+extra_after) of one clip as uint8 images."""
    h, w = canvas.shape
    side = box[2]
    amp = rng.uniform(*spec.amplitude)
    width = rng.uniform(0.06, 0.09)
    motion = amp * motion_field(class_blobs(rng, cls), box, (h, w), width)
    if rng.random() < spec.nuisance:  # an unrelated twitch somewhere on the face
        angle = rng.uniform(0, 2 * np.pi)
        nb = [(rng.uniform(0.25, 0.75), rng.uniform(0.25, 0.85), np.cos(angle), np.sin(angle))]
        motion += rng.uniform(0.3, 1.0) * motion_field(nb, box, (h, w), 0.07)
    num = rise + fall + 1 + extra_after
    intensity = intensity_profile(rise + fall + 1, rise, rng.uniform(0.0, 0.3))
    intensity = np.concatenate([intensity, np.full(extra_after, intensity[-1])])
    head = np.cumsum(rng.normal(0, 0.02 * side / 100, (num, 2)), axis=0).astype(np.float32)
    head -= head[0]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = []
    for i in range(num):
        d = intensity[i] * motion + head[i]
        img = cv2.remap(
            canvas, xx - d[..., 0], yy - d[..., 1], cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT
        )
        img = img + rng.normal(0, spec.noise, img.shape).astype(np.float32)
        out.append(np.clip(np.rint(img), 0, 255).astype(np.uint8))
    return out


# --------------------------------------------------------------------------- assignment


def _assign(rng, counts: tuple[int, ...], num_subjects: int) -> list[tuple[int, int]]:
    """(subject index, class) pairs; every subject gets at least one class I-V sample."""
    labels = [c for c, n in enumerate(counts) for _ in range(n)]
    rng.shuffle(labels)
    main = [i for i, c in enumerate(labels) if c < 5]
    if len(main) < num_subjects:
        raise ValueError(f"{len(main)} class I-V samples cannot cover {num_subjects} subjects")
    subject = np.empty(len(labels), int)
    weights = rng.gamma(1.5, 1.0, num_subjects)
    first = set(main[:num_subjects])
    for k, i in enumerate(main[:num_subjects]):
        subject[i] = k
    for i in range(len(labels)):
        if i not in first:
            subject[i] = rng.choice(num_subjects, p=weights / weights.sum())
    return sorted(zip(subject.tolist(), labels, strict=True))


def write_jpeg(path: Path, img: np.ndarray) -> None:
    if not cv2.imwrite(str(path), img, [cv2.IMWRITE_JPEG_QUALITY, 92]):
        raise OSError(f"cannot write {path}")


# --------------------------------------------------------------------------- writers


def _write_casme2(root: Path, spec: Spec, rng: np.random.Generator) -> None:
    faces = [
        draw_face(rng, int(rng.integers(*spec.casme2_face, endpoint=True)))
        for _ in range(spec.casme2_subjects)
    ]
    pairs = _assign(rng, spec.casme2_counts, spec.casme2_subjects)
    main_rows = [i for i, (_, c) in enumerate(pairs) if c < 5]
    slash_row, ends_row = main_rows[len(main_rows) // 3], main_rows[2 * len(main_rows) // 3]
    coding, objective = [], []
    clip_numbers: dict[int, int] = {}
    for i, (subj, cls) in enumerate(pairs):
        k = clip_numbers[subj] = clip_numbers.get(subj, 0) + 1
        name = f"EP{int(rng.integers(1, 20)):02d}_{k:02d}" + ("f" if rng.random() < 0.5 else "")
        sub = f"{subj + 1:02d}"
        rise, fall = (int(rng.integers(*r, endpoint=True)) for r in (spec.rise, spec.fall))
        onset = int(rng.integers(10, 300))
        apex, offset = onset + rise, onset + rise + fall
        extra = 0 if i == ends_row else 2
        if i == ends_row:  # a clip that ends at its apex, like four official rows
            fall, offset = 0, apex
        face = faces[subj]
        frames = _render_clip(rng, spec, face, (0, 0, face.shape[0]), cls, rise, fall, extra)
        folder = root / "Cropped" / f"sub{sub}" / name
        folder.mkdir(parents=True)
        for j, img in enumerate(frames):
            write_jpeg(folder / f"reg_img{onset + j}.jpg", img)
        apex_cell = "/" if i == slash_row else apex
        coding.append(
            (
                sub,
                name,
                None,
                onset,
                apex_cell,
                offset,
                None,
                ACTION_UNITS[cls],
                CASME2_EMOTIONS[cls],
            )
        )
        objective.append((sub, name, cls + 1))
    book = openpyxl.Workbook()
    ws = book.active
    ws.title = "Sheet1"
    ws.append(
        (
            "Subject",
            "Filename",
            None,
            "OnsetFrame",
            "ApexFrame",
            "OffsetFrame",
            None,
            "Action Units",
            "Estimated Emotion",
        )
    )
    for r in coding:
        ws.append(r)
    book.create_sheet("Sheet2")
    book.save(root / casme2_lib.CODING)
    book = openpyxl.Workbook()
    ws = book.active
    ws.append(("Subject", "Filename", "Objective Class"))
    for r in objective:
        ws.append(r)
    book.save(root / casme2_lib.OBJECTIVE)


_SAMM_NOTES = (
    ("SAMM Dataset - Master FACS Codes (synthetic stand-in written by merjax)",),
    (),
    ("New updates with Emotional and Objective Classes.",),
    (None, None, None, None, "(Note to the users: synthetic data, not SAMM.)"),
    (),
    ("Symbol Key:",),
    ('"/" = or',),
    ('"?" = some AU\'s continue for a while and have unclear offset',),
    (),
    ("AU Help:",),
    ('"L2 or R2" = Unilateral AU 2 on left side of face / right side of face',),
    ('"A2" = Asymmetric AU 2. Occurs on both sides of face but stronger on one side',),
    (),
)


def _write_samm(root: Path, spec: Spec, rng: np.random.Generator) -> None:
    ids = sorted(rng.choice(np.arange(6, 38), spec.samm_subjects, replace=False).tolist())
    h, w = spec.samm_frame
    canvases = []
    for _ in ids:
        side = int(rng.integers(*spec.samm_face, endpoint=True))
        canvas = np.full((h, w), 40.0, np.float32)
        x0 = int(rng.integers(0, w - side + 1))
        y0 = int(rng.integers(0, h - side + 1))
        canvas[y0 : y0 + side, x0 : x0 + side] = draw_face(rng, side)
        canvases.append((canvas, (x0, y0, side)))
    rows = []
    clip_numbers: dict[int, int] = {}
    for subj, cls in _assign(rng, spec.samm_counts, spec.samm_subjects):
        sid = f"{ids[subj]:03d}"
        k = clip_numbers[subj] = clip_numbers.get(subj, 0) + 1
        name = f"{sid}_{int(rng.integers(1, 8))}_{k}"
        rise, fall = (int(rng.integers(*r, endpoint=True)) for r in (spec.rise, spec.fall))
        onset = int(rng.integers(1000, 9000))
        apex, offset = onset + rise, onset + rise + fall
        canvas, box = canvases[subj]
        frames = _render_clip(rng, spec, canvas, box, cls, rise, fall, 2)
        pad = int(rng.choice([4, 5]))  # SAMM's zero padding varies between clips
        folder = root / "SAMM" / sid / name
        folder.mkdir(parents=True)
        for j, img in enumerate(frames):
            write_jpeg(folder / f"{sid}_{onset + j:0{pad}d}.jpg", img)
        rows.append(
            (
                sid,
                name,
                int(rng.integers(1, 8)),
                onset,
                apex,
                offset,
                None,
                "Micro - 1/2",
                ACTION_UNITS[cls],
                SAMM_EMOTIONS[cls],
                cls + 1,
                None,
            )
        )
    book = openpyxl.Workbook()
    ws = book.active
    ws.title = "MICRO_ONLY"
    for r in _SAMM_NOTES:
        ws.append(r)
    ws.append(
        (
            "Subject",
            "Filename",
            "Inducement Code",
            "Onset Frame",
            "Apex Frame",
            "Offset Frame",
            "Duration",
            "Micro",
            "Action Units",
            "Estimated Emotion",
            "Objective Classes",
            "Notes",
        )
    )
    for r in rows:
        n = ws.max_row + 1
        ws.append(r[:6] + (f"=SUM(F{n}-D{n})+1",) + r[7:])
    book.save(root / samm_lib.CODES)


FOLDERS = {"casme2": "CASME2", "samm": "SAMM", "smic": "SMIC", "casme3": "CASME3"}
"""Each database's folder in a synthetic database."""

# The objective-class motions a SMIC emotion shows: negative clips draw one of III-V.
_SMIC_MOTIONS = {0: (2, 3, 4), 1: (0,), 2: (1,)}


def _write_smic(root: Path, spec: Spec, rng: np.random.Generator) -> None:
    """SMIC-HS as distributed: ``HS/sN/micro/<emotion>/sN_<ne|po|sur>_KK/imageFFFFFFF.bmp`` whole
    frames, and ``SMIC-HS-E_annotation.xlsx`` (sheet HS: OffsetF and other cells as formulas)."""
    from merjax.data import smic as smic_lib

    h, w = spec.smic_frame
    canvases = []
    for _ in range(spec.smic_subjects):
        side = int(rng.integers(*spec.smic_face, endpoint=True))
        canvas = np.full((h, w), 40.0, np.float32)
        x0, y0 = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
        canvas[y0 : y0 + side, x0 : x0 + side] = draw_face(rng, side)
        canvases.append((canvas, (x0, y0, side)))
    ids = sorted(rng.choice(np.arange(1, 21), spec.smic_subjects, replace=False).tolist())
    labels = [e for e, n in enumerate(spec.smic_counts) for _ in range(n)]
    rng.shuffle(labels)
    subjects = [i % spec.smic_subjects for i in range(len(labels))]  # every subject has clips
    rows, clip_numbers = [], {}
    for subj, emotion in sorted(zip(subjects, labels, strict=True)):
        sid = ids[subj]
        code = {0: "ne", 1: "po", 2: "sur"}[emotion]
        k = clip_numbers[(sid, code)] = clip_numbers.get((sid, code), 0) + 1
        name = f"s{sid}_{code}_{k:02d}"
        rise, fall = (int(rng.integers(*r, endpoint=True)) for r in (spec.rise, spec.fall))
        onset = int(rng.integers(1_000_000, 9_000_000))
        canvas, box = canvases[subj]
        cls = int(rng.choice(_SMIC_MOTIONS[emotion]))
        frames = _render_clip(rng, spec, canvas, box, cls, rise, fall, 2)
        folder = root / "HS" / f"s{sid}" / "micro" / emotions.MEGC2019_CLASSES[emotion] / name
        folder.mkdir(parents=True)
        for j, img in enumerate(frames):
            if not cv2.imwrite(str(folder / f"image{onset + j:07d}.bmp"), img):
                raise OSError(f"cannot write {folder}")
        rows.append((sid, name, onset, rise + fall + 1, emotions.MEGC2019_CLASSES[emotion]))
    book = openpyxl.Workbook()
    ws = book.active
    ws.title = "HS"
    ws.append(
        (
            "Subject",
            "Filename",
            None,
            "OnsetF",
            "OffsetF",
            "Onset2F",
            "Offset2F",
            "Onset3F",
            "Offset3F",
            None,
            "FirstF",
            "LastF",
            "TotalMF1",
            "TotalMF2",
            "TotalMF3",
            "TotalVL",
            "Emotion",
        )
    )
    for sid, name, onset, total, emotion in rows:
        n = ws.max_row + 1
        ws.append(
            (
                sid,
                name,
                None,
                onset,
                f"=D{n}+M{n}-1",
                None,
                None,
                None,
                None,
                None,
                f"=D{n}-100*(VIS!D{n}-VIS!I{n})/25",
                f"=K{n}+100*(VIS!L{n})/25-1",
                total,
                None,
                None,
                f"=L{n}-K{n}+1",
                emotion,
            )
        )
    book.create_sheet("VIS")
    book.save(root / smic_lib.ANNOTATION)


# CAS(ME)^3's emotions shown by the objective-class motions (fear: the one-corner motion).
_CASME3_MOTIONS = {
    "anger": 2,
    "disgust": 3,
    "fear": 5,
    "happy": 0,
    "others": 6,
    "sad": 4,
    "surprise": 1,
}


def _write_casme3(root: Path, spec: Spec, rng: np.random.Generator) -> None:
    """CAS(ME)^3 Part A as distributed: ``part_A/data/part_A_split/part_A/spNO.N/<video>/color/
    <frame>.jpg`` colour whole frames at 30 fps, the label file (sheet ``label``, frame numbers
    as text) with the official file's quirks -- ``Others`` beside ``others``, a video ``J``
    whose folder is ``j``, an apex before its onset, an offset before its onset, an offset of 0,
    a "micro"-expression of several seconds, a dropped apex+1 frame -- and the authors'
    ``exception/`` lists (a damaged frame a sample needs, a bad-quality one)."""
    from merjax.data import casme3 as casme3_lib

    h, w = spec.casme3_frame
    ids = sorted(rng.choice(np.arange(1, 218), spec.casme3_subjects, replace=False).tolist())
    canvases = []
    for _ in ids:
        side = int(rng.integers(*spec.casme3_face, endpoint=True))
        canvas = np.full((h, w), 40.0, np.float32)
        x0, y0 = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
        canvas[y0 : y0 + side, x0 : x0 + side] = draw_face(rng, side)
        canvases.append((canvas, (x0, y0, side)))
    emotions = [
        e for e, n in zip(casme3_lib.EMOTIONS, spec.casme3_counts, strict=True) for _ in range(n)
    ]
    rng.shuffle(emotions)
    frames_root = root / casme3_lib.FRAMES
    rows, used_videos, damaged, bad = [], set(), "", ""
    tint = np.array([1.0, 0.97, 1.05], np.float32)  # colour frames of a grey face
    for i, emotion in enumerate(emotions):
        subj = i % len(ids)
        sid = f"spNO.{ids[subj]}"
        video = next(v for v in "abcdefghijklm" if (sid, v) not in used_videos)
        used_videos.add((sid, video))
        rise, fall = int(rng.integers(1, 4)), int(rng.integers(2, 6))
        onset = int(rng.integers(10, 2000))
        apex, offset = onset + rise, onset + rise + fall
        canvas, box = canvases[subj]
        clip = _render_clip(rng, spec, canvas, box, _CASME3_MOTIONS[emotion], rise, fall, 2)
        folder_video, label_video, label_emotion = video, video, emotion
        quirk = i % 97 if len(emotions) > 97 else i
        if quirk == 1:
            folder_video, label_video = video, video.upper()  # a 'J' whose folder is 'j'
        if quirk == 2:
            label_emotion = "Others" if emotion == "others" else emotion.capitalize()
        folder = frames_root / sid / folder_video / "color"
        folder.mkdir(parents=True)
        for j, img in enumerate(clip):
            if quirk == 3 and onset + j == apex + 1:
                continue  # a frame the recording dropped
            bgr = np.clip(img[..., None] * tint, 0, 255).astype(np.uint8)
            write_jpeg(folder / f"{onset + j}.jpg", bgr)
        cells = [onset, apex, offset]
        if quirk == 4:
            cells[1] = onset - 5  # an apex before its onset
        if quirk == 5:
            cells[2] = onset + 120  # a "micro"-expression of 4 s
        if quirk == 6:
            cells[0] = offset + 40  # an offset before its onset
        if quirk == 7:
            cells[2] = 0  # no offset
        rows.append((sid, label_video, *map(str, cells), "4", "III", label_emotion))
        if quirk == 8:
            damaged += f"{sid} {video.upper()} {apex}.jpg  the image cannot open\n"
        if quirk == 9:
            bad += f"/date/databases/casme3/RGB/{sid}/{video}/color/{onset}.jpg\n"
    book = openpyxl.Workbook()
    ws = book.active
    ws.title = casme3_lib.SHEET
    ws.append(
        ("Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Objective class", "emotion")
    )
    for r in rows:
        ws.append(r)
    book.create_sheet("Sheet1")
    book.create_sheet("Sheet3")
    book.save(root / casme3_lib.LABEL_FILE)
    exception = root / "exception"
    exception.mkdir()
    (exception / casme3_lib.DAMAGED).write_text(damaged)
    (exception / casme3_lib.BAD_QUALITY).write_text(bad)


def write(out: str | Path, *, size: str = "full", seed: int = 0) -> dict[str, Path]:
    """Writes the database under ``out``; returns ``{database: root}`` (:data:`FOLDERS`).

    Deterministic: the same ``size`` and ``seed`` give the same files. ``out`` must not exist
    or be empty.
    """
    if size not in SPECS:
        raise ValueError(f"size must be one of {sorted(SPECS)}, got {size!r}")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{str(out)!r} exists and is not an empty folder")
    spec = SPECS[size]
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    roots = {name: tmp / folder for name, folder in FOLDERS.items()}
    streams = {
        "casme2": [seed, 6],
        "samm": [seed, 4],
        "smic": [seed, 104],
        "casme3": [seed, 3],
    }  # CASME II, SAMM: as in v1
    writers = {
        "casme2": _write_casme2,
        "samm": _write_samm,
        "smic": _write_smic,
        "casme3": _write_casme3,
    }
    for name, writer in writers.items():
        roots[name].mkdir(parents=True)
        writer(roots[name], spec, np.random.default_rng(streams[name]))
        log.debug("wrote synthetic %s to %s", name, roots[name])
    (tmp / "synthetic.json").write_text(json.dumps(_stamp(size, seed), indent=1))
    if out.exists():
        out.rmdir()
    tmp.rename(out)  # all or nothing: a killed run leaves only the .partial folder
    return {name: out / root.name for name, root in roots.items()}


def _stamp(size: str, seed: int) -> dict:
    spec = dataclasses.asdict(SPECS[size])
    digest = hashlib.sha256(json.dumps([spec, seed, _VERSION], sort_keys=True).encode()).hexdigest()
    return {"size": size, "seed": seed, "version": _VERSION, "spec": spec, "digest": digest[:16]}


def ensure(cache_dir: str | Path, *, size: str = "full", seed: int = 0) -> dict[str, Path]:
    """The database for ``(size, seed)`` under ``cache_dir``, written on first use."""
    out = Path(cache_dir) / f"synthetic-{size}-seed{seed}-v{_VERSION}"
    stamp = out / "synthetic.json"
    if not (
        stamp.is_file()
        and json.loads(stamp.read_text()) == json.loads(json.dumps(_stamp(size, seed)))
    ):
        if out.exists():
            shutil.rmtree(out)
        log.info("writing the synthetic database (%s, seed %d) to %s", size, seed, out)
        write(out, size=size, seed=seed)
    return {name: out / folder for name, folder in FOLDERS.items()}


def baseline(roots: dict[str, Path], cache_dir: Path, *, kind: str = "vxvy") -> dict[str, float]:
    """Learnability check: LOSO nearest-class-mean on the onset->apex flow against the
    majority class, on the MEGC 2018-style composite of a synthetic database."""
    from merjax import baselines, flow
    from merjax.data import cache, composite
    from merjax.flow import FlowSettings

    samples = composite.megc2018(roots["casme2"], roots["samm"])
    flows, _ = cache.load_or_compute(samples, FlowSettings(), cache_dir, "synthetic")
    x = np.asarray(flow.representation(flows.apex, kind))
    y = np.array([s.label for s in samples])
    subjects = np.array([s.subject for s in samples])
    pred = baselines.nearest_class_mean_loso(x, y, subjects, 5)
    return {
        "samples": len(samples),
        "subjects": len(set(subjects.tolist())),
        "nearest_class_mean": float((pred == y).mean()),
        "majority": float((y == np.bincount(y).argmax()).mean()),
    }


def _main(argv=None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder to write (must not exist or be empty)")
    parser.add_argument("--size", default="full", choices=sorted(SPECS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="then report LOSO nearest-class-mean accuracy against the majority",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        roots = write(args.out, size=args.size, seed=args.seed)
    except (FileExistsError, ValueError) as e:
        parser.exit(2, f"error: {e}\n")
    for name, root in roots.items():
        print(f"{name}: {root}")
    if args.baseline:
        result = baseline(roots, Path(args.out) / "cache")
        print(json.dumps(result, indent=1))


if __name__ == "__main__":
    _main()

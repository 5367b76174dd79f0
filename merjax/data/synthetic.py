"""A synthetic micro-expression database in the CASME II, SAMM, SMIC-HS and CAS(ME)^3 Part A
layouts.

The embedded default of ``merjax.main`` and the tests' data. It is written to disk with the
official spreadsheet formats and folder layouts (including their quirks: CASME II's blank
columns and '/' apex, a clip that ends at its apex, SAMM's 13 note rows, Duration formulas and
inconsistent zero padding, CAS(ME)^3's label-file quirks and exception lists), so the real
loaders read it. The faces and motions are drawn by :mod:`merjax.data.render`; this module
decides what each layout holds and writes it.

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
motions (negative: III-V, positive: I, surprise: II); CAS(ME)^3-style clips are colour whole
frames at 30 fps (``part_A/data/part_A_split/part_A/spNO.N/<video>/color/F.jpg``), each of its
seven emotions shown by one class's motion.

    python -m merjax.data.synthetic --out /tmp/synth            # composite-like
    python -m merjax.data.synthetic --out /tmp/synth --size=tiny --baseline
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from pathlib import Path

import cv2
import numpy as np
import openpyxl

from merjax import files
from merjax.data import casme2 as casme2_lib
from merjax.data import emotions, render
from merjax.data import samm as samm_lib

log = logging.getLogger(__name__)

# Bump when the generator's output changes (2: SMIC-HS beside CASME II and SAMM; 3: CAS(ME)^3).
_VERSION = 3

CASME2_EMOTIONS = ("happiness", "surprise", "disgust", "disgust", "repression", "fear", "others")
SAMM_EMOTIONS = ("Happiness", "Surprise", "Anger", "Disgust", "Sadness", "Contempt", "Other")
ACTION_UNITS = ("6+12", "1+2+5", "4+7", "9+10", "15+17", "R14", "24")


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


def _motion(spec: Spec) -> dict:
    """What :func:`merjax.data.render.render_clip` draws of a spec."""
    return dict(amplitude=spec.amplitude, noise=spec.noise, nuisance=spec.nuisance)


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


# --------------------------------------------------------------------------- writers


def _write_casme2(root: Path, spec: Spec, rng: np.random.Generator) -> None:
    faces = [
        render.draw_face(rng, int(rng.integers(*spec.casme2_face, endpoint=True)))
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
        frames = render.render_clip(
            rng, face, (0, 0, face.shape[0]), cls, rise, fall, extra, **_motion(spec)
        )
        folder = root / "Cropped" / f"sub{sub}" / name
        folder.mkdir(parents=True)
        for j, img in enumerate(frames):
            render.write_jpeg(folder / f"reg_img{onset + j}.jpg", img)
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
    canvases = [render.face_canvas(rng, spec.samm_frame, spec.samm_face) for _ in ids]
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
        frames = render.render_clip(rng, canvas, box, cls, rise, fall, 2, **_motion(spec))
        pad = int(rng.choice([4, 5]))  # SAMM's zero padding varies between clips
        folder = root / "SAMM" / sid / name
        folder.mkdir(parents=True)
        for j, img in enumerate(frames):
            render.write_jpeg(folder / f"{sid}_{onset + j:0{pad}d}.jpg", img)
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


def _write_smic(root: Path, spec: Spec, rng: np.random.Generator) -> None:
    """SMIC-HS as distributed: ``HS/sN/micro/<emotion>/sN_<ne|po|sur>_KK/imageFFFFFFF.bmp`` whole
    frames, and ``SMIC-HS-E_annotation.xlsx`` (sheet HS: OffsetF and other cells as formulas)."""
    from merjax.data import smic as smic_lib

    canvases = [
        render.face_canvas(rng, spec.smic_frame, spec.smic_face) for _ in range(spec.smic_subjects)
    ]
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
        cls = int(rng.choice(render.MEGC2019_MOTIONS[emotions.MEGC2019_CLASSES[emotion]]))
        frames = render.render_clip(rng, canvas, box, cls, rise, fall, 2, **_motion(spec))
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

    ids = sorted(rng.choice(np.arange(1, 218), spec.casme3_subjects, replace=False).tolist())
    canvases = [render.face_canvas(rng, spec.casme3_frame, spec.casme3_face) for _ in ids]
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
        clip = render.render_clip(
            rng, canvas, box, _CASME3_MOTIONS[emotion], rise, fall, 2, **_motion(spec)
        )
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
            render.write_jpeg(folder / f"{onset + j}.jpg", bgr)
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
    out = files.new_dir(out, _writer(size, seed), stamp=_stamp(size, seed), stamp_file=STAMP)
    return {name: out / folder for name, folder in FOLDERS.items()}


STAMP = "synthetic.json"  # what a database was written as: size, seed, version, spec


def _writer(size: str, seed: int):
    """Writes the four layouts of ``(size, seed)`` into a folder. Deterministic."""
    spec = SPECS[size]

    def write_into(folder: Path) -> None:
        t0 = time.perf_counter()
        for k, (name, writer) in enumerate(writers.items(), start=1):
            root = folder / FOLDERS[name]
            root.mkdir(parents=True)
            writer(root, spec, np.random.default_rng(streams[name]))
            # one line per database: writing the full set takes tens of seconds (SMIC's BMPs)
            log.info(
                "wrote synthetic %s (%d/%d databases), %.0f s",
                FOLDERS[name],
                k,
                len(writers),
                time.perf_counter() - t0,
            )

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
    return write_into


def _stamp(size: str, seed: int) -> dict:
    spec = dataclasses.asdict(SPECS[size])
    digest = hashlib.sha256(json.dumps([spec, seed, _VERSION], sort_keys=True).encode()).hexdigest()
    return {"size": size, "seed": seed, "version": _VERSION, "spec": spec, "digest": digest[:16]}


def ensure(cache_dir: str | Path, *, size: str = "full", seed: int = 0) -> dict[str, Path]:
    """The database for ``(size, seed)`` under ``cache_dir``, written on first use (once, by
    the first of several runs that start together: :func:`merjax.files.written_once`)."""
    if size not in SPECS:
        raise ValueError(f"size must be one of {sorted(SPECS)}, got {size!r}")
    out = Path(cache_dir) / f"synthetic-{size}-seed{seed}-v{_VERSION}"
    stamp = _stamp(size, seed)
    if not (out / STAMP).is_file():
        log.info("writing the synthetic database (%s, seed %d) to %s", size, seed, out)
    files.written_once(out, _writer(size, seed), stamp=stamp, stamp_file=STAMP, progress=log.info)
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

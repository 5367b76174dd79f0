"""CAS(ME)^3 Part A (Li et al., TPAMI 2022) as distributed: a label file and folders of frames.

Expected under ``root`` (the label file up to two folders deep):

* ``cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx`` -- sheet ``label``: Subject (``spNO.N``),
  Filename (the stimulus video, a-m), Onset, Apex, Offset (frame numbers written as text), AU,
  Objective class, emotion; 860 micro-expressions;
* frames ``part_A/data/part_A_split/part_A/spNO.N/<video>/color/<frame>.jpg`` (30 fps colour,
  whole frames: the face is found and aligned by :mod:`merjax.faces`);
* optionally the authors' ``exception/`` files (anywhere below ``root``):
  ``error_info_damaged_image_partA.txt`` (frames that cannot be opened),
  ``image_with_bad_quality_partA.txt`` and ``casme3_partA_error_list_ZhouJu.xlsx`` (a user's
  list of samples whose apex face is covered).

The official file's quirks, each handled and said (``Sample.note``, or a listed skip):

* frame numbers written as text are read as numbers;
* ``Others`` beside ``others``: emotions are lower-cased;
* a video ``J`` whose folder is ``j``: video folders match without case;
* an apex outside onset..offset (spNO.149, video d: apex 83 before onset 112): the
  onset-offset midpoint, noted;
* an offset before the onset (spNO.216 d) or an offset of 0 (two spNO.40 e rows): no policy
  recovers the interval, so the row is a listed skip in either ``on_error`` mode
  (:class:`~merjax.data.spreadsheets.KnownError`);
* "micro"-expressions far longer than 0.5 s (up to 3,456 frames): kept as labelled, noted;
* dropped frames: a missing onset or apex frame is a skip (an error in raise mode); a missing
  apex+1 is replaced by the next frame the folder holds, noted;
* a frame the authors list as damaged is a listed skip when the sample needs it; bad-quality
  frames and the ZhouJu list are noted.

Labels: the 7 emotions, or 4 classes (negative = anger, disgust, fear, sad; positive = happy;
surprise; others) or 3 (negative, positive, surprise; ``others`` left out), as the literature
uses them (:data:`CLASS_SETS`).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import NamedTuple

from merjax.data import emotions
from merjax.data import frames as frames_lib
from merjax.data.sample import Sample, SampleList
from merjax.data.spreadsheets import KnownError, as_int, as_name, as_str, find_file, read_table
from merjax.errors import DataError

LABEL_FILE = "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx"
SHEET = "label"
HEADER = ("Subject", "Filename", "Onset", "Apex", "Offset", "emotion")
FRAMES = Path("part_A") / "data" / "part_A_split" / "part_A"
DAMAGED = "error_info_damaged_image_partA.txt"
BAD_QUALITY = "image_with_bad_quality_partA.txt"
ZHOUJU = "casme3_partA_error_list_ZhouJu.xlsx"
FPS = 30
MICRO_MAX_S = 0.5  # what the field calls a micro-expression: at most half a second

EMOTIONS = ("anger", "disgust", "fear", "happy", "others", "sad", "surprise")
CLASS_SETS: dict[int, dict[str, str]] = {
    7: {e: e for e in EMOTIONS},
    4: emotions.megc2019("casme3") | {"others": "others"},
    3: emotions.megc2019("casme3"),
}
"""Per class set, each emotion's class (emotions not in the set are left out)."""
CLASS_NAMES: dict[int, tuple[str, ...]] = {
    7: EMOTIONS,
    4: ("negative", "positive", "surprise", "others"),
    3: emotions.MEGC2019_CLASSES,
}


def find_frames_root(root: Path) -> Path:
    """The folder holding the ``spNO.N`` subject folders: the distributed
    ``part_A/data/part_A_split/part_A`` below ``root`` (or below a folder of it), else the one
    folder up to four levels down that holds them."""
    for base in (root, *sorted(p for p in root.iterdir() if p.is_dir())):
        if (base / FRAMES).is_dir():
            return base / FRAMES
    found = sorted(
        {p.parent for depth in range(5) for p in root.glob("*/" * depth + "spNO.*") if p.is_dir()}
    )
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise DataError(
            f"CAS(ME)^3: subject folders (spNO.N) in two places, {str(found[0])!r} and "
            f"{str(found[1])!r}; keep one copy below {str(root)!r}"
        )
    raise DataError(
        f"CAS(ME)^3: no frames in {str(root)!r}: expected {str(FRAMES / 'spNO.1' / 'a' / 'color')}"
        " below it, as the database is distributed"
    )


def _exceptions(root: Path) -> tuple[set[tuple[str, str, int]], set[tuple[str, str, int]], dict]:
    """The authors' lists: damaged frames, bad-quality frames (both as (subject, video, frame))
    and the ZhouJu list ({(subject, video, onset): problem}); empty where a file is absent."""

    def one(name: str) -> Path | None:
        hits = sorted(root.glob(name)) + sorted(root.glob(f"**/{name}"))
        return hits[0] if hits else None

    def frames(path: Path | None, pattern: str) -> set[tuple[str, str, int]]:
        """(subject, video, frame) of each line of ``path`` that ``pattern`` finds."""
        if path is None:
            return set()
        lines = path.read_text(errors="replace").splitlines()
        found = (re.search(pattern, line) for line in lines)
        return {(m.group(1), m.group(2).lower(), int(m.group(3))) for m in found if m}

    # "spNO.3 J 498.jpg  the image cannot open"; ".../spNO.138/a/color/1294.jpg"
    damaged = frames(one(DAMAGED), r"^\s*(spNO\.\d+)\s+(\w)\s+(\d+)\.\w+")
    bad = frames(one(BAD_QUALITY), r"(spNO\.\d+)/(\w)/color/(\d+)\.\w+")
    zhouju: dict[tuple[str, str, int], str] = {}
    path = one(ZHOUJU)
    if path:
        for _, r in read_table(path, ("Subject", "Filename", "Onset")):
            try:
                key = (as_str(r["Subject"]), as_str(r["Filename"]).lower(), int(r["Onset"]))
            except (TypeError, ValueError):
                continue
            zhouju[key] = f"listed in {ZHOUJU} (a covered face at the apex)"
    return damaged, bad, zhouju


class Row(NamedTuple):
    """One row of the label file, as written (frame numbers read as numbers, the emotion
    lower-cased)."""

    where: str  # "<file> row N"
    subject: str
    video: str
    onset: int
    apex: int
    offset: int
    emotion: str


def read_labels(path: str | Path) -> list[Row]:
    """The rows of the label file (sheet ``label``); a row whose cells are not frame numbers is
    a DataError naming it."""
    path = Path(path)
    rows = []
    for row, r in read_table(path, HEADER, sheet=SHEET):
        where = f"{path.name} row {row}"
        rows.append(
            Row(
                where,
                as_name(r["Subject"], where=where, column="Subject"),
                as_name(r["Filename"], where=where, column="Filename"),
                as_int(r["Onset"], where=where, column="Onset"),
                as_int(r["Apex"], where=where, column="Apex"),
                as_int(r["Offset"], where=where, column="Offset"),
                as_str(r["emotion"]).lower(),
            )
        )
    return rows


def load(
    root: str | Path,
    *,
    classes: int = 7,
    on_error: str = "raise",
    check: bool = True,
    bit_depth: int | None = None,
) -> SampleList:
    """Every labelled micro-expression of Part A in the class set ``classes`` (7, 4 or 3);
    ``label`` indexes :data:`CLASS_NAMES` [classes]. ``on_error``, ``check`` and ``bit_depth``
    as for the other loaders."""
    if classes not in CLASS_SETS:
        raise ValueError(f"classes must be one of {sorted(CLASS_SETS)}, got {classes!r}")
    root = Path(root)
    path = find_file(root, LABEL_FILE, what="CAS(ME)^3")
    frames_root = find_frames_root(root)
    exceptions = _exceptions(root)
    items = (
        (row.where, row.video, functools.partial(_sample, row, frames_root, exceptions, bit_depth))
        for row in read_labels(path)
    )
    every = frames_lib.gather(
        items, on_error=on_error, decode=check, dataset="casme3", spreadsheet=str(path)
    )
    mapping, names = CLASS_SETS[classes], CLASS_NAMES[classes]

    def labelled(s: Sample) -> Sample:
        name = mapping[s.emotion]
        return frames_lib.replace(s, label=names.index(name), class_name=name)

    return SampleList(
        [labelled(s) for s in every if s.emotion in mapping], every.skipped, every.rows
    )


def _sample(row: Row, frames_root: Path, exceptions, bit_depth) -> Sample:
    damaged, bad, zhouju = exceptions
    where, subject, video, onset, apex, offset, emotion = row
    notes = []
    if emotion not in EMOTIONS:
        raise DataError(f"{where}: emotion {emotion!r} is not one of {EMOTIONS}")
    if offset == 0:
        raise KnownError(f"{where}: offset 0 (the official file gives no offset for this row)")
    if offset < onset:
        raise KnownError(
            f"{where}: offset {offset} before onset {onset} (an error of the official file; no "
            "policy recovers the interval)"
        )
    if not onset <= apex <= offset:
        mid = (onset + offset) // 2
        notes.append(
            f"apex {apex} outside onset {onset}..offset {offset}: set to the midpoint {mid}"
        )
        apex = mid
    span = offset - onset + 1
    if span > MICRO_MAX_S * FPS:
        notes.append(
            f"onset..offset spans {span} frames ({span / FPS:.1f} s at {FPS} fps), longer than a "
            f"micro-expression ({MICRO_MAX_S} s); kept as labelled"
        )
    subject_folder = frames_root / subject
    videos = (
        {p.name.lower(): p for p in subject_folder.iterdir() if p.is_dir()}
        if subject_folder.is_dir()
        else {}
    )
    if video.lower() not in videos:
        raise DataError(
            f"{where}: clip folder {str(subject_folder / video / 'color')!r} does not exist"
        )
    if videos[video.lower()].name != video:
        notes.append(f"video {video!r} is the folder {videos[video.lower()].name!r}")
    folder = frames_lib.clip_folder([videos[video.lower()] / "color"], where)
    key = (subject, video.lower())
    sample = Sample(
        dataset="casme3",
        subject=f"casme3/{subject}",
        clip=f"{subject}/{video}/{onset}",
        onset=onset,
        apex=apex,
        offset=offset,
        label=EMOTIONS.index(emotion),
        class_name=emotion,
        emotion=emotion,
        frames=frames_lib.index_frames(folder),
        cropped=False,
        source=where,
        note="; ".join(notes),
        folder=str(folder),
        bit_depth=bit_depth,
    )
    used = {sample.onset, sample.apex, sample.augment_frame}
    hit = sorted(n for n in used if (*key, n) in damaged)
    if hit:
        raise KnownError(f"{where}: frame {hit[0]} is listed as damaged by the authors ({DAMAGED})")
    extra = [
        f"frame {n} listed as of bad quality ({BAD_QUALITY})"
        for n in sorted(used)
        if (*key, n) in bad
    ]
    if (*key, onset) in zhouju:
        extra.append(zhouju[(*key, onset)])
    if extra:
        sample = frames_lib.replace(sample, note="; ".join(x for x in (sample.note, *extra) if x))
    return sample

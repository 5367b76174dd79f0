"""Long videos with their expression intervals: the spotting databases as distributed.

Three layouts, each under the root a ``--<name>_root`` flag names (files up to two folders
deep):

* ``casme3`` -- CAS(ME)^3 Part A (Li et al., TPAMI 2022), 30 fps: ``CAS(ME)3_part_A_v2.xls``
  (old Excel format; a copy re-saved as ``.xlsx`` is read too), sheet ``AU+Emotion`` (Subject,
  Filename = video a-m, Onset, Apex, Offset, AU, Expression type = Macro-/Micro-expression,
  Objective class) and sheet ``eye blink`` (Subject, Filename, Onset, Offset); frames
  ``part_A/data/part_A_split/part_A/spNO.N/<video>/color/<frame>.jpg``, numbered as the
  annotation numbers them. A micro-expression's emotion comes from the recognition label file
  (:mod:`merjax.data.casme3`) when it is there, matched on subject, video and onset.
* ``samm_lv`` -- SAMM Long Videos (Yap et al. 2020), 200 fps: ``SAMM_LongVideos_V*_Release.xlsx``
  (note rows, then Subject, Filename = ``<video>_<n>``, Inducement Code, Onset, Apex, Offset,
  Duration, Type = ``Micro - 1/2`` or ``Macro``, Action Units, Notes); frames
  ``SAMM_longvideos/<video>/<video>_<frame>.jpg``. Emotions, where given, come from SAMM's
  ``SAMM_Micro_FACS_Codes_v2.xlsx`` in the same root, matched on Filename.
* ``casme_sq`` -- CAS(ME)^2 (Qu et al. 2018), 30 fps: ``CAS(ME)^2code_final.xlsx`` with no header
  row (participant number, expression name ``<video name>_<n>``, onset, apex, offset, AU,
  emotion, type = macro-/micro-expression, self-report), its second sheet mapping participant
  numbers to subject folders (``s15``) and its third mapping video codes (``0101``) to video
  names (``disgust1``); frames ``rawpic/s15/15_0101disgustingteeth/img<frame>.jpg``. This
  layout is the one public readers use (MEAN's load_excel.py; the file is not in this project).

Known quirks, handled and noted (``LongVideo.notes``): an offset of 0 (CAS(ME)^2: the apex ends
the interval, as public readers do), an onset of 0 (SAMM-LV: the very long rows, left out as
public readers do; CAS(ME)^3 counts frames from 0, so there it is frame 0), an apex outside
onset..offset or of -1 (the midpoint), a video folder whose case differs (CAS(ME)^3's ``J``),
annotated videos without frames (listed, not loaded).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from pathlib import Path

from merjax.data import casme3 as casme3_lib
from merjax.data import frames as frames_lib
from merjax.data.databases import DatabaseSet
from merjax.data.intervals import Interval
from merjax.data.spreadsheets import NotFound, as_name, as_str, find_file, read_table, sheet_rows
from merjax.errors import DataError

DATABASES = ("casme3", "samm_lv", "casme_sq")
LONG_VIDEOS = DatabaseSet(
    "long videos of CAS(ME)^3, SAMM Long Videos and CAS(ME)^2", DATABASES, at_least=1
)
"""What a spotting experiment reads: the long videos of one or more of the three databases."""
FPS = {"casme3": 30.0, "samm_lv": 200.0, "casme_sq": 30.0}
NAMES = {"casme3": "CAS(ME)^3 Part A", "samm_lv": "SAMM Long Videos", "casme_sq": "CAS(ME)^2"}
CASME3_FILE = "CAS(ME)3_part_A_v2.xls"
CASME3_SHEETS = ("AU+Emotion", "eye blink")
SAMM_LV_FILE = "SAMM_LongVideos_V*_Release.xlsx"
SAMM_LV_HEADER = ("Subject", "Filename", "Onset", "Apex", "Offset", "Type")
CASME_SQ_FILE = "CAS(ME)^2code_final.xlsx"


@dataclasses.dataclass(frozen=True)
class LongVideo:
    """One long video: where its frames are and its ground truth (frame numbers as the files
    number them; ``frames`` maps each number found to its path, in order)."""

    database: str
    subject: str  # database-prefixed: "casme3/spNO.1"
    name: str  # "spNO.1/a"
    folder: str
    fps: float
    frames: tuple[tuple[int, str], ...]
    intervals: tuple[Interval, ...]
    blinks: tuple[tuple[int, int], ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def numbers(self) -> list[int]:
        return [n for n, _ in self.frames]

    def paths(self) -> list[str]:
        return [p for _, p in self.frames]


class VideoList(list):
    """The videos a loader found, and the annotated ones whose frames are not there
    (``missing``: listed, so a partial copy of a database is never mistaken for the whole)."""

    def __init__(self, videos=(), missing=()):
        super().__init__(videos)
        self.missing: list[str] = list(missing)

    def add(self, name: str, video: LongVideo | None) -> None:
        """The annotated video ``name``: found (``video``), or listed as missing (None)."""
        if video is None:
            self.missing.append(name)
        else:
            self.append(video)


def _num(value, where: str, column: str) -> int:
    try:
        f = float(str(value).strip())
    except ValueError:
        raise DataError(f"{where}: {column} is {value!r}, not a frame number") from None
    if not f.is_integer():
        raise DataError(f"{where}: {column} is {value!r}, not a frame number")
    return int(f)


# The spellings of an expression's type in the official files, lower-cased and without spaces:
# "Micro - 1/2" and "Macro" (SAMM-LV), "Micro-expression" and "Macro-expression" (CAS(ME)^3,
# CAS(ME)^2). Anything else (a blank cell, "Mirco - 1/2") is a typo to fix, not a macro.
_KIND = re.compile(r"(micro|macro)(-?expressions?)?(-1/2)?")


def _kind(value, where: str, column: str) -> str:
    m = _KIND.fullmatch("".join(as_str(value).lower().split()))
    if not m:
        raise DataError(
            f"{where}: {column} {as_str(value)!r} is not a micro- or macro-expression (the "
            "official spellings: 'Micro - 1/2', 'Macro', 'Micro-expression', 'Macro-expression')"
        )
    return m.group(1)


def _interval(
    where, onset, apex, offset, kind, emotion, notes, *, onset_zero_ok: bool = True
) -> Interval | None:
    """The ground-truth interval of a row, with the quirks' policies (noted). An onset of 0 is
    frame 0 where frames count from 0 (CAS(ME)^3); SAMM-LV's rows of onset 0 are the very long
    ones public readers leave out (``onset_zero_ok=False``)."""
    if offset == 0 and apex > 0:
        notes.append(f"{where}: offset 0: the apex ({apex}) ends the interval")
        offset = apex
    if onset < 0 or (onset == 0 and not onset_zero_ok):
        notes.append(f"{where}: onset {onset}: left out")
        return None
    if offset < onset:
        notes.append(f"{where}: offset {offset} before onset {onset}: left out")
        return None
    if not onset <= apex <= offset:
        mid = (onset + offset) // 2
        notes.append(f"{where}: apex {apex} outside {onset}..{offset}: the midpoint {mid}")
        apex = mid
    return Interval(onset, offset, kind, apex, emotion)


def _video(
    database, subject, name, folder: Path, intervals, blinks, notes, where
) -> LongVideo | None:
    if not folder.is_dir():
        return None
    frames = frames_lib.index_frames(folder)
    if not frames:
        raise DataError(f"{where}: video folder {str(folder)!r} holds no frames")
    if len(frames) < 2:
        raise DataError(f"{where}: video folder {str(folder)!r} holds one frame: not a video")
    notes = list(notes) + _gaps(frames, where)
    intervals = _in_video(intervals, frames[0][0], frames[-1][0], where, notes)
    return LongVideo(
        database,
        f"{database}/{subject}",
        name,
        str(folder),
        FPS[database],
        frames,
        tuple(sorted(intervals, key=lambda i: (i.onset, i.offset))),
        tuple(sorted(blinks)),
        tuple(notes),
    )


def _gaps(frames, where: str) -> list[str]:
    """A note per gap in the frame numbers (frames missing inside the video): spotting keeps
    each interval inside one run of consecutive frames."""
    numbers = [n for n, _ in frames]
    return [
        f"{where}: frames {a + 1}-{b - 1} are missing; no interval spans the gap"
        for a, b in zip(numbers, numbers[1:], strict=False)
        if b > a + 1
    ]


def _in_video(intervals, first: int, last: int, where: str, notes: list[str]) -> list[Interval]:
    """The ground truth checked against its video: a duplicated interval is counted once, and
    one wholly outside the video's frames ``first..last`` is left out of the counts (a truth no
    spotter can find would add a false negative); both noted."""
    out, seen = [], set()
    for i in intervals:
        key = (i.onset, i.offset, i.kind)
        if key in seen:
            notes.append(f"{where}: {i.kind} {i.onset}-{i.offset} is annotated twice: counted once")
            continue
        seen.add(key)
        if i.offset < first or i.onset > last:
            notes.append(
                f"{where}: {i.kind} {i.onset}-{i.offset} lies outside the video's frames "
                f"{first}-{last}: left out"
            )
            continue
        out.append(i)
    return out


def read_casme3(path: str | Path, emotions: dict | None = None) -> tuple[dict, dict, dict]:
    """CAS(ME)^3's long-video annotation: ``(intervals, blinks, notes)``, each by
    ``(subject, video)`` with the video lower-cased (``J`` is folder ``j``); ``emotions``
    ((subject, video, onset) -> emotion) names the micro-expressions."""
    path = Path(path)
    emotions = emotions or {}
    by_video: dict[tuple[str, str], list] = {}
    notes: dict[tuple[str, str], list[str]] = {}
    header = ("Subject", "Filename", "Onset", "Apex", "Offset", "Expression type")
    for row, r in read_table(path, header, sheet=CASME3_SHEETS[0]):
        where = f"{path.name} row {row}"
        video = as_name(r["Filename"], where=where, column="Filename")
        key = (as_name(r["Subject"], where=where, column="Subject"), video.lower())
        if video != video.lower():
            notes.setdefault(key, []).append(
                f"{where}: video {video!r} is folder {video.lower()!r}"
            )
        onset, apex, offset = (_num(r[c], where, c) for c in ("Onset", "Apex", "Offset"))
        kind = _kind(r["Expression type"], where, "Expression type")
        emotion = emotions.get((*key, onset)) if kind == "micro" else None
        got = _interval(where, onset, apex, offset, kind, emotion, notes.setdefault(key, []))
        if got:
            by_video.setdefault(key, []).append(got)
    blinks: dict[tuple[str, str], list] = {}
    header = ("Subject", "Filename", "Onset", "Offset")
    for row, r in read_table(path, header, sheet=CASME3_SHEETS[1]):
        where = f"{path.name} sheet {CASME3_SHEETS[1]!r} row {row}"
        key = (
            as_name(r["Subject"], where=where, column="Subject"),
            as_name(r["Filename"], where=where, column="Filename").lower(),
        )
        blinks.setdefault(key, []).append(
            (_num(r["Onset"], where, "Onset"), _num(r["Offset"], where, "Offset"))
        )
    return by_video, blinks, notes


def load_casme3(root: str | Path) -> VideoList:
    """Every CAS(ME)^3 Part A video with frames below ``root``, with its micro- and
    macro-expression intervals and blinks."""
    root = Path(root)
    what = "CAS(ME)^3 long videos"
    try:
        path = find_file(root, CASME3_FILE, what=what)
    except NotFound as official:
        try:
            path = find_file(root, CASME3_FILE + "x", what=what)
        except NotFound:
            # Name the file the database ships with, not only the copy also read.
            raise DataError(f"{official} (a copy re-saved as .xlsx is read too)") from None
    frames_root = casme3_lib.find_frames_root(root)
    by_video, blinks, notes = read_casme3(path, _casme3_emotions(root))
    out = VideoList()
    for subject, video in sorted(by_video):
        name = f"{subject}/{video}"
        subject_dir = frames_root / subject
        folders = _by_lower_name(subject_dir, f"{path.name} ({subject} {video})")
        folder = folders.get(video)
        video_found = _video(
            "casme3",
            subject,
            name,
            (folder / "color") if folder else subject_dir / video / "color",
            by_video[(subject, video)],
            blinks.get((subject, video), []),
            notes.get((subject, video), []),
            f"{path.name} ({subject} {video})",
        )
        out.add(name, video_found)
    return out


def _by_lower_name(folder: Path, where: str) -> dict[str, Path]:
    """The sub-folders of ``folder`` by lower-cased name (CAS(ME)^3 writes video ``J`` for
    folder ``j``); two that differ only in case (a copy) are an error naming both."""
    out: dict[str, Path] = {}
    if not folder.is_dir():
        return out
    for p in sorted(folder.iterdir()):
        if not p.is_dir():
            continue
        if p.name.lower() in out:
            raise DataError(
                f"{where}: the video is in two folders, {str(out[p.name.lower()])!r} and "
                f"{str(p)!r}; keep one (move the other copy out of the database's root)"
            )
        out[p.name.lower()] = p
    return out


def _casme3_emotions(root: Path) -> dict[tuple[str, str, int], str]:
    """(subject, video, onset) -> emotion, from the recognition label file if it is there."""
    try:
        path = find_file(root, casme3_lib.LABEL_FILE, what="CAS(ME)^3")
    except DataError:
        return {}
    return {(r.subject, r.video.lower(), r.onset): r.emotion for r in casme3_lib.read_labels(path)}


def load_samm_lv(root: str | Path) -> VideoList:
    """Every SAMM Long Videos video with frames below ``root``, with its intervals."""
    root = Path(root)
    path = find_file(root, SAMM_LV_FILE, what="SAMM Long Videos", max_depth=1)
    emotions = _samm_emotions(root)
    by_video: dict[str, list] = {}
    notes: dict[str, list[str]] = {}
    for row, r in read_table(path, SAMM_LV_HEADER):
        where = f"{path.name} row {row}"
        filename = as_str(r["Filename"])
        m = re.match(r"(\d+_\d+)_\d+$", filename)
        if not m:
            raise DataError(f"{where}: Filename {filename!r} is not <subject>_<video>_<n>")
        video = m.group(1)
        onset, apex, offset = (_num(r[c], where, c) for c in ("Onset", "Apex", "Offset"))
        kind = _kind(r["Type"], where, "Type")
        got = _interval(
            where,
            onset,
            apex,
            offset,
            kind,
            emotions.get(filename) if kind == "micro" else None,
            notes.setdefault(video, []),
            onset_zero_ok=False,
        )
        if got:
            by_video.setdefault(video, []).append(got)
    base = next((p for p in (root, *root.iterdir()) if (p / "SAMM_longvideos").is_dir()), root)
    out = VideoList()
    for video in sorted(by_video):
        video_found = _video(
            "samm_lv",
            video.split("_")[0],
            video,
            base / "SAMM_longvideos" / video,
            by_video[video],
            [],
            notes.get(video, []),
            f"{path.name} ({video})",
        )
        out.add(video, video_found)
    return out


def _samm_emotions(root: Path) -> dict[str, str]:
    """SAMM Filename -> emotion (lower-case), from SAMM's recognition spreadsheet if there."""
    from merjax.data import samm as samm_lib

    try:
        path = find_file(root, samm_lib.CODES, what="SAMM")
    except DataError:
        return {}
    return {
        as_str(r["Filename"]): as_str(r["Estimated Emotion"]).lower()
        for _, r in read_table(path, ("Filename", "Estimated Emotion"))
    }


def load_casme_sq(root: str | Path) -> VideoList:
    """Every CAS(ME)^2 video with frames below ``root``, with its intervals."""
    root = Path(root)
    path = find_file(root, CASME_SQ_FILE, what="CAS(ME)^2")
    rows = sheet_rows(path, 0)
    subjects = {
        int(float(r[2])): as_name(r[1], where=f"{path.name} sheet 2 row {i}", column="subject")
        for i, r in enumerate(sheet_rows(path, 1), start=1)
        if len(r) > 2 and _is_number(r[2])
    }
    codes = {as_str(r[1]): as_str(r[0]).zfill(4) for r in sheet_rows(path, 2) if len(r) > 1}
    by_video: dict[tuple[str, str], list] = {}
    notes: dict[tuple[str, str], list[str]] = {}
    for i, r in enumerate(rows, start=1):
        where = f"{path.name} row {i}"
        if len(r) < 8 or not _is_number(r[0]):
            continue  # a note or header row
        participant = int(float(r[0]))
        if participant not in subjects:
            raise DataError(f"{where}: participant {participant} is not in the naming sheet")
        name = as_str(r[1]).split("_")[0]
        if name not in codes:
            raise DataError(f"{where}: video {name!r} is not in the naming sheet")
        key = (subjects[participant], codes[name])
        onset, apex, offset = (
            _num(r[c], where, n) for c, n in ((2, "onset"), (3, "apex"), (4, "offset"))
        )
        kind = _kind(r[7], where, "type")
        emotion = as_str(r[6]).lower() if kind == "micro" else None
        got = _interval(where, onset, apex, offset, kind, emotion, notes.setdefault(key, []))
        if got:
            by_video.setdefault(key, []).append(got)
    base = next((p for p in (root, *root.iterdir()) if (p / "rawpic").is_dir()), root)
    out = VideoList()
    for subject, code in sorted(by_video):
        name = f"{subject}/{code}"
        subject_dir = base / "rawpic" / subject
        found = (
            [p for p in subject_dir.iterdir() if p.is_dir() and p.name.split("_")[-1][:4] == code]
            if subject_dir.is_dir()
            else []
        )
        if len(found) > 1:
            raise DataError(
                f"{path.name} ({subject} {code}): the video is in {len(found)} folders, "
                f"{', '.join(repr(str(f)) for f in sorted(found))}; keep one (move the other "
                "copies out of the database's root)"
            )
        video_found = _video(
            "casme_sq",
            subject,
            name,
            found[0] if found else subject_dir / code,
            by_video[(subject, code)],
            [],
            notes.get((subject, code), []),
            f"{path.name} ({subject} {code})",
        )
        out.add(name, video_found)
    return out


def _is_number(value) -> bool:
    try:
        float(str(value))
    except ValueError:
        return False
    return value is not None


LOADERS: dict[str, Callable[[str | Path], VideoList]] = {
    "casme3": load_casme3,
    "samm_lv": load_samm_lv,
    "casme_sq": load_casme_sq,
}


def load(name: str, root: str | Path) -> VideoList:
    """The videos of database ``name`` (:data:`LOADERS`) below ``root``; an error when none of
    its annotated videos has frames there."""
    if name not in LOADERS:
        raise ValueError(f"unknown long-video database {name!r}; expected one of {list(LOADERS)}")
    videos = LOADERS[name](root)
    if not videos:
        raise DataError(
            f"{NAMES[name]}: none of the annotated videos has a frame folder below {str(root)!r}"
        )
    return videos

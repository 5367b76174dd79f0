"""SAMM (Davison et al. 2018) as distributed: one spreadsheet and folders of grey frames.

Expected under ``root``: ``SAMM_Micro_FACS_Codes_v2.xlsx`` (13 note rows, then the header
Subject, Filename, Inducement Code, Onset Frame, Apex Frame, Offset Frame, Duration (formulas),
Micro, Action Units, Estimated Emotion, Objective Classes, Notes) and frames
``SUBJ/CLIP/SUBJ_F.jpg`` either directly under ``root`` or under ``root/SAMM/``. The zero padding
of F varies between clips, so frame numbers are parsed from the names. Frames are whole
(~960x650) images: faces are found by :mod:`merjax.faces` unless ``cropped=True`` says the
user's copy is already cropped.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from merjax.data import frames as frames_lib
from merjax.data.sample import OBJECTIVE_CLASSES, Sample, SampleList
from merjax.data.spreadsheets import as_class, as_int, as_name, as_str, find_file, read_table
from merjax.errors import DataError

CODES = "SAMM_Micro_FACS_Codes_v2.xlsx"
HEADER = (
    "Subject",
    "Filename",
    "Onset Frame",
    "Apex Frame",
    "Offset Frame",
    "Estimated Emotion",
    "Objective Classes",
)

log = logging.getLogger(__name__)


def _subject(value) -> str:
    s = as_str(value)
    return s.zfill(3) if s.isdigit() else s


def find_frames_root(root: Path, subjects: list[str]) -> list[Path]:
    """``root``, ``root/SAMM`` or a folder below: every one that holds subject folders (a clip
    found in two of them is ambiguous)."""
    candidates = [root, root / "SAMM", *sorted(root.glob("*/SAMM")), *sorted(root.glob("*/"))]
    found = []
    for c in candidates:
        if c.is_dir() and c.resolve() not in [f.resolve() for f in found]:
            if any((c / s).is_dir() for s in subjects):
                found.append(c)
    if found:
        return found
    raise DataError(
        f"SAMM: no subject folders (e.g. {subjects[0]!r}) in {str(root)!r} or "
        f"{str(root / 'SAMM')!r}"
    )


def load(
    root: str | Path,
    *,
    cropped: bool = False,
    on_error: str = "raise",
    check: bool = True,
    bit_depth: int | None = None,
) -> SampleList:
    """Every SAMM clip of the spreadsheet with its objective class (label = class - 1, 0..6)."""
    root = Path(root)
    codes = find_file(root, CODES, what="SAMM")
    rows = list(read_table(codes, HEADER))
    if not rows:
        raise DataError(f"{str(codes)!r} has a header but no rows")
    frames_roots = find_frames_root(root, [_subject(r["Subject"]) for _, r in rows])
    items = (
        (
            f"{codes.name} row {row}",
            as_str(r["Filename"]),
            functools.partial(
                _sample, r, f"{codes.name} row {row}", frames_roots, cropped, bit_depth
            ),
        )
        for row, r in rows
    )
    return frames_lib.gather(
        items, on_error=on_error, decode=check, dataset="samm", spreadsheet=str(codes)
    )


def _sample(r, where: str, frames_roots: list[Path], cropped: bool, bit_depth) -> Sample:
    clip = as_name(r["Filename"], where=where, column="Filename")
    subject = _subject(as_name(r["Subject"], where=where, column="Subject"))
    onset = as_int(r["Onset Frame"], where=where, column="Onset Frame")
    apex = as_int(r["Apex Frame"], where=where, column="Apex Frame")
    offset = as_int(r["Offset Frame"], where=where, column="Offset Frame")
    objective = as_class(r["Objective Classes"], where=where, column="objective class")
    folder = frames_lib.clip_folder([top / subject / clip for top in frames_roots], where)
    return Sample(
        dataset="samm",
        subject=f"samm/{subject}",
        clip=clip,
        onset=onset,
        apex=apex,
        offset=offset,
        label=objective - 1,
        class_name=OBJECTIVE_CLASSES[objective - 1],
        emotion=as_str(r["Estimated Emotion"]).lower(),
        frames=frames_lib.index_frames(folder),
        cropped=cropped,
        source=where,
        folder=str(folder),
        bit_depth=bit_depth,
    )

"""SMIC-HS (Li et al. 2013) with the SMIC-E annotation, for the MEGC 2019 3-class composite.

Expected under ``root``: ``SMIC-HS-E_annotation.xlsx`` (sheet ``HS``: Subject, Filename,
OnsetF, OffsetF, ..., TotalMF1, ..., Emotion) and one folder per clip named like its Filename
(``s1_ne_01``) anywhere below ``root`` -- e.g. ``HS/s1/micro/negative/s1_ne_01/`` or
``SMIC-HS-E/s01/s1_ne_01/``; frame numbers are parsed from the file names.

SMIC annotates no apex: the apex is the onset-offset midpoint (the MEGC 2019 convention).
``OffsetF`` is a formula in the distributed file (``=OnsetF + TotalMF1 - 1``); it is evaluated
as such. SMIC frames are whole frames (faces found by :mod:`merjax.faces`) unless
``cropped=True``.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from merjax.data import emotions
from merjax.data import frames as frames_lib
from merjax.data.sample import Sample, SampleList
from merjax.data.spreadsheets import as_int, as_name, as_str, find_file, read_table
from merjax.errors import DataError

ANNOTATION = "SMIC-HS-E_annotation.xlsx"
EMOTIONS = emotions.MEGC2019_CLASSES  # SMIC-HS is annotated in MEGC 2019's classes

log = logging.getLogger(__name__)


def _clip_folders(root: Path) -> dict[str, list[Path]]:
    """Every folder below ``root`` whose name looks like a SMIC clip (``s<N>_<emo>_<k>``), by
    name (two folders of one name make that clip ambiguous)."""
    found: dict[str, list[Path]] = {}
    for p in sorted(root.rglob("s*_*_*")):
        if p.is_dir():
            found.setdefault(p.name, []).append(p)
    return found


def load(
    root: str | Path,
    *,
    cropped: bool = False,
    on_error: str = "raise",
    check: bool = True,
    bit_depth: int | None = None,
) -> SampleList:
    """Every SMIC-HS clip of the annotation; label 0/1/2 = negative/positive/surprise."""
    root = Path(root)
    path = find_file(root, ANNOTATION, what="SMIC")
    header = ("Subject", "Filename", "OnsetF", "OffsetF", "TotalMF1", "Emotion")
    folders = _clip_folders(root)
    items = (
        (
            f"{path.name} (HS) row {row}",
            as_str(r["Filename"]),
            functools.partial(
                _sample, r, f"{path.name} (HS) row {row}", root, folders, cropped, bit_depth
            ),
        )
        for row, r in read_table(path, header, sheet="HS")
    )
    return frames_lib.gather(
        items, on_error=on_error, decode=check, dataset="smic", spreadsheet=str(path)
    )


def _sample(
    r, where: str, root: Path, folders: dict[str, list[Path]], cropped: bool, bit_depth
) -> Sample:
    clip = as_name(r["Filename"], where=where, column="Filename")
    onset = as_int(r["OnsetF"], where=where, column="OnsetF")
    offset_cell = r["OffsetF"]
    if isinstance(offset_cell, str) and offset_cell.startswith("="):
        offset = onset + as_int(r["TotalMF1"], where=where, column="TotalMF1") - 1
    else:
        offset = as_int(offset_cell, where=where, column="OffsetF")
    emotion = as_str(r["Emotion"]).lower()
    if emotion not in EMOTIONS:
        raise DataError(f"{where}: emotion {emotion!r} is not one of {EMOTIONS}")
    if clip not in folders:
        raise DataError(f"{where}: no folder named {clip!r} below {str(root)!r}")
    folder = frames_lib.clip_folder(folders[clip], where)
    subject = as_str(r["Subject"])
    return Sample(
        dataset="smic",
        subject=f"smic/s{int(subject):02d}" if subject.isdigit() else f"smic/{subject}",
        clip=clip,
        onset=onset,
        apex=(onset + offset) // 2,  # SMIC's convention, so no note
        offset=offset,
        label=EMOTIONS.index(emotion),
        class_name=emotion,
        emotion=emotion,
        frames=frames_lib.index_frames(folder),
        cropped=cropped,
        source=where,
        folder=str(folder),
        bit_depth=bit_depth,
    )

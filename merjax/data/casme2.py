"""CASME II (Yan et al. 2014) as distributed: two spreadsheets and a folder of frames.

Expected under ``root`` (at most two folders deep):

* ``CASME2-coding-20140508.xlsx`` -- Subject, Filename, OnsetFrame, ApexFrame, OffsetFrame,
  Action Units, Estimated Emotion;
* ``CASME2-ObjectiveClasses.xlsx`` -- Subject, Filename, Objective Class (1-7, MEGC 2018);
* frames ``Cropped/subNN/CLIP/reg_imgF.jpg`` (the database's face crops) or
  ``CASME2_RAW_selected/subNN/CLIP/imgF.jpg`` (640x480, cropped here with a face detector).

Missing apex ('/', one row: sub04 EP12_01f) -- ``apex_policy``:

* ``"midpoint"`` (default): ``(onset + offset) // 2``; cheap and reproducible.
* ``"max_flow"``: the frame between onset and offset whose Horn-Schunck flow from the onset
  has the largest mean magnitude (:func:`merjax.data.apex.max_flow_apex`).

Either way the sample's ``note`` says what was done, and run summaries print it.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from merjax.data import frames as frames_lib
from merjax.data.sample import OBJECTIVE_CLASSES, Sample, SampleList
from merjax.data.spreadsheets import as_class, as_int, as_name, as_str, find_file, read_table
from merjax.errors import DataError

CODING = "CASME2-coding-20140508.xlsx"
OBJECTIVE = "CASME2-ObjectiveClasses.xlsx"
FRAME_FOLDERS = {"cropped": "Cropped", "raw": "CASME2_RAW_selected"}
APEX_POLICIES = ("midpoint", "max_flow")

log = logging.getLogger(__name__)


def subject_folder(subject: str) -> str:
    """'01', '1' or 1 -> 'sub01'."""
    s = as_str(subject)
    return f"sub{int(s):02d}" if s.isdigit() else s


def find_frames_root(root: Path, frames: str, *, what: str = "CASME II") -> tuple[list[Path], bool]:
    """The folders holding ``subNN/`` clip folders (every copy up to two folders below ``root``:
    a clip found in two of them is ambiguous) and whether they hold face crops."""
    if frames not in ("auto", "cropped", "raw"):
        raise ValueError(f"frames must be 'auto', 'cropped' or 'raw', got {frames!r}")
    kinds = ["cropped", "raw"] if frames == "auto" else [frames]
    for kind in kinds:
        name = FRAME_FOLDERS[kind]
        hits = [
            p
            for pattern in (name, f"*/{name}", f"*/*/{name}")
            for p in sorted(Path(root).glob(pattern))
            if p.is_dir()
        ]
        if hits:
            return hits, kind == "cropped"
    names = " or ".join(repr(FRAME_FOLDERS[k]) for k in kinds)
    raise DataError(f"{what}: no frame folder {names} in {str(root)!r} or two folders below it")


def load(
    root: str | Path,
    *,
    frames: str = "auto",
    apex_policy: str = "midpoint",
    on_error: str = "raise",
    check: bool = True,
    bit_depth: int | None = None,
) -> SampleList:
    """Every annotated CASME II clip with its objective class (label = class - 1, 0..6).

    ``on_error="skip"`` collects bad rows in ``.skipped`` (each is also logged) instead of
    raising; ``check=False`` skips decoding the frames (the folder structure is still read).
    ``bit_depth`` scales 16-bit frames by their real depth (:func:`frames.to_uint8`).
    """
    if apex_policy not in APEX_POLICIES:
        raise ValueError(f"apex_policy must be one of {APEX_POLICIES}, got {apex_policy!r}")
    root = Path(root)
    coding = find_file(root, CODING, what="CASME II")
    objective = find_file(root, OBJECTIVE, what="CASME II")
    frames_roots, cropped = find_frames_root(root, frames)

    classes: dict[tuple[str, str], tuple[int, int]] = {}
    for row, r in read_table(objective, ("Subject", "Filename", "Objective Class")):
        classes[(subject_folder(r["Subject"]), as_str(r["Filename"]))] = (row, r["Objective Class"])

    header = ("Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Estimated Emotion")
    items = (
        (
            f"{coding.name} row {row}",
            as_str(r["Filename"]),
            functools.partial(
                _sample,
                r,
                f"{coding.name} row {row}",
                classes,
                frames_roots,
                cropped,
                apex_policy,
                bit_depth,
            ),
        )
        for row, r in read_table(coding, header)
    )
    return frames_lib.gather(
        items, on_error=on_error, decode=check, dataset="casme2", spreadsheet=str(coding)
    )


def _sample(r, where, classes, frames_roots, cropped, apex_policy, bit_depth) -> Sample:
    subject = subject_folder(as_name(r["Subject"], where=where, column="Subject"))
    clip = as_name(r["Filename"], where=where, column="Filename")
    onset = as_int(r["OnsetFrame"], where=where, column="OnsetFrame")
    offset = as_int(r["OffsetFrame"], where=where, column="OffsetFrame")
    if (subject, clip) not in classes:
        raise DataError(f"{where}: {subject} {clip} is not in {OBJECTIVE}")
    class_row, cell = classes[(subject, clip)]
    objective = as_class(cell, where=f"{OBJECTIVE} row {class_row}", column="objective class")
    folder = frames_lib.clip_folder([top / subject / clip for top in frames_roots], where)
    sample = Sample(
        dataset="casme2",
        subject=f"casme2/{subject}",
        clip=clip,
        onset=onset,
        apex=onset,  # filled in below
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
    apex_cell = r["ApexFrame"]
    if as_str(apex_cell) == "/":
        return fill_missing_apex(sample, apex_policy)
    return frames_lib.replace(sample, apex=as_int(apex_cell, where=where, column="ApexFrame"))


def fill_missing_apex(sample: Sample, policy: str) -> Sample:
    """Applies ``policy`` to a sample whose apex cell is '/'; records it in ``note``."""
    if sample.offset - sample.onset < 2:
        raise DataError(f"{sample.source}: apex is '/' and onset..offset is too short to fill it")
    if policy == "midpoint":
        apex = (sample.onset + sample.offset) // 2
        note = f"apex '/' set to the onset-offset midpoint, frame {apex}"
    else:
        from merjax.data.apex import max_flow_apex  # needs the flow; imported only when used

        apex = max_flow_apex(sample)
        note = f"apex '/' set to frame {apex}, the largest mean flow magnitude from the onset"
    log.debug("%s (%s): %s", sample.source, sample.clip, note)  # also in samples.summary()
    return frames_lib.replace(sample, apex=apex, note=note)

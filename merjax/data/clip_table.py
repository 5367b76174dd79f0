"""Your own clips, in any folder layout: a CSV with one row per clip, checked like the official
spreadsheets are.

    subject,clip,onset,apex,offset,label
    s01,s01/happy_1,12,30,51,happiness
    s01,/data/other/s01_clip2,4,17,33,surprise

``clip`` is the folder holding the clip's frames, relative to the CSV's folder or absolute; frame
numbers are read from the file names (``img046.jpg`` is frame 46), as for the databases.
``label`` is a class name; the classes are the distinct labels, sorted, unless ``classes`` gives
them (and their order). Optional columns: ``cropped`` (1 / true: the frames are face crops
already; default: raw frames, faces found by :mod:`merjax.faces`) and ``dataset`` (a name for
reports and per-dataset scores; default ``csv``). Subjects are prefixed by the dataset, as the
databases' are. From the command line: ``--csv_root=clips.csv --set=composite=csv`` (a folder
holding ``clips.csv`` works too).
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Sequence
from pathlib import Path

from merjax.data import frames as frames_lib
from merjax.data.sample import Sample, SampleList
from merjax.data.spreadsheets import as_int, as_str
from merjax.errors import DataError

NAME = "clips.csv"  # what a folder given as the root holds
COLUMNS = ("subject", "clip", "onset", "apex", "offset", "label")
OPTIONAL = ("cropped", "dataset")
_TRUE, _FALSE = {"1", "true", "yes", "y"}, {"", "0", "false", "no", "n"}


def find(root: str | Path) -> Path:
    """The CSV a root names: the file itself, or ``clips.csv`` in a folder."""
    root = Path(root).expanduser()
    path = root / NAME if root.is_dir() else root
    if not path.is_file():
        where = f"{str(root)!r} holds no {NAME}" if root.is_dir() else f"{str(root)!r} is no file"
        raise DataError(f"--csv_root: {where} (a CSV of {', '.join(COLUMNS)})")
    return path


def load(
    root: str | Path,
    *,
    classes: Sequence[str] | None = None,
    on_error: str = "raise",
    check: bool = True,
    bit_depth: int | None = None,
) -> SampleList:
    """The clips of the CSV ``root`` names (:func:`find`), labelled by the index of their label
    in ``classes`` (default: the distinct labels, sorted). Bad rows are a DataError naming the
    file and row, or with ``on_error="skip"`` skipped and listed, as for the databases."""
    path = find(root)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = [h.strip().lower() for h in (reader.fieldnames or [])]
            rows = [
                (i, {h: (v or "").strip() for h, v in zip(header, r.values(), strict=False)})
                for i, r in enumerate(reader, start=2)
                if any((v or "").strip() for v in r.values() if isinstance(v, str))
            ]
    except UnicodeDecodeError as e:
        raise DataError(f"{str(path)!r} is not a UTF-8 CSV file ({e.reason})") from None
    except csv.Error as e:
        raise DataError(f"{str(path)!r} is not a readable CSV file: {e}") from None
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise DataError(
            f"{str(path)!r}: no column {', '.join(missing)} in its header {header}; the header "
            f"must name {', '.join(COLUMNS)} (and may add {', '.join(OPTIONAL)})"
        )
    if not rows:
        raise DataError(f"{str(path)!r} has a header but no rows")
    labels = sorted({r["label"] for _, r in rows if r["label"]})
    given = classes
    classes = tuple(classes) if classes is not None else tuple(labels)
    items = (
        (
            f"{path.name} row {i}",
            r["clip"],
            functools.partial(_sample, r, f"{path.name} row {i}", path.parent, classes, bit_depth),
        )
        for i, r in rows
    )
    samples = frames_lib.gather(
        items, on_error=on_error, decode=check, dataset="csv", spreadsheet=str(path)
    )
    kept = sorted({s.class_name for s in samples})
    if given is None and tuple(kept) != classes:  # a class lost every row to skips: renumber
        samples = SampleList(
            [frames_lib.replace(s, label=kept.index(s.class_name)) for s in samples],
            samples.skipped,
            samples.rows,
        )
    return samples


def class_names(samples: SampleList) -> tuple[str, ...]:
    """The classes of samples :func:`load` read without ``classes``, by label index."""
    names: dict[int, str] = {}
    for s in samples:
        names.setdefault(s.label, s.class_name)
    return tuple(names[i] for i in sorted(names))


def _sample(
    r: dict, where: str, base: Path, classes: tuple[str, ...], bit_depth: int | None
) -> Sample:
    subject = as_str(r["subject"])
    if not subject:
        raise DataError(f"{where}: subject is empty")
    label = r["label"]
    if label not in classes:
        raise DataError(f"{where}: label {label!r} is not one of the classes {list(classes)}")
    cropped = r.get("cropped", "").lower()
    if cropped not in _TRUE | _FALSE:
        raise DataError(f"{where}: cropped is {r['cropped']!r}; write 1 or 0 (true or false)")
    dataset = r.get("dataset") or "csv"
    if not r["clip"]:
        raise DataError(f"{where}: clip is empty (the folder of the clip's frames)")
    folder = Path(r["clip"]).expanduser()
    folder = folder if folder.is_absolute() else base / folder
    folder = frames_lib.clip_folder([folder], where)
    return Sample(
        dataset=dataset,
        subject=f"{dataset}/{subject}",
        clip=r["clip"],
        onset=as_int(r["onset"], where=where, column="onset"),
        apex=as_int(r["apex"], where=where, column="apex"),
        offset=as_int(r["offset"], where=where, column="offset"),
        label=classes.index(label),
        class_name=label,
        emotion=label.lower(),
        frames=frames_lib.index_frames(folder),
        cropped=cropped in _TRUE,
        source=where,
        folder=str(folder),
        bit_depth=bit_depth,
    )

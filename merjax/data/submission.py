"""The MEGC challenge's submission files: what a team sends for unlabelled test videos, and the
truth files the organisers score them against.

A spotting file has the MEGC 2022 baseline's header, ``vid,pred_onset,pred_offset,type``, a row
per spotted interval, ``type`` ``me`` (micro) or ``mae`` (macro), frames as the video's files
number them; a spot-then-recognise file adds ``emotion`` (MEGC 2019's classes, on ``me`` rows).
A truth file holds the same columns, or ``vid,onset,offset,type`` (and ``emotion``).

    write(path, {"spNO.1/a": intervals}, emotion=True)
    videos = read(path)                       # {vid: [Interval, ...]}, in file order
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path

from merjax import files
from merjax.data.intervals import Interval
from merjax.errors import DataError

COLUMNS = ("vid", "pred_onset", "pred_offset", "type")
TRUTH_COLUMNS = ("vid", "onset", "offset", "type")
EMOTION = "emotion"
TYPES = {"micro": "me", "macro": "mae"}
KIND_OF = {v: k for k, v in TYPES.items()}


def rows(
    videos: Mapping[str, Sequence[Interval]], *, emotion: bool = False, truth: bool = False
) -> str:
    """The file's text: a header (a truth file's with ``truth``), then every interval of every
    video (vids in the order given)."""
    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow((TRUTH_COLUMNS if truth else COLUMNS) + ((EMOTION,) if emotion else ()))
    for vid, intervals in videos.items():
        for i in sorted(intervals, key=lambda i: (i.onset, i.offset, i.kind)):
            row = [vid, i.onset, i.offset, TYPES[i.kind]]
            w.writerow(row + ([i.emotion or ""] if emotion else []))
    return buf.getvalue()


def write(
    path: str | Path,
    videos: Mapping[str, Sequence[Interval]],
    *,
    emotion: bool = False,
    truth: bool = False,
) -> Path:
    """Writes a submission (or with ``truth``, a truth) file whole: a temporary file renamed
    into place."""
    return files.write_text(path, rows(videos, emotion=emotion, truth=truth))


def read(path: str | Path) -> dict[str, list[Interval]]:
    """``{vid: intervals}`` of a submission or truth file; a DataError naming the file and the
    row for columns or values it cannot read."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"{str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read {str(path)!r}: {e}") from None
    reader = csv.reader(io.StringIO(text))
    header = [h.strip().lower() for h in next(reader, [])]
    base = tuple(header[:4])
    extra = header[4:]
    if base not in (COLUMNS, TRUTH_COLUMNS) or extra not in ([], [EMOTION]):
        raise DataError(
            f"{str(path)!r}: columns {','.join(header) or '(none)'}; expected "
            f"{','.join(COLUMNS)} (or {','.join(TRUTH_COLUMNS)}), and {EMOTION} after them for "
            "spot-then-recognise"
        )
    out: dict[str, list[Interval]] = {}
    for line, row in enumerate(reader, start=2):
        if not any(c.strip() for c in row):
            continue
        where = f"{str(path)!r} row {line}"
        if len(row) != len(header):
            raise DataError(f"{where}: {len(row)} cells, the header has {len(header)}")
        vid, onset, offset, kind = (c.strip() for c in row[:4])
        if not vid:
            raise DataError(f"{where}: no vid")
        if kind.lower() not in KIND_OF:
            raise DataError(f"{where}: type {kind!r}; expected one of {list(KIND_OF)}")
        try:
            a, b = int(onset), int(offset)
        except ValueError:
            raise DataError(
                f"{where}: onset {onset!r} and offset {offset!r} must be integers"
            ) from None
        if b < a:
            raise DataError(f"{where}: offset {b} is before onset {a}")
        emotion = row[4].strip() or None if extra else None
        out.setdefault(vid, []).append(Interval(a, b, KIND_OF[kind.lower()], None, emotion))
    return out

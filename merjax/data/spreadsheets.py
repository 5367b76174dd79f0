"""Reading the databases' official annotation spreadsheets (openpyxl, no pandas)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl

from merjax.errors import DataError

log = logging.getLogger(__name__)


class KnownError(DataError):
    """A row the database's own files get wrong in a known way that no policy can repair (e.g.
    an offset before its onset): skipped and listed in either ``on_error`` mode, so that the
    official files load as distributed."""


class NotFound(DataError):
    """No file of the name asked for below a root (not: two copies of it, or no root)."""


def find_file(root: Path, name: str, *, what: str, max_depth: int = 2) -> Path:
    """Finds ``name`` in ``root`` or up to ``max_depth`` folders below it; :class:`NotFound`
    where there is none."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{what} root {str(root)!r} is not a folder")
    pattern = name
    for _ in range(max_depth + 1):
        hits = sorted(root.glob(pattern))
        if len(hits) > 1:
            # Two copies or two versions at one depth: either could be the one meant.
            raise DataError(
                f"{what}: {len(hits)} files match {name!r} at the same depth below "
                f"{str(root)!r}: {', '.join(repr(str(h)) for h in hits)}; keep one (move the "
                "others out of the root)"
            )
        if hits:
            return hits[0]  # the shallowest: a copy at the root wins over one in a subfolder
        pattern = "*/" + pattern
    raise NotFound(
        f"{what}: no {name!r} in {str(root)!r} or up to {max_depth} folders below it "
        f"(this is the official file name the database ships with)"
    )


def _norm(value: Any) -> str:
    return " ".join(str(value).split()).lower() if value is not None else ""


def _open(path: Path):
    """``(sheet names, hidden sheet names, rows(sheet name) -> iterator of tuples, close)`` of a
    workbook."""
    try:
        if Path(path).suffix.lower() == ".xls":
            import xlrd  # the old binary format: openpyxl reads only .xlsx

            book = xlrd.open_workbook(str(path), on_demand=True)
            names = book.sheet_names()
            # xlrd reads each sheet's visibility with its header (0: visible).
            hidden = {n for n in names if book.sheet_by_name(n).visibility != 0}

            def xls_rows(name):
                sh = book.sheet_by_name(name)
                for r in range(sh.nrows):
                    yield tuple(
                        None if c.ctype == xlrd.XL_CELL_EMPTY else c.value for c in sh.row(r)
                    )

            return names, hidden, xls_rows, book.release_resources
        book = openpyxl.load_workbook(path, read_only=True)
    except Exception as e:  # both libraries raise several unrelated types
        raise DataError(f"cannot read spreadsheet {str(path)!r}: {e}") from e
    hidden = {n for n in book.sheetnames if book[n].sheet_state != "visible"}
    rows = lambda name: book[name].iter_rows(values_only=True)  # noqa: E731
    return book.sheetnames, hidden, rows, book.close


def sheet_rows(path: Path, sheet: int | str = 0) -> list[tuple]:
    """Every row of a sheet (by index or name) as written, for sheets without a header row. An
    index counts the visible sheets (a hidden sheet added before them moves no index)."""
    names, hidden, rows, close = _open(path)
    try:
        if isinstance(sheet, int):
            if hidden:
                log.warning(
                    "%s: hidden sheet(s) %s passed over", Path(path).name, ", ".join(sorted(hidden))
                )
            names = [n for n in names if n not in hidden]
            if not 0 <= sheet < len(names):
                raise DataError(
                    f"{str(path)!r} has {len(names)} sheets; sheet {sheet + 1} is missing"
                )
            sheet = names[sheet]
        elif sheet not in names:
            raise DataError(
                f"{str(path)!r} has no sheet {sheet!r} (its sheets: {', '.join(names)})"
            )
        return [tuple(r) for r in rows(sheet)]
    finally:
        close()


def read_table(
    path: Path, header: tuple[str, ...], *, sheet: str | None = None, max_scan: int = 40
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yields ``(row_number, {column: value})`` for the rows below ``header``.

    The header row is found by looking for all names of ``header`` (case and spacing ignored)
    within the first ``max_scan`` rows, so note rows above it (SAMM has 13) are skipped; in the
    sheet named ``sheet``, or by default in the first sheet that has it (a sheet of notes added
    before the data is passed over), visible sheets first: a hidden sheet is read only when no
    visible one has the header, and passing one over is logged. Row numbers are the
    spreadsheet's own (1-based), for error messages. Entirely empty rows are skipped. Formulas
    come back as their text (only unused columns hold them). ``.xls`` files (the old Excel
    format some databases ship) are read with xlrd, everything else with openpyxl.
    """
    sheetnames, hidden, sheet_rows, close = _open(path)
    try:
        if sheet is not None and sheet not in sheetnames:
            raise DataError(
                f"{str(path)!r} has no sheet {sheet!r} (its sheets: {', '.join(sheetnames)})"
            )
        visible = [n for n in sheetnames if n not in hidden]
        names = [sheet] if sheet is not None else visible + [n for n in sheetnames if n in hidden]
        wanted = [_norm(h) for h in header]
        closest = (0, "", 0, [])  # the row holding most of the header: (found, sheet, row, cells)
        for name in names:
            rows = sheet_rows(name)
            for number, row in enumerate(rows, start=1):
                cells = [_norm(c) for c in row]
                found = sum(w in cells for w in wanted)
                if found == len(wanted):
                    columns = {h: cells.index(w) for h, w in zip(header, wanted, strict=True)}
                    _say_hidden(path, name, hidden, sheet)
                    yield from _below(rows, number, columns)
                    return
                if found > closest[0]:
                    closest = (found, name, number, row)
                if number >= max_scan:
                    break
    finally:
        close()
    found, name, number, row = closest
    if found * 2 >= len(wanted):  # a header with columns missing: a file of another version
        missing = [h for h, w in zip(header, wanted, strict=True) if w not in map(_norm, row)]
        has = ", ".join(str(c) for c in row if c is not None and str(c).strip())
        raise DataError(
            f"{str(path)!r}: no column {', '.join(map(repr, missing))} in the header row "
            f"(sheet {name!r} row {number}: {has}); a file of another version?"
        )
    where = f"sheet {sheet!r}" if sheet is not None else f"any of its sheets ({', '.join(names)})"
    raise DataError(
        f"{str(path)!r}: no header row with columns {list(header)} in the first {max_scan} rows "
        f"of {where}"
    )


def _say_hidden(path: Path, used: str, hidden: set[str], asked: str | None) -> None:
    if asked is not None or not hidden:
        return
    if used in hidden:
        log.warning("%s: the data is read from hidden sheet %r", Path(path).name, used)
    else:
        log.warning(
            "%s: hidden sheet(s) %s passed over; the data is read from sheet %r",
            Path(path).name,
            ", ".join(map(repr, sorted(hidden))),
            used,
        )


def _below(rows, header_row: int, columns: dict[str, int]) -> Iterator[tuple[int, dict[str, Any]]]:
    """The rows after the header row, numbered as the spreadsheet numbers them."""
    for number, row in enumerate(rows, start=header_row + 1):
        if all(c is None or str(c).strip() == "" for c in row):
            continue
        yield number, {h: (row[i] if i < len(row) else None) for h, i in columns.items()}


def as_int(value: Any, *, where: str, column: str) -> int:
    """An integer cell, or a DataError naming the row and column."""
    if isinstance(value, bool):
        raise DataError(f"{where}: {column} is {value!r}, not a frame number")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    raise DataError(f"{where}: {column} is {value!r}, not a frame number")


def as_class(value: Any, *, where: str, column: str, classes: range = range(1, 8)) -> int:
    """A class number cell (a number, or the number written as text: "1"), or a DataError."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not float(value).is_integer()
        or int(value) not in classes
    ):
        raise DataError(f"{where}: {column} {value!r} is not {classes.start}-{classes.stop - 1}")
    return int(value)


def as_name(value: Any, *, where: str, column: str) -> str:
    """A text cell that names one folder or file below a database's root (a subject, a clip):
    an empty cell, a path separator, ``..`` or an absolute path is a DataError naming the row,
    since joining it to the root would read frames from outside the database."""
    text = as_str(value)
    if not text or text in (".", "..") or "/" in text or "\\" in text or Path(text).is_absolute():
        raise DataError(f"{where}: {column} {text!r} is not the name of one folder in the database")
    return text


def as_str(value: Any) -> str:
    """A text cell; integer-valued numbers lose their '.0'."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return "" if value is None else str(value).strip()

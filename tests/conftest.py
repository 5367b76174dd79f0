"""Fixtures the test files share: the tiny synthetic database and a way to edit its spreadsheets."""

from __future__ import annotations

import os
import shutil
import tempfile

# One XLA compilation cache for the whole session, the subprocesses (command lines, notebooks,
# the GPU suite's smoke run) included: the same programs compile once, not once per process.
# A fresh folder per session, so no run depends on another's leftovers.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", tempfile.mkdtemp(prefix="merjax-xla-"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.3")  # not the many tiny ones
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
from pathlib import Path

import openpyxl
import pytest

from merjax.data import synthetic


@pytest.fixture(scope="session")
def tiny_db(tmp_path_factory) -> Path:
    """The tiny synthetic database (CASME II and SAMM layouts), written once per session."""
    out = tmp_path_factory.mktemp("db") / "tiny"
    synthetic.write(out, size="tiny", seed=0)
    return out


@pytest.fixture
def db(tiny_db, tmp_path) -> Path:
    """A private copy of the tiny database that a test may break."""
    out = tmp_path / "db"
    shutil.copytree(tiny_db, out)
    return out


def edit_cell(path: Path, clip: str, column: str, value) -> int:
    """Sets ``column`` of the row whose Filename is ``clip``; returns the row number."""
    book = openpyxl.load_workbook(path)
    ws = book.worksheets[0]
    header_row = next(r for r in ws.iter_rows() if any(c.value == "Filename" for c in r))
    col = next(c.column for c in header_row if c.value == column)
    name_col = next(c.column for c in header_row if c.value == "Filename")
    for row in ws.iter_rows(min_row=header_row[0].row + 1):
        if row[name_col - 1].value == clip:
            ws.cell(row=row[0].row, column=col).value = value
            book.save(path)
            return row[0].row
    raise AssertionError(f"{clip} not in {path}")

"""What the test files share: the XLA settings of the session, one cache folder (the tiny
synthetic database, its flows and the compiled programs) with the end-to-end runs made in it
once, and a way to edit the spreadsheets."""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile

# One XLA compilation cache for the whole session, the subprocesses (command lines, notebooks,
# the GPU suite's smoke run) included: the same programs compile once, not once per process.
# A fresh folder per session, so no run depends on another's leftovers.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", tempfile.mkdtemp(prefix="merjax-xla-"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.3")  # not the many tiny ones
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
# The tests' programs are tiny and compiled once each: XLA's optimisation passes cost more than
# they save (the suite takes about 15% less time without them; benchmarks never set this).
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")
from pathlib import Path  # noqa: E402

import openpyxl  # noqa: E402
import pytest  # noqa: E402

from merjax import inference, runner  # noqa: E402
from merjax.data import longvideo, synthetic, synthetic_long  # noqa: E402

# The official annotation files (CASME II, SAMM, SMIC, CAS(ME)^3; the frames are licensed and
# never here): the folder $MERJAX_ANNOTATIONS names, with casme3/ inside. The tests that read
# them skip without it; the project's own fixtures in those formats test the loaders anyway.
ANNOTATIONS = Path(os.environ.get("MERJAX_ANNOTATIONS") or "/nonexistent-merjax-annotations")
needs_annotations = pytest.mark.skipif(
    not ANNOTATIONS.is_dir(), reason="MERJAX_ANNOTATIONS names no folder of official annotations"
)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """The session's cache folder: the tiny synthetic database and the flows of every run made
    with it (the experiments' runs, the command lines and the notebooks all point here)."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def tiny_db(cache_dir) -> Path:
    """The tiny synthetic database (CASME II, SAMM, SMIC and CAS(ME)^3 layouts), written once per
    session, where the experiments find it. Read-only: a test that breaks it uses ``db``."""
    return synthetic.ensure(cache_dir, size="tiny")["casme2"].parent


@pytest.fixture(scope="session")
def long_db(cache_dir) -> dict[str, Path]:
    """The tiny synthetic long videos (CAS(ME)^3, SAMM-LV and CAS(ME)^2 layouts), once per
    session, where the spotting experiment finds them. Read-only."""
    from merjax.data import synthetic_long

    return synthetic_long.ensure(cache_dir, size="tiny")


@pytest.fixture(scope="session")
def stream_files(long_db, tmp_path_factory):
    """A tiny long video as a file and an untrained 3-class model folder."""
    out = tmp_path_factory.mktemp("stream")
    v = longvideo.load("casme_sq", long_db["casme_sq"])[0]
    video = synthetic_long.write_video(v.paths(), out / "long.avi", v.fps)
    model = inference.untrained("vy-3cl", 16, class_names=("negative", "positive", "surprise"))
    inference.save(out / "model", model.spec, model.variables)
    return video, out / "model"


@pytest.fixture
def db(tiny_db, tmp_path) -> Path:
    """A private copy of the tiny database that a test may break."""
    out = tmp_path / "db"
    shutil.copytree(tiny_db, out)
    return out


@pytest.fixture(scope="session")
def paper_run(tmp_path_factory, cache_dir, tiny_db) -> tuple[Path, dict]:
    """Every experiment of the paper once, through `paper` (which shares the data and trained
    networks), in the tiny profile."""
    workdir = tmp_path_factory.mktemp("paper")
    summary = runner.run("paper", workdir, profile="tiny", cache_dir=cache_dir, progress=None)
    return workdir, summary


@pytest.fixture(scope="session")
def megc2019_run(tmp_path_factory, cache_dir, tiny_db) -> tuple[Path, dict]:
    """The MEGC 2019 benchmark once, in the tiny profile, on the same database and cache."""
    workdir = tmp_path_factory.mktemp("megc2019")
    summary = runner.run("megc2019", workdir, profile="tiny", cache_dir=cache_dir, progress=None)
    return workdir, summary


@pytest.fixture
def command_in_process(capfd, monkeypatch):
    """A command line's flags parsed and its ``main(argv)`` called in this process (no interpreter
    start, no re-import): ``call(main, *args)`` returns ``(exit code, stdout, stderr)``. What
    absl's app.run adds around main() -- a UsageError printed with exit code 1 -- is done here
    the same way; merjax's logging set-up is undone afterwards. Each command line is also tested
    once as a process (test_experiments, test_inference)."""
    from absl import app, flags
    from absl import logging as absl_logging

    monkeypatch.delenv("MERJAX_TRACEBACK", raising=False)
    ours = logging.getLogger("merjax")
    saved = (list(ours.handlers), ours.level, ours.propagate, absl_logging.get_verbosity())

    def call(main, *args: str) -> tuple[int, str, str]:
        capfd.readouterr()
        code = 0
        try:
            main(flags.FLAGS(["merjax", *args]))
        except app.UsageError as e:
            print(f"FATAL Flags parsing error: {e}", file=sys.stderr)
            code = 1
        except SystemExit as e:
            code = e.code
        finally:
            flags.FLAGS.unparse_flags()
            ours.handlers[:], ours.level, ours.propagate = saved[0], saved[1], saved[2]
            absl_logging.set_verbosity(saved[3])
        out, err = capfd.readouterr()
        return code, out, err

    return call


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

"""Faults in the data a user gives: damaged or changed frames, odd spreadsheets, clip folders
that are empty or twice there, frames the flow must refuse, a damaged or half-written cache.

Each test failed on the code before its fix, in the way its docstring says (README,
Reliability: the table names each test).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import jax
import numpy as np
import openpyxl
import pytest

from merjax import files, report
from merjax.data import cache, casme2, composite, frames, samm, smic
from merjax.errors import DataError, Interrupted
from merjax.flow import FlowSettings, HornSchunckSettings, horn_schunck

from conftest import edit_cell


def _rows(path: Path) -> tuple[openpyxl.Workbook, list]:
    book = openpyxl.load_workbook(path)
    ws = book.worksheets[0]
    header = next(r for r in ws.iter_rows() if any(c.value == "Filename" for c in r))
    return book, [
        r for r in ws.iter_rows(min_row=header[0].row + 1) if any(c.value is not None for c in r)
    ]


_set = edit_cell


def test_a_frame_changed_after_its_flows_were_cached_is_a_miss(db, tmp_path):
    """Before: keyed on spreadsheet rows and settings only, a re-exported frame reused old flows."""
    s = composite.megc2018(db / "CASME2", db / "SAMM")
    settings = FlowSettings(size=(16, 16), horn_schunck=HornSchunckSettings(num_iter=5))
    a, hit = cache.load_or_compute(s, settings, tmp_path, "tiny", progress=None)
    assert not hit
    _, hit = cache.load_or_compute(s, settings, tmp_path, "tiny", progress=None)
    assert hit
    apex = s[0].apex_path  # re-export the apex frame with different content, same size and name
    img = cv2.imread(str(apex), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(str(apex), np.roll(img, 2, axis=1))
    seen = []
    b, hit = cache.load_or_compute(s, settings, tmp_path, "tiny", progress=seen.append)
    assert not hit and any("frames that have changed" in m for m in seen)
    assert not np.allclose(a.apex[0], b.apex[0]) and np.allclose(a.apex[1:], b.apex[1:])


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_a_truncated_or_bit_flipped_flow_cache_is_a_miss(tiny_db, tmp_path, damage):
    """Before: BadZipFile or a CRC error on every rerun."""
    s = composite.megc2018(tiny_db / "CASME2", tiny_db / "SAMM")
    settings = FlowSettings(size=(16, 16), horn_schunck=HornSchunckSettings(num_iter=5))
    a, _ = cache.load_or_compute(s, settings, tmp_path, "tiny", progress=None)
    path = cache.cache_path(tmp_path, "tiny", settings)
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    else:
        mid = len(data) // 3
        data[mid : mid + 64] = bytes(b ^ 0xFF for b in data[mid : mid + 64])
    path.write_bytes(bytes(data))
    seen = []
    b, hit = cache.load_or_compute(s, settings, tmp_path, "tiny", progress=seen.append)
    assert not hit and any("is unreadable" in m and "recomputing" in m for m in seen)
    np.testing.assert_array_equal(a.apex, b.apex)
    _, hit = cache.load_or_compute(s, settings, tmp_path, "tiny", progress=None)
    assert hit, "the damaged file is replaced by a good one"


def test_ctrl_c_during_the_flows_is_one_line_and_caches_nothing(tiny_db, monkeypatch, tmp_path):
    import merjax.flow

    real, calls = merjax.flow.compute, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(merjax.flow, "compute", interrupted)
    s = composite.megc2018(tiny_db / "CASME2", tiny_db / "SAMM")
    settings = FlowSettings(size=(16, 16), horn_schunck=HornSchunckSettings(num_iter=3))
    with pytest.raises(Interrupted, match=r"while computing the flows \(8 of 36 pairs"):
        cache.load_or_compute(s, settings, tmp_path, "x", batch_size=8, progress=None)
    assert not list(tmp_path.glob("flows-*"))


def test_a_truncated_jpeg_is_an_error_not_half_a_frame(db):
    """Before: OpenCV decoded the first half and filled the rest grey; it was trained on."""
    s = casme2.load(db / "CASME2")[0]
    data = s.apex_path.read_bytes()
    s.apex_path.write_bytes(data[: len(data) // 2])
    with pytest.raises(
        DataError,
        match=rf"{casme2.CODING} row \d+ \({s.clip}\): apex frame {s.apex}: "
        rf"image '.*{s.apex_path.name}' is a JPEG without its end marker",
    ):
        casme2.load(db / "CASME2")
    kept = casme2.load(db / "CASME2", on_error="skip")
    assert [p.clip for p in kept.skipped] == [s.clip] and "truncated or corrupt" in kept.skipped[
        0
    ].reason
    with pytest.raises(DataError, match="truncated"):
        frames.read_gray(s.apex_path)  # predict reads frames through it too


def test_whole_images_decode_as_opencv_reads_them(tiny_db):
    for s in casme2.load(tiny_db / "CASME2")[:3]:
        np.testing.assert_array_equal(
            frames.read_gray(s.apex_path), cv2.imread(str(s.apex_path), cv2.IMREAD_GRAYSCALE)
        )
    png = tiny_db.parent / "x.png"
    cv2.imwrite(str(png), np.arange(64, dtype=np.uint8).reshape(8, 8))
    assert frames.read_gray(png).shape == (8, 8)
    assert frames.incomplete(png.read_bytes()[:-6]) == "a PNG without its IEND chunk"


def test_decode_errors_name_row_and_file_and_skips_say_it_once(db):
    s = samm.load(db / "SAMM")[1]
    s.onset_path.write_bytes(b"not a jpeg")
    with pytest.raises(
        DataError,
        match=rf"{samm.CODES} row \d+ \({s.clip}\): onset frame {s.onset}: "
        rf"cannot decode image '.*{s.onset_path.name}'",
    ):
        samm.load(db / "SAMM")
    kept = samm.load(db / "SAMM", on_error="skip")
    line = str(kept.skipped[0])
    assert line.count(samm.CODES) == 1 and line.count(f"({s.clip})") == 1, line


def test_a_spreadsheet_without_rows_is_an_error(db):
    """Before: an empty CASME II coding sheet gave a SAMM-only 'MEGC 2018 composite'."""
    book, rows = _rows(db / "CASME2" / casme2.CODING)
    ws = book.worksheets[0]
    for r in reversed(rows):
        ws.delete_rows(r[0].row)
    book.save(db / "CASME2" / casme2.CODING)
    with pytest.raises(
        DataError, match=rf"{casme2.CODING}' yields no usable samples \(a header and no rows\)"
    ):
        composite.megc2018(db / "CASME2", db / "SAMM")


def test_a_database_that_loses_a_third_of_its_rows_says_so_first(db):
    c = casme2.load(db / "CASME2")
    for s in c[:5]:  # 5 of the 12 CASME II rows lose their apex frame
        s.apex_path.unlink()
    out = composite.megc2018(db / "CASME2", db / "SAMM", on_error="skip")
    assert out.losses() == [
        "WARNING: casme2 lost 5 of its 12 spreadsheet rows to skips (42%); "
        "results on this data are not results on casme2"
    ]
    assert out.summary().startswith("WARNING: casme2 lost 5")
    assert composite.megc2018(db / "CASME2", db / "SAMM", on_error="skip").losses() == out.losses()
    rep = report.Report(db / "r", "t", "p", "s", out.losses())
    rep.write({})
    assert "**WARNING: casme2 lost 5" in (db / "r" / "report.md").read_text()


def test_a_duplicated_row_is_named_not_counted_twice(db):
    """Before: a duplicated spreadsheet row was a second sample of the same clip."""
    path = db / "SAMM" / samm.CODES
    n = len(samm.load(db / "SAMM"))
    book, rows = _rows(path)
    ws = book.worksheets[0]
    ws.append([c.value for c in rows[0]])
    book.save(path)
    last = ws.max_row
    with pytest.raises(
        DataError, match=rf"row {last}: samm/\S+ \S+ is also in {samm.CODES} row {rows[0][0].row}"
    ):
        samm.load(db / "SAMM")
    kept = samm.load(db / "SAMM", on_error="skip")
    assert len(kept) == n and [p.source for p in kept.skipped] == [f"{samm.CODES} row {last}"]


def test_apex_at_offset_with_frames_past_the_offset_is_accepted(db):
    """Before: accepted only when the folder ended at the apex; rejected when frames followed."""
    s = next(x for x in casme2.load(db / "CASME2") if "apex == offset" in x.note)
    assert s.augment_frame == s.apex - 1
    later = s.apex_path.with_name(s.apex_path.name.replace(str(s.apex), str(s.apex + 1)))
    shutil.copy(s.apex_path, later)  # the folder now holds a frame past the offset
    t = next(x for x in casme2.load(db / "CASME2") if x.clip == s.clip)
    assert t.apex == t.offset and t.augment_frame == t.apex + 1 and "apex == offset" not in t.note


def test_an_objective_class_written_as_text_is_read(db):
    clip = casme2.load(db / "CASME2")[0].clip
    _set(db / "CASME2" / casme2.OBJECTIVE, clip, "Objective Class", " 3 ")
    got = next(s for s in casme2.load(db / "CASME2") if s.clip == clip)
    assert got.label == 2 and got.class_name == "III"
    sclip = samm.load(db / "SAMM")[0].clip
    _set(db / "SAMM" / samm.CODES, sclip, "Objective Classes", "1")
    assert next(s for s in samm.load(db / "SAMM") if s.clip == sclip).label == 0


def test_a_sheet_added_before_the_data_is_passed_over(db):
    """Before: 'no header row ... in its first 40 rows' (only the first sheet was read)."""
    path = db / "CASME2" / casme2.CODING
    n = len(casme2.load(db / "CASME2"))
    book = openpyxl.load_workbook(path)
    notes = book.create_sheet("notes", 0)
    notes.append(["our notes on this database"])
    book.save(path)
    assert len(casme2.load(db / "CASME2")) == n
    book = openpyxl.load_workbook(path)
    del book[book.sheetnames[1]]
    book.save(path)
    with pytest.raises(DataError, match=r"in the first 40 rows of any of its sheets \(notes, "):
        casme2.load(db / "CASME2")


def test_an_empty_clip_folder_is_named(db):
    """Before: "frame N is not in 'its folder'"."""
    s = casme2.load(db / "CASME2")[0]
    folder = Path(s.onset_path).parent
    for f in folder.iterdir():
        f.unlink()
    with pytest.raises(DataError, match=rf"clip folder '{re.escape(str(folder))}' holds no frames"):
        casme2.load(db / "CASME2")


def test_two_copies_of_a_clip_folder_are_refused(db):
    """Before: the first copy in sort order was used (a backup inside the root decided which
    frames were trained on)."""
    s = smic.load(db / "SMIC")[0]
    folder = Path(s.onset_path).parent
    backup = db / "SMIC" / "backup" / folder.name
    shutil.copytree(folder, backup)
    with pytest.raises(DataError, match=rf"two folders, '.*{folder.name}' and '.*{folder.name}'"):
        smic.load(db / "SMIC")
    kept = smic.load(db / "SMIC", on_error="skip")
    assert [p.clip for p in kept.skipped] == [s.clip] and "two folders" in kept.skipped[0].reason
    m = samm.load(db / "SAMM")[0]  # SAMM/SUBJECT/CLIP; a copy at SUBJECT/CLIP is a second one
    shutil.copytree(Path(m.onset_path).parent, db / "SAMM" / m.subject[5:] / m.clip)
    with pytest.raises(DataError, match=rf"{m.clip}' and '.*{m.clip}'"):
        samm.load(db / "SAMM")
    c = casme2.load(db / "CASME2")[0]
    shutil.copytree(db / "CASME2" / "Cropped", db / "CASME2" / "old" / "Cropped")
    with pytest.raises(DataError, match=rf"{c.clip}' and '.*old/Cropped/.*{c.clip}'"):
        casme2.load(db / "CASME2")


def _as_12_bit_pngs(folder: Path) -> list[Path]:
    """Rewrites a clip's frames as 16-bit PNGs holding 12-bit values (0..4080), as a scientific
    camera stores them; returns the new files."""
    out = []
    for jpg in sorted(folder.glob("*.jpg")):
        img = cv2.imread(str(jpg), cv2.IMREAD_GRAYSCALE).astype(np.uint16) * 16
        png = jpg.with_suffix(".png")
        cv2.imwrite(str(png), img)
        jpg.unlink()
        out.append(png)
    return out


def test_12_bit_data_in_16_bit_files_is_named_and_can_be_scaled(db, caplog):
    """Before: OpenCV read 16-bit frames as their top 8 bits, so 12-bit data became 16 grey
    levels and next to no flow, silently. Now the clip is named with its range, and bit_depth=12
    reads it as the 8-bit frame it was."""
    s = samm.load(db / "SAMM")[0]
    original = frames.read_gray(s.onset_path)
    pngs = _as_12_bit_pngs(Path(s.onset_path).parent)
    caplog.set_level("WARNING")
    dim = next(x for x in samm.load(db / "SAMM") if x.clip == s.clip)
    warned = [r.getMessage() for r in caplog.records if "tiny fraction" in r.getMessage()]
    assert len(warned) == 1 and s.clip in warned[0] and ".png" in warned[0]
    assert "values" in warned[0] and "bit_depth=12" in warned[0] and "bit_depth=12" in dim.note
    onset = next(p for p in pngs if p.stem == Path(s.onset_path).stem)
    assert frames.read_gray(onset).max() <= 16
    scaled = next(x for x in samm.load(db / "SAMM", bit_depth=12) if x.clip == s.clip)
    assert "tiny fraction" not in scaled.note
    np.testing.assert_allclose(frames.read_gray(onset, 12), original, atol=1)
    with pytest.raises(ValueError, match="bit_depth must be one of"):
        frames.read_gray(onset, 13)


def test_flow_refuses_nan_colour_and_signed_frames():
    """Before: NaN spread over the flow, [H, W, 3] was a batch of H frames, uint16 was unscaled."""
    rng = np.random.default_rng(0)
    a = rng.random((16, 16), dtype=np.float32)
    b = np.roll(a, 1, axis=1)
    bad = a.copy()
    bad[3, 4] = np.nan
    with pytest.raises(ValueError, match="frame0 has 1 non-finite pixel"):
        horn_schunck(bad, b)
    inf = b.copy()
    inf[0, 0] = np.inf
    with pytest.raises(ValueError, match="frame1 has 1 non-finite pixel"):
        horn_schunck(a, inf)
    jax.jit(horn_schunck)(bad, b)  # under a trace the values are unknown: no check, no error
    with pytest.raises(ValueError, match="look like colour images"):
        horn_schunck(np.stack([a] * 3, -1), np.stack([b] * 3, -1))
    with pytest.raises(TypeError, match="cast signed integer frames"):
        horn_schunck((a * 255).astype(np.int32), (b * 255).astype(np.int32))
    a16, b16 = (a * 65535).astype(np.uint16), (b * 65535).astype(np.uint16)
    np.testing.assert_allclose(
        horn_schunck(a16, b16), horn_schunck(a16 / 65535.0, b16 / 65535.0), atol=1e-6
    )
    assert float(np.abs(horn_schunck(a16, b16)).max()) < 5


def test_float_frames_outside_0_1_are_refused():
    """Before: float frames in 0..255 gave a flow 300x too large (Horn-Schunck) or a different
    one entirely (TV-L1), without a word."""
    from merjax.flow import tvl1

    rng = np.random.default_rng(0)
    a = rng.random((16, 16), dtype=np.float32)
    b = np.roll(a, 1, axis=1)
    for fn in (horn_schunck, tvl1):
        with pytest.raises(ValueError, match=r"frame0 .*values in \[.*, 25\d.*\].*divide by 255"):
            fn(a * 255, b * 255)
        fn(a * 1.05 - 0.02, b)  # what resampling adds around [0, 1] is tolerated
        with pytest.raises(ValueError, match="float frames must be intensities in"):
            fn(a, b * 65535)
        jax.jit(fn)(a * 255, b * 255)  # under a trace the values are unknown: no check


def test_writers_that_start_together_each_build_their_own_and_the_first_wins(tmp_path):
    """Two experiments on an empty cache write the same synthetic database at once. Before, both
    built in one '.partial' folder, and the second deleted the first's half-written copy (the
    first then failed). Now each builds in a private folder, the first to finish renames it into
    place, and the other finds it there and removes its own copy."""
    import threading

    both_building = threading.Barrier(2)

    def build(folder):
        (folder / "part1").write_text("a")
        both_building.wait(timeout=10)  # neither has finished when the other starts
        (folder / "part2").write_text("b")

    out, errors = tmp_path / "db", []

    def writer():
        try:
            assert files.written_once(out, build, stamp={"v": 1}) == out
        except Exception as e:  # reported below, from the test's own thread
            errors.append(e)

    threads = [threading.Thread(target=writer) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors
    assert sorted(p.name for p in out.iterdir()) == ["part1", "part2", "stamp.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["db"], "no private folder is left behind"
    calls = []
    files.written_once(out, calls.append, stamp={"v": 1})
    assert not calls, "a folder with its stamp is not built again"


def test_a_cache_folder_without_its_stamp_is_moved_aside_not_deleted(tmp_path):
    """A folder where a cache should be, with another or no stamp (killed by an older merjax,
    edited, built by other code), is renamed out of the way and rebuilt; a build that fails
    leaves neither a folder nor a private copy."""
    out = tmp_path / "db"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    seen = []
    files.written_once(
        out, lambda f: (f / "x").write_text("new"), stamp={"v": 2}, progress=seen.append
    )
    assert (tmp_path / "db.stale" / "mine.txt").read_text() == "keep me"
    assert (out / "x").read_text() == "new" and "moved to" in seen[0]

    def fails(folder):
        (folder / "half").write_text("x")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        files.written_once(tmp_path / "other", fails, stamp={"v": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["db", "db.stale"]


@pytest.mark.slow
def test_two_processes_write_one_synthetic_database(tmp_path):
    """The fault as it was seen: two processes on one empty cache folder, each writing the
    tiny synthetic database. Both finish, and one whole database is there."""
    code = (
        "import sys; from merjax.data import synthetic; synthetic.ensure(sys.argv[1], size='tiny')"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read().decode()
    (db,) = tmp_path.iterdir()
    assert casme2.load(db / "CASME2") and samm.load(db / "SAMM") and smic.load(db / "SMIC")

"""Faults of long videos and spotting: annotation files in two places or with hidden sheets,
Type cells that are typos, cells that name paths, a still video.

Each test failed on the code before its fix, in the way its docstring says (README,
Reliability: the table names each test).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import cv2
import numpy as np
import openpyxl
import pytest

from merjax.data import casme2, longvideo
from merjax.data.intervals import KINDS
from merjax.errors import DataError
from merjax.spotting import signal, stream

from conftest import edit_cell


@pytest.fixture
def samm_lv(long_db, tmp_path) -> Path:
    """A private copy of the tiny SAMM Long Videos root that a test may break."""
    root = tmp_path / "SAMMLV"
    shutil.copytree(long_db["samm_lv"], root)
    return root


def _annotation(root: Path) -> Path:
    return next(root.glob(longvideo.SAMM_LV_FILE))


def test_the_annotation_file_at_the_root_wins_over_a_copy_below_it(samm_lv):
    """Before: a release in a subfolder won over the one at the root (``hits[-1]``)."""
    ours = longvideo.load("samm_lv", samm_lv)
    old = samm_lv / "old" / "SAMM_LongVideos_V1_Release.xlsx"
    old.parent.mkdir()
    shutil.copy(_annotation(samm_lv), old)
    edit_cell(old, "006_1_1", "Type", "Macro")  # the copy below says something else
    again = longvideo.load("samm_lv", samm_lv)
    assert [v.intervals for v in again] == [v.intervals for v in ours]
    # Two releases side by side at the root: either could be meant.
    shutil.copy(_annotation(samm_lv), samm_lv / "SAMM_LongVideos_V2_Release.xlsx")
    with pytest.raises(DataError, match=r"2 files match 'SAMM_LongVideos_V\*_Release.xlsx'"):
        longvideo.load("samm_lv", samm_lv)


def test_a_hidden_sheet_is_passed_over_and_said(db, caplog):
    """Before: sheets were searched in order, hidden ones first: a hidden first sheet with the
    header turned every label into its rows."""
    path = db / "CASME2" / casme2.CODING
    n = len(casme2.load(db / "CASME2"))
    book = openpyxl.load_workbook(path)
    data = book.worksheets[0]
    hidden = book.create_sheet("old", 0)
    hidden.append([c.value for c in next(data.iter_rows(min_row=1, max_row=1))])
    hidden.sheet_state = "hidden"
    book.save(path)
    with caplog.at_level(logging.WARNING, logger="merjax"):
        assert len(casme2.load(db / "CASME2")) == n
    assert "hidden sheet(s) 'old' passed over" in caplog.text


@pytest.mark.parametrize("value", ["Mirco - 1/2", None, "Micro?"])
def test_a_type_that_is_no_official_spelling_is_an_error_naming_the_row(samm_lv, value):
    """Before: any Type not starting with "micro" (a blank cell, ``Mirco - 1/2``) was read as a
    macro-expression."""
    row = edit_cell(_annotation(samm_lv), "006_1_1", "Type", value)
    with pytest.raises(DataError, match=rf"row {row}: Type .* is not a micro- or macro-expr"):
        longvideo.load("samm_lv", samm_lv)


@pytest.mark.parametrize(
    "column, value", [("Subject", "../../etc"), ("Filename", "/etc"), ("Filename", "..")]
)
def test_a_cell_that_names_a_path_outside_the_root_is_refused(db, column, value):
    """Before: an absolute path or ``..`` in a Subject or Filename cell read frames from
    outside the data root."""
    path = db / "CASME2" / casme2.CODING
    clip = casme2.load(db / "CASME2")[0].clip
    row = edit_cell(path, clip, column, value)
    with pytest.raises(DataError, match=rf"row {row}: {column} .* is not the name of one folder"):
        casme2.load(db / "CASME2")


def test_a_still_video_spots_nothing():
    """Before: every frame equal gave ``Interval(0, 12, 'micro')``: the flat signal's threshold
    equals its every value, and its first frame counted as a peak; a classifier's scores that
    only fall from the start made a macro at the video's first frames."""
    still = np.full((60, 32, 32), 128, np.uint8)
    s = signal.SpotSettings(size=32)
    assert signal.spot(still, 30.0, list(range(60)), s).intervals == []
    ks = {"micro": 6, "macro": 18}
    falling = {kind: np.linspace(1, 0, 60) for kind in ks}
    assert signal.intervals_from(falling, ks, 0.3, range(60)).intervals == []
    constant = {kind: np.full(60, 0.4) for kind in ks}
    assert signal.intervals_from(constant, ks, 0.3, range(60)).intervals == []


def test_an_interval_never_spans_a_gap_in_the_frame_numbers(long_db, tmp_path):
    """Before: with frames 100-199 missing, k counted positions: a "micro" 88-94-200 came out,
    with no note. Intervals are in frame numbers, stay inside one run of frames, and the
    loader notes the gap."""
    numbers = list(range(100)) + list(range(200, 300))
    ks = {"micro": 6, "macro": 18}
    micro = np.zeros(200)
    micro[96] = 1.0  # a peak 4 positions before the gap
    scores = {"micro": micro, "macro": np.zeros(200)}
    [found] = signal.intervals_from(scores, ks, 0.3, numbers).intervals
    assert (found.onset, found.apex, found.offset) == (90, 96, 99)
    root = tmp_path / "CASME_sq"
    shutil.copytree(long_db["casme_sq"], root)
    video = longvideo.load("casme_sq", root)[0]
    for _, path in video.frames[10:20]:
        Path(path).unlink()
    gap = f"frames {video.numbers[10]}-{video.numbers[19]} are missing"
    again = next(v for v in longvideo.load("casme_sq", root) if v.name == video.name)
    assert any(gap in n for n in again.notes), again.notes


def test_ground_truth_is_checked_against_its_video(samm_lv):
    """Before: a duplicated annotation row counted twice, and an interval beyond the last frame
    (5000-5010 in a video of a few hundred) silently added a false negative."""
    path = _annotation(samm_lv)
    book = openpyxl.load_workbook(path)
    ws = book.worksheets[0]
    rows = list(ws.iter_rows(values_only=True))
    first = next(r for r in rows if r[1] == "006_1_1")
    ws.append(list(first))  # the same interval again
    ws.append([first[0], "006_1_9", "1", 5000, 5005, 5010, 11, "Micro - 1/2", None, None])
    book.save(path)
    video = next(v for v in longvideo.load("samm_lv", samm_lv) if v.name == "006_1")
    assert [(i.onset, i.offset) for i in video.intervals].count((first[3], first[5])) == 1
    assert all(i.onset < 5000 for i in video.intervals)
    notes = " ".join(video.notes)
    assert "annotated twice: counted once" in notes and "5000-5010 lies outside" in notes


@pytest.mark.parametrize("fps", [1.0, 2.5])
def test_a_frame_rate_that_cannot_tell_micro_from_macro_is_refused(fps):
    """Before: at 1 fps both kinds' k were 1, and 52 "micro" intervals of 2-3 s came out."""
    with pytest.raises(DataError, match=rf"at {fps:g} fps a micro-expression's k is"):
        signal.SpotSettings().ks(fps)
    assert signal.SpotSettings().ks(30.0) == {"micro": 6, "macro": 18}


def test_a_copied_video_folder_is_an_error_naming_both(long_db, tmp_path):
    """Before: folders ``a`` and ``A`` (CAS(ME)^3), or a ``... copy`` beside a CAS(ME)^2 video,
    and one was picked silently."""
    for db, sub in (("casme3", "CASME3"), ("casme_sq", "CASME_sq")):
        root = tmp_path / sub
        shutil.copytree(long_db[db], root)
        video = longvideo.load(db, root)[0]
        folder = Path(video.folder)
        folder = folder.parent if folder.name == "color" else folder  # CAS(ME)^3: <video>/color
        twin = folder.with_name(folder.name.upper() if db == "casme3" else folder.name + " copy")
        shutil.copytree(folder, twin)
        with pytest.raises(DataError, match=r"the video is in (two|2) folders, .* keep one"):
            longvideo.load(db, root)


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG signature, an IHDR stating ``width x height`` and IEND: a header without pixels, as
    a decompression bomb's header reads."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def test_a_frame_of_another_size_or_past_the_pixel_limit_is_refused(long_db, tmp_path):
    """Before: a 20x15 frame in a long video gave a cv2 traceback in crop_resize, a larger one a
    crop from the wrong place; a 20000x20000 PNG was decoded (1.1 GB, 24 s) and spotted."""
    from merjax.data import frames

    root = tmp_path / "CASME_sq"
    shutil.copytree(long_db["casme_sq"], root)
    video = longvideo.load("casme_sq", root)[0]
    small = video.paths()[5]
    cv2.imwrite(small, np.full((15, 20), 100, np.uint8))
    with pytest.raises(DataError, match=r"is 20x15, the video's first frame \d+x\d+"):
        signal.read_frames(video.paths(), 16, where=video.name)
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_header_only(20000, 20000))
    with pytest.raises(DataError, match=r"states 20000x20000 pixels, above merjax's limit"):
        frames.read_gray(bomb)
    for img in (np.zeros((37, 53), np.uint8),):
        for ext in (".png", ".jpg", ".bmp"):
            data = cv2.imencode(ext, img)[1].tobytes()
            assert frames.stated_size(data) == (37, 53), ext


def _noise_videos(long_db) -> tuple[longvideo.LongVideo, np.ndarray, dict[str, np.ndarray]]:
    """A tiny synthetic long video (expressions, blinks, a moving head) as face crops, and two
    videos of the same length with nothing but noise: its first frame held still under sensor
    noise, and frames of independent uniform noise."""
    video = longvideo.load("casme_sq", long_db["casme_sq"])[0]
    settings = signal.SpotSettings()
    frames = signal.read_frames(video.paths(), settings.size, where=video.name).frames_FxHxW
    rng = np.random.default_rng(0)
    still = np.repeat(frames[:1].astype(np.float32), len(frames), 0)
    noise = {
        "sensor": np.clip(still + rng.normal(0, 3, still.shape), 0, 255).astype(np.uint8),
        "uniform": rng.integers(0, 256, still.shape, dtype=np.uint8),
    }
    return video, frames, noise


def test_noise_alone_spots_nothing_and_expressions_clear_the_floor(long_db):
    """Before: a relative threshold found peaks in any signal, and pure noise gave micro and
    macro intervals. A peak must now clear the video's own noise floor; in a video with
    expressions, no peak the threshold found is under it."""
    video, frames, noise = _noise_videos(long_db)
    numbers = list(range(len(frames)))
    no_floor = signal.SpotSettings(noise_margin=None)
    for name, fr in noise.items():
        before = signal.spot(fr, video.fps, numbers, no_floor)
        assert before.intervals, f"{name}: without the floor, noise is spotted"
        after = signal.spot(fr, video.fps, numbers, signal.SpotSettings())
        assert after.intervals == [], f"{name}: {after.intervals}"
        assert sum(after.below_floor.values()) > 0, "the floor, not the threshold, drops them"
    real = signal.spot(frames, video.fps, video.numbers, signal.SpotSettings())
    assert real.intervals and real.below_floor == {"micro": 0, "macro": 0}
    assert real.intervals == signal.spot(frames, video.fps, video.numbers, no_floor).intervals
    for kind in KINDS:
        spread = signal.noise_spread(real.signals[kind], real.ks[kind])
        assert 0 < spread and real.floors[kind] > np.median(real.signals[kind][real.ks[kind] :])


def test_noise_alone_spots_nothing_in_a_stream(long_db):
    """The stream decides by the same floor, over the signal so far."""
    video, frames, noise = _noise_videos(long_db)
    for margin, spots in ((None, True), (3.0, False)):
        settings = signal.SpotSettings(noise_margin=margin)
        spotter = stream.StreamSpotter(video.fps, settings, crop="none")
        found = [d for f in noise["sensor"] for d in spotter.push(f)] + spotter.flush()
        assert bool(found) == spots, found


def test_the_noise_spread_is_the_noise_not_the_expressions():
    """The spread measured from frame-to-frame differences: Gaussian noise of spread 0.1 reads
    about 0.1 whether or not a slow bump of 10 spreads rises through half of the signal."""
    rng = np.random.default_rng(0)
    n = 4000
    noise = rng.normal(0, 0.1, n)
    bump = np.r_[np.sin(np.linspace(0, np.pi, n // 2)) ** 2, np.zeros(n - n // 2)]
    for s in (noise, noise + bump):
        assert 0.09 < signal.noise_spread(s, 0) < 0.11
    assert signal.noise_floor(noise, 0, None) == -np.inf
    assert signal.noise_floor(np.zeros(50), 0, 3.0) == 0.0


def test_a_missing_casme3_annotation_names_the_official_xls(long_db, tmp_path):
    """Before: a root without the annotation named only the ``.xlsx`` copy the loader also
    reads, not the ``.xls`` the database ships with."""
    root = tmp_path / "CASME3"
    shutil.copytree(long_db["casme3"], root)
    for p in root.rglob("CAS(ME)3_part_A_v2.xls*"):
        p.unlink()
    with pytest.raises(DataError, match=r"no 'CAS\(ME\)3_part_A_v2\.xls'.*re-saved as \.xlsx"):
        longvideo.load("casme3", root)

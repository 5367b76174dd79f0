"""Faults of a stream (``predict --spot``, :mod:`merjax.spotting.stream`): a source that cannot
be opened or is too short, Ctrl-C, no face, a variable frame rate.

Each test failed on the code before its fix, in the way its docstring says (README,
Reliability: the table names each test).
"""

from __future__ import annotations

import csv
import os
import re
import signal as signal_module

import cv2
import numpy as np
import pytest

from merjax import files, inference, predict
from merjax.errors import DataError, Interrupted
from merjax.flow import FlowSettings
from merjax.spotting import signal, stream


@pytest.mark.slow
def test_an_interrupted_stream_keeps_what_was_spotted(stream_files, long_db, tmp_path):
    video, model_dir = stream_files
    model = inference.load(model_dir)
    source = stream.open_source(video=video)
    frames = list(source.frames)

    def cut():
        yield from frames[:300]
        raise KeyboardInterrupt

    cut_source = stream.FrameSource(cut(), source.fps, "long.avi", [])
    out = tmp_path / "kept.csv"
    with pytest.raises(Interrupted, match="interrupted after 300 frames of long.avi; .* kept in"):
        predict.spot_stream(model, cut_source, out=out, emit=lambda _: None)
    rows = list(csv.DictReader(open(out)))
    full = tmp_path / "full.csv"
    predict.spot_stream(
        model, stream.FrameSource(iter(frames), source.fps, "x", []), out=full, emit=lambda _: None
    )
    timeless = [{k: v for k, v in r.items() if k != "latency_s"} for r in rows]
    whole = [{k: v for k, v in r.items() if k != "latency_s"} for r in csv.DictReader(open(full))]
    assert rows and timeless == whole[: len(rows)]


@pytest.mark.slow
@pytest.mark.parametrize(
    "args, message",
    [
        (["--camera=97"], "camera 97 cannot be opened"),
        (["--video=FOLDER", "--spot"], "is a folder, not a video file"),
        (["--video=NOTAVIDEO", "--spot"], "cannot open video"),
        (["--spot"], "give exactly one of"),
        (["--onset=a.jpg", "--apex=b.jpg", "--spot"], "--spot reads a stream"),
        (["--video=SHORT", "--spot"], "spotting needs more than"),
    ],
)
def test_stream_bad_input_is_one_line(args, message, stream_files, tmp_path, command_in_process):
    _, model = stream_files
    (tmp_path / "FOLDER").mkdir()
    (tmp_path / "NOTAVIDEO").write_bytes(b"not a video at all")
    short = tmp_path / "SHORT.avi"
    w = cv2.VideoWriter(str(short), cv2.VideoWriter_fourcc(*"MJPG"), 30, (64, 48))
    for _ in range(10):  # 10 frames: fewer than the macro k (18 at 30 fps)
        w.write(np.full((48, 64, 3), 128, np.uint8))
    w.release()
    paths = {"FOLDER": tmp_path / "FOLDER", "NOTAVIDEO": tmp_path / "NOTAVIDEO", "SHORT": short}
    args = [
        a.split("=")[0] + "=" + str(paths[a.split("=")[1]]) if a.split("=")[-1] in paths else a
        for a in args
    ]
    code, _, err = command_in_process(predict.main, f"--model={model}", *args)
    assert code == 1 and message in err, err
    assert "Traceback" not in err


def test_a_stream_without_a_face_is_spotted_on_whole_frames_and_says_so():
    spotter = stream.StreamSpotter(30.0, signal.SpotSettings(flow=FlowSettings(), batch=16))
    for _ in range(40):
        spotter.push(np.full((48, 64), 120, np.uint8))
    spotter.flush()
    assert spotter.box is None
    whole = "no face found on the first frame of the stream; using the whole frame"
    assert spotter.notes == [whole]


class _TimedCapture:
    """A stand-in for cv2.VideoCapture whose frames carry the given timestamps (OpenCV's
    position after each read), since OpenCV writes constant-rate files only."""

    def __init__(self, times_ms, fps):
        self.times_ms, self.fps, self.read_count = list(times_ms), fps, 0

    def isOpened(self):  # noqa: N802 -- OpenCV's name
        return True

    def read(self):
        if self.read_count == len(self.times_ms):
            return False, None
        self.read_count += 1
        return True, np.zeros((8, 8), np.uint8)

    def get(self, prop):
        if prop == cv2.CAP_PROP_FPS:
            return self.fps
        return self.times_ms[self.read_count - 1] if prop == cv2.CAP_PROP_POS_MSEC else 0.0

    def release(self):
        pass


@pytest.mark.parametrize("variable", [False, True])
def test_a_variable_frame_rate_is_noted_once_and_every_frame_kept(variable, tmp_path, monkeypatch):
    """A phone's video states 30 fps but drops to 15 in low light after 2 s: the note must
    come (no check, or one that never looks past the first frame, misses it), once, and only
    then -- a constant-rate file whose container rounds times to the millisecond is not noted
    (an exact-equality check would be). No frame is dropped either way."""
    frame = 1000 / 30
    steady = [round(i * frame) for i in range(120)]
    slowed = [i * frame if i < 60 else 2000 + (i - 60) * 2 * frame for i in range(120)]
    times = slowed if variable else steady
    monkeypatch.setattr(cv2, "VideoCapture", lambda _: _TimedCapture(times, 30.0))
    (tmp_path / "phone.mp4").write_bytes(b"")
    source = stream.open_source(video=tmp_path / "phone.mp4")
    assert len(list(source.frames)) == 120 and source.fps == 30.0
    noted = [n for n in source.notes if "variable frame rate" in n]
    assert len(noted) == (1 if variable else 0)
    assert not stream.drifts(0.0, 50, 30.0), "a container without timestamps says nothing"


@pytest.mark.parametrize("index", [-1, 99999999999, 256])
def test_a_camera_index_out_of_range_is_refused_before_opencv(
    index, stream_files, tmp_path, command_in_process
):
    """Before: --camera=-1 crashed inside OpenCV (exit 139), a huge one gave a cv2 traceback."""
    _, model = stream_files
    code, _, err = command_in_process(predict.main, f"--model={model}", f"--camera={index}")
    assert code == 1 and f"--camera must be a camera index 0..255, got {index}" in err, err
    assert "Traceback" not in err


def _frames_then_sigterm(video, after: int):
    """``open_source`` whose frames send this process SIGTERM after ``after`` frames, as a
    ``kill`` from outside would while a stream runs."""
    real = stream.open_source

    def open_source(video=None, camera=None, fps=None):
        source = real(video=video)

        def frames():
            for i, f in enumerate(source.frames):
                if i == after:
                    os.kill(os.getpid(), signal_module.SIGTERM)
                yield f

        return stream.FrameSource(frames(), source.fps, source.name, source.notes)

    return open_source


@pytest.mark.slow
def test_sigterm_during_a_stream_keeps_what_was_spotted(
    stream_files, tmp_path, monkeypatch, command_in_process
):
    """Before: SIGTERM left the previous run's CSV at --out, the new rows in --out.partial, and
    exit code 143 with no message."""
    video, model = stream_files

    def not_handled(signum, frame):
        raise AssertionError("SIGTERM reached the test: the command line did not handle it")

    previous = signal_module.signal(signal_module.SIGTERM, not_handled)
    try:
        out = tmp_path / "spots.csv"
        out.write_text("the previous run's rows\n")
        monkeypatch.setattr(stream, "open_source", _frames_then_sigterm(video, 300))
        code, stdout, err = command_in_process(
            predict.main, f"--model={model}", f"--video={video}", "--spot", f"--out={out}"
        )
    finally:
        signal_module.signal(signal_module.SIGTERM, previous)
    assert code == 143, err
    assert re.fullmatch(
        r"interrupted after 30\d frames of .*long.avi; \d+ intervals kept in .*\n", err
    ), err
    rows = list(csv.DictReader(open(out)))
    printed = [line for line in stdout.splitlines() if line.startswith(("micro ", "macro "))]
    assert len(rows) == len(printed)
    assert not (tmp_path / "spots.csv.partial").exists()
    assert "previous run" not in out.read_text()


@pytest.mark.slow
def test_a_second_stream_into_the_same_output_is_refused(stream_files, tmp_path):
    """Before: two streams with one --out spliced their rows into one file."""
    video, model_dir = stream_files
    model = inference.load(model_dir)
    out = tmp_path / "spots.csv"
    with files.OutputLock(out):  # a first stream writing there
        with pytest.raises(files.InUse, match=r"spots.csv' is being written by process \d+"):
            predict.spot_stream(model, stream.open_source(video=video), out=out, emit=print)
    assert not out.exists() and not (tmp_path / "spots.csv.partial").exists()
    predict.spot_stream(model, stream.open_source(video=video), out=out, emit=lambda _: None)
    assert out.exists()


def test_a_video_that_states_no_frame_rate_asks_for_fps(tmp_path, monkeypatch):
    """Before: a rate of 0 in the header was taken as some default (30 here, OpenCV's 25
    elsewhere) with no word; spotting's windows are in seconds, so the rate must be known."""
    (tmp_path / "v.avi").write_bytes(b"")
    monkeypatch.setattr(cv2, "VideoCapture", lambda _: _TimedCapture([0.0] * 40, 0.0))
    with pytest.raises(DataError, match="states no frame rate: give it with --fps"):
        stream.open_source(video=tmp_path / "v.avi")
    source = stream.open_source(video=tmp_path / "v.avi", fps=200.0)
    assert source.fps == 200.0
    monkeypatch.setattr(cv2, "VideoCapture", lambda _: _TimedCapture([0.0] * 40, 30.0))
    source = stream.open_source(video=tmp_path / "v.avi", fps=25.0)
    assert source.fps == 25.0 and "states 30 fps; spotted at --fps=25" in source.notes[0]


def test_a_truncated_video_is_noted_and_its_cut_frame_dropped(stream_files, tmp_path):
    """Before: an MJPG AVI cut in half read its first half, the last frame half-decoded (OpenCV
    gives no error), with no note. Now the shortfall against the header's count is noted and the
    frame the file was cut in is neither spotted nor classified; a whole file keeps every frame
    and says nothing."""
    rng = np.random.default_rng(0)
    whole = tmp_path / "whole.avi"
    writer = cv2.VideoWriter(str(whole), cv2.VideoWriter_fourcc(*"MJPG"), 30, (64, 48))
    for _ in range(40):
        writer.write(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    writer.release()
    source = stream.open_source(video=whole)
    all_frames = list(source.frames)
    assert len(all_frames) == 40 and source.notes == []

    cut = tmp_path / "cut.avi"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    read = cv2.VideoCapture(str(cut))
    raw = 0
    while read.read()[0]:
        raw += 1
    read.release()
    assert 1 < raw < 40, "the cut file reads part of its frames"
    source = stream.open_source(video=cut)
    kept = list(source.frames)
    assert len(kept) == raw - 1
    assert [n for n in source.notes if f"holds {raw} of the 40 frames" in n], source.notes
    for a, b in zip(kept, all_frames[: len(kept)], strict=True):
        np.testing.assert_array_equal(a, b)

    model = inference.load(stream_files[1])
    whole_res = predict.predict_video(model, whole, window=3, crop="none")
    cut_res = predict.predict_video(model, cut, window=3, crop="none")
    assert whole_res["num_frames"] == 40 and whole_res["truncated"] == ""
    assert cut_res["num_frames"] == raw - 1 and f"holds {raw} of the 40" in cut_res["truncated"]

"""Faults a user meets: damaged data, killed runs, full disks, two runs in one workdir.

One test (or more) per item of the fault campaign (README "Reliability"); each failed on the
code before the fixes, in the way its docstring says.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import jax
import numpy as np
import openpyxl
import pytest

from merjax import checkpoint, files, inference, models, report, runner, train
from merjax.data import cache, casme2, composite, frames, samm, smic
from merjax.errors import DataError, Interrupted
from merjax.flow import FlowSettings, HornSchunckSettings, horn_schunck
from merjax.train import strategies

from conftest import edit_cell
from toy import ToyCNN

ROOT = Path(__file__).resolve().parents[1]


def _rows(path: Path) -> tuple[openpyxl.Workbook, list]:
    book = openpyxl.load_workbook(path)
    ws = book.worksheets[0]
    header = next(r for r in ws.iter_rows() if any(c.value == "Filename" for c in r))
    return book, [
        r for r in ws.iter_rows(min_row=header[0].row + 1) if any(c.value is not None for c in r)
    ]


_set = edit_cell


# --------------------------------------------------------------------------- 1. the flow cache


def test_1_cache_sees_a_changed_frame(db, tmp_path):
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


# --------------------------------------------------------------------------- 2. truncated images


def test_2_truncated_jpeg_is_undecodable(db):
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


def test_2_whole_images_decode_as_opencv_reads_them(tiny_db):
    for s in casme2.load(tiny_db / "CASME2")[:3]:
        np.testing.assert_array_equal(
            frames.read_gray(s.apex_path), cv2.imread(str(s.apex_path), cv2.IMREAD_GRAYSCALE)
        )
    png = tiny_db.parent / "x.png"
    cv2.imwrite(str(png), np.arange(64, dtype=np.uint8).reshape(8, 8))
    assert frames.read_gray(png).shape == (8, 8)
    assert frames.incomplete(png.read_bytes()[:-6]) == "a PNG without its IEND chunk"


# --------------------------------------------------------------------------- 3. empty databases


def test_3_a_database_without_rows_is_an_error(db):
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


def test_3_a_composite_that_loses_a_third_says_so(db):
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


# --------------------------------------------------------------------------- 4. duplicate rows


def test_4_a_duplicated_row_is_named_not_counted_twice(db):
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


# --------------------------------------------------------------------------- 5. apex == offset


def test_5_apex_at_offset_with_frames_past_the_offset(db):
    """Before: accepted only when the folder ended at the apex; rejected when frames followed."""
    s = next(x for x in casme2.load(db / "CASME2") if "apex == offset" in x.note)
    assert s.augment_frame == s.apex - 1
    later = s.apex_path.with_name(s.apex_path.name.replace(str(s.apex), str(s.apex + 1)))
    shutil.copy(s.apex_path, later)  # the folder now holds a frame past the offset
    t = next(x for x in casme2.load(db / "CASME2") if x.clip == s.clip)
    assert t.apex == t.offset and t.augment_frame == t.apex + 1 and "apex == offset" not in t.note


# --------------------------------------------------------------------------- 6. flow inputs


def test_6_flow_refuses_nan_colour_and_signed_frames():
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


# --------------------------------------------------------------------------- 7. learning rate,
# divergence


X = np.random.default_rng(0).normal(size=(24, 8, 8, 1)).astype(np.float32)
Y = np.random.default_rng(1).integers(0, 3, 24).astype(np.int32)
SUBJ = [f"s{i // 6}" for i in range(24)]
TOY = ToyCNN(1, num_classes=3)
LOOP = train.Execution(epochs_per_call=1, strategy="loop")


@pytest.mark.parametrize("lr", [-1.0, 0.0, float("nan"), float("inf")])
def test_7_learning_rate_must_be_positive_and_finite(lr):
    with pytest.raises(ValueError, match="learning_rate must be a positive finite number"):
        train.TrainConfig(learning_rate=lr)


def test_7_an_exploding_loss_stops_the_run():
    """Before: only a non-finite loss stopped training; 1e6 went on."""
    cfg = train.TrainConfig(epochs=3, batch_size=8)
    strict = train.Execution(epochs_per_call=1, strategy="loop", max_loss=1e-3)
    with pytest.raises(
        train.LossExploded, match=r"above 0.001 in run 0 \(seed 0, held out s0\) at epoch 2"
    ):
        train.train_loso(TOY, X, X, Y, SUBJ, cfg, strict, progress=None)
    wild = dataclasses.replace(cfg, learning_rate=1e4)
    with pytest.raises(train.Diverged):
        train.train_loso(TOY, X, X, Y, SUBJ, wild, LOOP, progress=None)


# --------------------------------------------------------------------------- 8. nothing
# half-written


def _model_dir(tmp_path: Path, seed: int) -> Path:
    module, rep = models.by_name("vy-1cl")
    spec = inference.ModelSpec("vy-1cl", rep, 8, FlowSettings(size=(16, 16)), tuple("abcde"))
    variables = models.init(module, jax.random.key(seed), (8, 8, 1))
    return inference.save(
        tmp_path / "model",
        spec,
        dict(variables, mean=np.zeros((8, 8, 1), np.float32), scale=np.float32(1)),
    )


def test_8_a_save_killed_midway_leaves_the_old_model(tmp_path, monkeypatch):
    """Before: save() deleted the old folder first; a kill during the save left no model."""
    path = _model_dir(tmp_path, 0)
    before = inference.load(path).variables

    def killed(folder, tree):
        Path(folder).mkdir()
        (Path(folder) / "half").write_text("x")
        raise KeyboardInterrupt  # the kill

    monkeypatch.setattr(checkpoint, "save_tree", killed)
    with pytest.raises(KeyboardInterrupt):
        _model_dir(tmp_path, 1)
    monkeypatch.undo()
    after = inference.load(path).variables
    for x, y in zip(jax.tree.leaves(before), jax.tree.leaves(after), strict=True):
        np.testing.assert_array_equal(x, y)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    _model_dir(tmp_path, 1)  # a save that completes replaces it
    replaced = jax.tree.leaves(inference.load(path).variables["params"])
    assert not all(
        np.array_equal(x, y)
        for x, y in zip(replaced, jax.tree.leaves(before["params"]), strict=True)
    )


def test_8_a_report_is_written_whole_or_not_at_all(tmp_path, monkeypatch):
    """Before: each table was written as it was made, so a failure left old and new files mixed."""
    old = report.Report(tmp_path, "run 1", "p", "s")
    old.table("a", ["x"], [["old"]], title="A")
    old.table("b", ["x"], [["old"]], title="B")
    old.write({"run": 1})
    new = report.Report(tmp_path, "run 2", "p", "s")
    new.table("a", ["x"], [["new"]], title="A")
    new.table("b", ["x"], [["new"]], title="B")
    calls = []

    def full_disk(fd):
        calls.append(fd)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space"):
        new.write({"run": 2})
    monkeypatch.undo()
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes() == b"x\r\nold\r\n"
    assert json.loads((tmp_path / "summary.json").read_text())["run"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "a.csv",
        "a.md",
        "b.csv",
        "b.md",
        "report.md",
        "summary.json",
    ]


# --------------------------------------------------------------------------- 9. one run per workdir


_HOLD = """
import sys, time
from merjax import files
with files.WorkdirLock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(60)
"""


def test_9_a_second_run_on_a_busy_workdir_is_refused(tmp_path):
    """Before: both runs proceeded, and the second deleted the first's checkpoints."""
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(
            files.WorkdirBusy, match=rf"workdir '{tmp_path}' is in use by process {holder.pid} on "
        ):
            runner.run(
                "class_average_flow",
                tmp_path,
                profile="tiny",
                cache_dir=tmp_path / "cache",
                progress=None,
            )
        with pytest.raises(files.WorkdirBusy):
            train.train_loso(
                TOY, X, X, Y, SUBJ, train.TrainConfig(epochs=1), workdir=tmp_path, progress=None
            )
    finally:
        holder.kill()
        holder.wait()
    seen = []
    with files.WorkdirLock(tmp_path, seen.append):  # the dead holder's lock is stale: taken over
        pass
    assert seen and f"stale lock of process {holder.pid}" in seen[0]


CKPT = train.TrainConfig(epochs=3, batch_size=8)
CKPT_EVERY_EPOCH = train.Execution(epochs_per_call=1, strategy="loop", checkpoint_every=1)


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory) -> Path:
    """A workdir as a run of CKPT killed after its epoch-2 checkpoint leaves it (checkpoints of
    epochs 1 and 2), made once; tests damage their own copy (``killed``)."""
    path = tmp_path_factory.mktemp("killed")
    killed = dataclasses.replace(CKPT_EVERY_EPOCH, stop_after_epoch=2)
    train.train_loso(TOY, X, X, Y, SUBJ, CKPT, killed, workdir=path, progress=None)
    return path


@pytest.fixture
def killed(killed_run, tmp_path) -> Path:
    """A private copy of ``killed_run`` that a test may damage."""
    return Path(shutil.copytree(killed_run, tmp_path / "workdir"))


def test_9_checkpoints_of_another_configuration_are_moved_aside(killed):
    seen = []
    other = dataclasses.replace(CKPT, learning_rate=5e-4, epochs=2)
    train.train_loso(
        TOY, X, X, Y, SUBJ, other, CKPT_EVERY_EPOCH, workdir=killed, progress=seen.append
    )
    assert any("moved them to checkpoints.other-config" in m for m in seen)
    assert (killed / "checkpoints.other-config" / "2").is_dir()
    assert (killed / "checkpoints" / "2").is_dir()


# --------------------------------------------------------------------------- 10. a full disk


@pytest.mark.slow
def test_10_a_full_disk_is_one_line_and_the_rerun_finishes(tmp_path, tiny_db):
    """Before: the right error line, and 17 orbax tracebacks with it."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(mnt)], capture_output=True
    ).returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        args = [
            sys.executable,
            "-m",
            "merjax.main",
            "--experiment=input_study",
            "--profile=tiny",
            f"--workdir={mnt / 'w'}",
            f"--cache_dir={tmp_path / 'cache'}",
            "--set=nets=vy-3cl",
            "--set=execution.checkpoint_every=1",
        ]
        env = dict(os.environ, JAX_PLATFORMS="cpu")
        env.pop("MERJAX_TRACEBACK", None)
        out = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
        assert out.returncode == 1
        assert (
            out.stderr.startswith("error: cannot write the checkpoint of epoch 1")
            and "no space left" in out.stderr
        )
        assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr, out.stderr
        subprocess.run(["mount", "-o", "remount,size=20m", str(mnt)], check=True)
        again = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
        assert again.returncode == 0, again.stderr
        assert (mnt / "w" / "report.md").is_file()
    finally:
        subprocess.run(["umount", str(mnt)])


# --------------------------------------------------------------------------- 11, 13. damaged
# checkpoints


def test_11_a_truncated_checkpoint_falls_back_to_an_older_one(killed):
    """Before: every rerun failed with orbax tracebacks although epoch 1's checkpoint was whole.
    The resumed run predicts as an uninterrupted one: the same programs on the same states."""
    whole = train.train_loso(TOY, X, X, Y, SUBJ, CKPT, LOOP, progress=None)
    for data in (killed / "checkpoints" / "2" / "default" / "d").iterdir():  # what orbax reads
        data.write_bytes(data.read_bytes()[:10])
    seen = []
    resumed = train.train_loso(
        TOY, X, X, Y, SUBJ, CKPT, CKPT_EVERY_EPOCH, workdir=killed, progress=seen.append
    )
    assert any("checkpoint of epoch 2" in m and "does not restore" in m for m in seen)
    assert any("resumed from the checkpoint of epoch 1" in m for m in seen)
    assert (killed / "checkpoints" / "2.damaged").is_dir()  # kept, out of the way
    np.testing.assert_allclose(resumed.logits, whole.logits, atol=1e-5)


def test_13_an_emptied_metadata_file_is_named(killed):
    """Before: 'error: Expecting value: line 1 column 1 (char 0)' and nothing else."""
    shutil.rmtree(killed / "checkpoints" / "2")  # as if killed after epoch 1 (the test's copy)
    meta = next((killed / "checkpoints" / "1").rglob("_METADATA"))
    meta.write_text("")
    with pytest.raises(
        checkpoint.CheckpointError,
        match=rf"no checkpoint in {killed / 'checkpoints'} restores "
        rf"\(epoch 1: {meta} is empty or not JSON\); move that folder away",
    ):
        train.train_loso(TOY, X, X, Y, SUBJ, CKPT, CKPT_EVERY_EPOCH, workdir=killed, progress=None)


# --------------------------------------------------------------------------- 12. a damaged flow
# cache


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_12_a_damaged_flow_cache_is_a_miss(tiny_db, tmp_path, damage):
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


# --------------------------------------------------------------------------- 14. messages


def test_14_decode_errors_name_row_and_file_and_skips_say_it_once(db):
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


# --------------------------------------------------------------------------- 15. predict's flags


def test_15_predict_refuses_a_negative_window_and_unwritable_outputs(tmp_path):
    """Before: --window=-1 meant 'auto', and a folder given as --out failed after the work."""
    from merjax import predict

    with pytest.raises(DataError, match="window must be >= 0"):
        predict.predict_video(None, tmp_path / "v.avi", window=-1)
    with pytest.raises(DataError, match="--out .* is a folder"):
        predict.writable_file(str(tmp_path), "--out")
    with pytest.raises(DataError, match="--export .*cannot write in '/proc/merjax'"):
        predict.writable_file("/proc/merjax/m.jaxexport", "--export")
    assert (
        predict.writable_file(str(tmp_path / "new" / "p.csv"), "--out")
        == tmp_path / "new" / "p.csv"
    )


# --------------------------------------------------------------------------- 16. text cells


def test_16_an_objective_class_written_as_text(db):
    clip = casme2.load(db / "CASME2")[0].clip
    _set(db / "CASME2" / casme2.OBJECTIVE, clip, "Objective Class", " 3 ")
    got = next(s for s in casme2.load(db / "CASME2") if s.clip == clip)
    assert got.label == 2 and got.class_name == "III"
    sclip = samm.load(db / "SAMM")[0].clip
    _set(db / "SAMM" / samm.CODES, sclip, "Objective Classes", "1")
    assert next(s for s in samm.load(db / "SAMM") if s.clip == sclip).label == 0


# =========================================================================== second campaign
# Items 1-15 of the second fault campaign are tests 17-31. Each failed on the code before the
# fixes, in the way its docstring says.


def test_17_float_frames_outside_0_1_are_refused():
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


def test_18_12_bit_data_in_16_bit_files_is_named_and_can_be_scaled(db, caplog):
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


def test_19_two_copies_of_a_clip_folder_are_refused(db):
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


def test_20_more_folds_than_subjects_is_refused_before_the_flows(tiny_db, tmp_path):
    """Before: --set=num_folds=100 on 6 subjects ran 6 folds and reported 100."""
    with pytest.raises(ValueError, match=r"num_folds=100 but .* has 6 subjects"):
        runner.run(
            "input_study",
            tmp_path / "w",
            profile="tiny",
            cache_dir=tiny_db.parent,
            overrides=["num_folds=100"],
            progress=None,
        )
    assert not list(tiny_db.parent.glob("flows-*num*"))
    assert not (tmp_path / "w" / "runs").exists()


def _edit_model_json(path: Path, edit) -> None:
    meta = path / "model.json"
    d = json.loads(meta.read_text())
    edit(d)
    meta.write_text(json.dumps(d))


@pytest.mark.parametrize(
    "field, edit",
    [
        ("flow.method", lambda d: d["flow"].update(method="tvl1")),
        ("net", lambda d: d.update(net="vx-1cl")),  # the same parameter shapes as vy-1cl
        ("representation", lambda d: d.update(representation="vx")),
        ("flow.horn_schunck.smoothness", lambda d: d["flow"]["horn_schunck"].update(smoothness=2)),
        ("class_names", lambda d: d.update(class_names=list("edcba"))),
    ],
)
def test_21_an_edited_model_json_is_refused_naming_the_field(tmp_path, field, edit):
    """Before: each of these loaded, and predicted with a flow or network the weights were not
    trained for."""
    path = _model_dir(tmp_path, 0)
    _edit_model_json(path, edit)
    with pytest.raises(DataError, match=rf"model.json': {field} is .* but the weights were"):
        inference.load(path)


def test_21_an_older_model_folder_loads_with_a_notice(tmp_path, caplog):
    path = _model_dir(tmp_path, 0)
    (path / inference.BINDING).unlink()  # as merjax wrote them before bindings
    caplog.set_level("WARNING")
    inference.load(path)
    assert any("saved by an older merjax" in r.getMessage() for r in caplog.records)


@pytest.mark.slow
def test_22_jax_enable_x64_changes_nothing(tiny_db, tmp_path):
    """Before: JAX_ENABLE_X64=1 (set for other JAX code) crashed after the flows: initialisers
    made float64 kernels that lax.conv refused beside float32 inputs."""
    run = functools.partial(
        runner.run,
        "input_study",
        profile="tiny",
        cache_dir=tiny_db.parent,
        overrides=["nets=vy-1cl", "headline=vy-1cl"],
        progress=None,
    )
    plain = run(tmp_path / "a")
    with jax.enable_x64(True):
        wide = run(tmp_path / "b")
        module, _ = models.by_name("vy-1cl")
        params = models.init(module, jax.random.key(0), (8, 8, 1))["params"]
    assert wide["configs"]["vy-1cl"]["accuracy"] == plain["configs"]["vy-1cl"]["accuracy"]
    assert {a.dtype for a in jax.tree.leaves(params)} == {np.dtype("float32")}


def test_23_nets_an_experiment_cannot_report_are_refused_before_training(tiny_db, tmp_path):
    """Before: --set=nets=resnet8 on input_study trained, saved the model, then failed with
    'not enough values to unpack' and wrote no report."""
    run = functools.partial(runner.run, profile="tiny", cache_dir=tmp_path / "c", progress=None)
    with pytest.raises(ValueError, match="input_study reports the shallow CNNs .* not 'resnet8'"):
        run("input_study", tmp_path / "w", overrides=["nets=resnet8", "headline=resnet8"])
    with pytest.raises(ValueError, match="depth_study reports the ResNet depth variants"):
        run("depth_study", tmp_path / "w", overrides=["nets=vy-3cl"])
    with pytest.raises(ValueError, match="nets: the shallow CNNs have 1 to 4 conv layers"):
        run("similarity", tmp_path / "w", overrides=["nets=vy-9cl"])
    assert not (tmp_path / "c").exists() and not (tmp_path / "w" / "runs").exists()


def test_24_repeated_or_huge_seeds_are_refused_up_front(tmp_path, command_in_process):
    """Before: --seeds=0,0 trained, then failed in numpy; a 20-digit seed gave a 58-line JAX
    traceback."""
    from merjax import main

    for seeds, words in (("0,0", "seeds must differ: \\[0\\]"), ("12345678901234567890", "0..2")):
        code, _, err = command_in_process(
            main.main,
            "--experiment=class_average_flow",
            "--profile=tiny",
            f"--seeds={seeds}",
            f"--workdir={tmp_path / 'w'}",
            f"--cache_dir={tmp_path / 'c'}",
        )
        assert code == 1 and re.search(words, err) and err.count("\n") == 1, err


def test_25_unwritable_folders_are_named_at_start(tmp_path, tiny_db, command_in_process):
    """Before: an unwritable --cache_dir failed after the flows with raw errno text ('[Errno 17]
    File exists'), and so did a bad --workdir."""
    from merjax import main

    (tmp_path / "file").write_text("x")
    for flags_, words in (
        (["--cache_dir=FILE"], "--cache_dir '.*file' is a file, not a folder"),
        (["--cache_dir=/proc/merjax"], "--cache_dir '/proc/merjax': cannot write there"),
        (["--workdir=/proc/merjax"], "--workdir '/proc/merjax': cannot write there"),
    ):
        args = [a.replace("FILE", str(tmp_path / "file")) for a in flags_]
        code, _, err = command_in_process(
            main.main,
            "--experiment=class_average_flow",
            "--profile=tiny",
            f"--workdir={tmp_path / 'w'}",
            f"--cache_dir={tmp_path / 'c'}",
            *args,
        )
        assert code == 1 and re.search(words, err) and "Errno" not in err, err
    # A flow cache that cannot be written at the end is a warning; the flows are there.
    s = composite.megc2018(tiny_db / "CASME2", tiny_db / "SAMM")[:2]
    settings = FlowSettings(size=(16, 16), horn_schunck=HornSchunckSettings(num_iter=3))
    cache.cache_path(tmp_path / "cc", "x", settings).mkdir(parents=True)  # a folder in its way
    seen = []
    flows, hit = cache.load_or_compute(s, settings, tmp_path / "cc", "x", progress=seen.append)
    assert not hit and flows.apex.shape[0] == 2
    assert any(m.startswith("warning: cannot write the flow cache") for m in seen), seen


def test_26_ctrl_c_during_training_is_one_line_naming_the_last_checkpoint(monkeypatch):
    """Before: a 70-line traceback."""
    build = strategies.build
    calls = []

    def interrupted_on_the_third_call(*args, **kwargs):
        strategy = build(*args, **kwargs)

        def train_call(*a):
            calls.append(1)
            if len(calls) == 3:
                raise KeyboardInterrupt
            return strategy.train(*a)

        return strategy._replace(train=train_call)

    monkeypatch.setattr(strategies, "build", interrupted_on_the_third_call)
    execution = dataclasses.replace(CKPT_EVERY_EPOCH, checkpoint_every=2)
    with pytest.raises(Interrupted, match="interrupted at epoch 3; the last checkpoint is epoch 2"):
        train.train_loso(
            TOY, X, X, Y, SUBJ, CKPT, execution, progress=None, workdir=Path(tempfile.mkdtemp())
        )


def test_26_ctrl_c_during_the_flows_is_one_line(tiny_db, monkeypatch, tmp_path):
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


def test_26_the_eta_is_this_process_pace_after_its_first_call(monkeypatch):
    """Before: the ETA divided all the time spent (compiling, restoring a checkpoint) by the
    epochs trained in this process: 1,034 s shown after a resume where about 10 s remained. The
    clock is faked: 100 s for the first call, then 1 s an epoch."""
    from merjax.train import loso

    # t0, then 100 s for the first call (compiling), then 0.5 s between readings (two per epoch)
    clock = iter([0.0] + [100.0 + 0.5 * k for k in range(50)])
    monkeypatch.setattr(loso.time, "perf_counter", lambda: next(clock))
    execution = dataclasses.replace(CKPT_EVERY_EPOCH, checkpoint_every=0)
    longer = dataclasses.replace(CKPT, epochs=6)
    seen = []
    train.train_loso(TOY, X, X, Y, SUBJ, longer, execution, progress=seen.append)
    etas = [float(re.search(r"ETA (\d+) s", m).group(1)) for m in seen if "ETA" in m]
    assert len(etas) == 6 and etas[1:] == [4, 3, 2, 1, 0], etas  # 1 s an epoch, not 100 / epochs


@pytest.mark.slow
def test_26_ctrl_c_of_the_command_line(tmp_path, tiny_db):
    """The whole command line, interrupted by SIGINT while it trains: one line, exit code 130."""
    args = [
        sys.executable,
        "-m",
        "merjax.main",
        "--experiment=input_study",
        "--profile=tiny",
        f"--workdir={tmp_path / 'w'}",
        f"--cache_dir={tiny_db.parent}",
        "--set=nets=vy-1cl",
        "--set=headline=vy-1cl",
        "--set=train.epochs=500",
        "--set=execution.checkpoint_every=1",
    ]
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("MERJAX_TRACEBACK", None)
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    for line in proc.stdout:
        if line.startswith("epoch 3/"):
            proc.send_signal(signal.SIGINT)
            break
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert re.fullmatch(
        r"interrupted at epoch \d+; the last checkpoint is epoch \d+: rerun the same command to "
        r"resume\n",
        err,
    ), err


@pytest.mark.slow
def test_27_weights_of_another_network_are_one_line(tmp_path):
    """Before: the right line, then a 'RuntimeError: Event loop is closed' traceback from orbax's
    failed reads."""
    vy = _model_dir(tmp_path / "a", 0)
    module, rep = models.by_name("vxvy-1cl")
    spec = inference.ModelSpec("vxvy-1cl", rep, 8, FlowSettings(size=(16, 16)), tuple("abcde"))
    variables = models.init(module, jax.random.key(0), (8, 8, 2))
    other = inference.save(
        tmp_path / "b", spec, dict(variables, mean=np.zeros((8, 8, 2), np.float32), scale=1.0)
    )
    shutil.rmtree(vy / "variables")
    shutil.copytree(other / "variables", vy / "variables")
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("MERJAX_TRACEBACK", None)
    out = subprocess.run(
        [sys.executable, "-m", "merjax.predict", f"--model={vy}", "--onset=a.png", "--apex=b.png"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 1
    assert out.stderr.count("\n") == 1 and "are another network's" in out.stderr, out.stderr


def test_28_experiment_files_say_what_is_wrong(tmp_path, monkeypatch, command_in_process):
    """Before: a syntax error gave a traceback, and a run() that returned None gave "'NoneType'
    object does not support item assignment". A bug in the user's own code keeps its
    traceback."""
    from merjax import main

    header = "from merjax.config import base\ndef config(profile):\n    return base(profile)\n"
    (tmp_path / "syntax.py").write_text(header + "def run(ctx)\n    return {}\n")
    (tmp_path / "nothing.py").write_text(header + "def run(ctx):\n    ctx.data()\n")
    (tmp_path / "buggy.py").write_text(header + "def run(ctx):\n    return {}['missing']\n")
    common = ["--profile=tiny", f"--workdir={tmp_path / 'w'}", f"--cache_dir={tmp_path / 'c'}"]
    code, _, err = command_in_process(main.main, f"--experiment={tmp_path / 'syntax.py'}", *common)
    assert code == 1 and re.fullmatch(r"error: .*syntax.py line 4: SyntaxError: .*\n", err), err
    code, _, err = command_in_process(main.main, f"--experiment={tmp_path / 'nothing.py'}", *common)
    assert code == 1 and "run() must return a dict" in err and err.count("\n") == 1, err
    with pytest.raises(KeyError, match="missing"):
        command_in_process(main.main, f"--experiment={tmp_path / 'buggy.py'}", *common)


def test_29_a_sheet_added_before_the_data_is_passed_over(db):
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


def test_30_an_empty_clip_folder_is_named(db):
    """Before: "frame N is not in 'its folder'"."""
    s = casme2.load(db / "CASME2")[0]
    folder = Path(s.onset_path).parent
    for f in folder.iterdir():
        f.unlink()
    with pytest.raises(DataError, match=rf"clip folder '{re.escape(str(folder))}' holds no frames"):
        casme2.load(db / "CASME2")


def test_31_predict_names_float_tiffs_and_folders(tmp_path):
    """Before: a float32 TIFF was 'not an image, or corrupt' and a folder given to --video 'does
    not exist'."""
    from merjax import predict

    tiff = tmp_path / "f.tiff"
    cv2.imwrite(str(tiff), np.random.default_rng(0).random((8, 8)).astype(np.float32))
    with pytest.raises(DataError, match=r"unsupported pixel type \(float32\)"):
        frames.read_gray(tiff)
    with pytest.raises(DataError, match="is a folder, not a video file"):
        predict.predict_video(None, tmp_path)

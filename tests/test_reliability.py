"""Faults a user meets: damaged data, killed runs, full disks, two runs in one workdir.

One test (or more) per item of the fault campaign (README "Reliability"); each failed on the
code before the fixes, in the way its docstring says.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import jax
import numpy as np
import openpyxl
import pytest

from merjax import checkpoint, files, inference, models, report, runner, train
from merjax.data import cache, casme2, composite, frames, samm
from merjax.data.spreadsheets import DataError
from merjax.flow import FlowSettings, HornSchunckSettings, horn_schunck

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

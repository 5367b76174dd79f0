"""Faults around what a run keeps: checkpoints and model folders killed, damaged, edited or of
another network; reports half-written; two runs in one workdir; a full disk.

Each test failed on the code before its fix, in the way its docstring says (README,
Reliability: the table names each test).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from merjax import checkpoint, files, inference, models, report, runner, train
from merjax.errors import DataError
from merjax.flow import FlowSettings

from toy import CKPT, CKPT_EVERY_EPOCH, LOOP, SUBJ, TOY, X, Y


def _model_dir(tmp_path: Path, seed: int) -> Path:
    module, rep = models.by_name("vy-1cl")
    spec = inference.ModelSpec("vy-1cl", rep, 8, FlowSettings(size=(16, 16)), tuple("abcde"))
    variables = models.init(module, jax.random.key(seed), (8, 8, 1))
    return inference.save(
        tmp_path / "model",
        spec,
        dict(variables, mean=np.zeros((8, 8, 1), np.float32), scale=np.float32(1)),
    )


def test_a_model_save_killed_midway_leaves_the_old_model(tmp_path, monkeypatch):
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
def test_an_edited_model_json_is_refused_naming_the_field(tmp_path, field, edit):
    """Before: each of these loaded, and predicted with a flow or network the weights were not
    trained for."""
    path = _model_dir(tmp_path, 0)
    _edit_model_json(path, edit)
    with pytest.raises(DataError, match=rf"model.json': {field} is .* but the weights were"):
        inference.load(path)


def test_an_older_model_folder_loads_with_a_notice(tmp_path, caplog):
    path = _model_dir(tmp_path, 0)
    (path / inference.BINDING).unlink()  # as merjax wrote them before bindings
    caplog.set_level("WARNING")
    inference.load(path)
    assert any("saved by an older merjax" in r.getMessage() for r in caplog.records)


@pytest.mark.slow
def test_weights_of_another_network_are_one_line(tmp_path):
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


def test_a_report_is_written_whole_or_not_at_all(tmp_path, monkeypatch):
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


_HOLD = """
import sys, time
from merjax import files
with files.WorkdirLock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(60)
"""


def test_a_second_run_on_a_busy_workdir_is_refused(tmp_path):
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
    assert not (tmp_path / files.WorkdirLock.NAME).exists()  # a clean exit leaves no lock file
    with files.WorkdirLock(tmp_path), pytest.raises(files.WorkdirBusy):
        with files.WorkdirLock(tmp_path):  # and the next holder locks the file it creates
            pass


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


def test_checkpoints_of_another_configuration_are_moved_aside(killed):
    seen = []
    other = dataclasses.replace(CKPT, learning_rate=5e-4, epochs=2)
    train.train_loso(
        TOY, X, X, Y, SUBJ, other, CKPT_EVERY_EPOCH, workdir=killed, progress=seen.append
    )
    assert any("moved them to checkpoints.other-config" in m for m in seen)
    assert (killed / "checkpoints.other-config" / "2").is_dir()
    assert (killed / "checkpoints" / "2").is_dir()


def test_a_truncated_checkpoint_falls_back_to_an_older_one(killed):
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


def test_an_emptied_checkpoint_metadata_file_is_named(killed):
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


@pytest.mark.slow
def test_a_full_disk_during_a_checkpoint_is_one_line_and_the_rerun_finishes(tmp_path, tiny_db):
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


def test_a_rerun_that_fails_leaves_the_config_of_the_results_beside_them(
    tmp_path, tiny_db, monkeypatch
):
    """Before: config.json was written when a run started, so a rerun with other settings that
    failed (or was killed) left its config beside the previous run's report and summary."""
    common = dict(profile="tiny", cache_dir=tiny_db.parent, progress=None)
    runner.run("class_average_flow", tmp_path, **common)
    first = json.loads((tmp_path / "config.json").read_text())
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert "config.json" in summary["files"]

    def killed(*args, **kwargs):
        raise OSError("killed while writing the report")

    monkeypatch.setattr(report.Report, "write", killed)
    with pytest.raises(OSError, match="killed"):
        runner.run("class_average_flow", tmp_path, seeds=[7], **common)
    kept = json.loads((tmp_path / "config.json").read_text())
    assert kept == first and kept["config"]["train"]["seeds"] != [7]
    assert json.loads((tmp_path / "summary.json").read_text()) == summary


def test_a_model_folder_asking_for_flow_work_past_the_bounds_is_refused(tmp_path):
    """Before: ``num_iter=1e9`` in a model folder's model.json and its binding file hung
    predict in the flow's loop."""
    model = inference.untrained("vy-3cl", 16, class_names=("a", "b", "c"))
    folder = inference.save(tmp_path / "model", model.spec, model.variables)
    for name in ("model.json", inference.BINDING):
        doc = json.loads((folder / name).read_text())
        doc["flow"]["horn_schunck"]["num_iter"] = 1e9
        (folder / name).write_text(json.dumps(doc))
    with pytest.raises(
        DataError, match=r"model.json: .*horn_schunck.num_iter must be an integer in \[0, 10000\]"
    ):
        inference.load(folder)
    for bad in (dict(num_iter=-1), dict(num_iter=10_001), dict(smoothness=float("nan"))):
        with pytest.raises(ValueError, match="horn_schunck"):
            FlowSettings.from_json({"horn_schunck": bad})
    with pytest.raises(ValueError, match=r"tvl1.tau must be a number in \(0, 0.25\]"):
        FlowSettings.from_json({"method": "tvl1", "tvl1": {"tau": 0.5}})


def test_report_files_named_after_long_video_names_are_shortened_with_a_hash(tmp_path):
    """Before: 130-character subject and video names did all the work, then the report's figure
    failed to write: ``[Errno 36] File name too long``. Now a long name is cut and tagged with
    a hash of the whole: the same file every run, two long names kept apart, report.md linking
    to the files that exist."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    long = [f"video_casme3_{'s' * 130}_{'v' * 129}{end}" for end in "ab"]
    rep = report.Report(tmp_path, "t", "p", "synthetic")
    for name in long:
        fig = plt.figure()
        rep.figure(name, fig, name)
    rep.table("t" * 300, ["a"], [[1]], title="t")
    rep.write({"experiment": "t"})
    names = [p.name for p in tmp_path.iterdir()]
    assert all(len(n.encode()) <= 120 for n in names), names
    pngs = sorted(n for n in names if n.endswith(".png"))
    assert len(pngs) == 2 and pngs == sorted(files.short_name(f"{n}.png") for n in long)
    text = (tmp_path / "report.md").read_text()
    linked = re.findall(r"\]\(([^)]+)\)", text)
    assert linked and all((tmp_path / n).exists() for n in linked), linked
    assert files.short_name("short.png") == "short.png"
    assert files.short_name("é" * 200 + ".png").endswith(".png")


def test_a_full_disk_names_the_file_being_written(tmp_path, monkeypatch):
    """Before: ``[Errno 28] No space left on device`` and no path: write errors carry none.
    The target is left as it was and no temporary stays behind."""
    target = tmp_path / "summary.json"
    target.write_text("old")

    def full(_):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match=r"Errno 28.*summary\.json") as e:
        files.write_text(target, "new")
    assert e.value.errno == 28
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == [target.name]


def _dead_pid() -> int:
    """The pid of a process that has exited."""
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    return int(child.stdout)


def test_temporaries_of_a_killed_run_are_cleaned_by_the_rerun(tmp_path, tiny_db):
    """Before: ``.NAME.tmp-PID`` files and ``.NAME.partial-PID-XXXX`` folders of a run killed
    with -9 survived every rerun. The rerun removes those of processes that no longer run and
    says so; a live writer's, and every other file, stay."""
    dead, live = _dead_pid(), os.getppid()  # a live process other than this one
    workdir = tmp_path / "run"
    (workdir / "models").mkdir(parents=True)
    stray = [
        workdir / f".report.md.tmp-{dead}",
        workdir / "models" / f".model.json.tmp-{dead}",
    ]
    for p in stray:
        p.write_text("half")
    (workdir / f".db.partial-{dead}-0a1b2c3d").mkdir()
    (workdir / f".db.partial-{dead}-0a1b2c3d" / "x.png").write_text("half")
    kept = [workdir / f".report.md.tmp-{live}", workdir / "notes.tmp-12", workdir / ".mine.tmp"]
    for p in kept:
        p.write_text("keep")
    said = []
    runner.run("class_average_flow", workdir, profile="tiny", cache_dir=tiny_db.parent,
               progress=said.append)  # fmt: skip
    assert not any(p.exists() for p in stray)
    assert not (workdir / f".db.partial-{dead}-0a1b2c3d").exists()
    assert all(p.read_text() == "keep" for p in kept)
    assert any("removed 3 temporary file(s)" in m and "killed" in m for m in said), said


def test_a_rerun_reuses_the_networks_it_finished_and_retrains_what_changed(tmp_path, cache_dir):
    """Before: a rerun after Ctrl-C trained every network from the first. A finished network is
    kept (runs/<net>/result.npz) and reused under the same data, protocol and code; the saved
    final model trains again (its weights are not kept); a corrupt file or another protocol
    trains again, and says why."""
    seen: list[str] = []

    def run(*overrides):
        seen.clear()
        return runner.run(
            "input_study",
            tmp_path,
            profile="tiny",
            overrides=list(overrides),
            cache_dir=cache_dir,
            progress=seen.append,
        )

    first = run()
    second = run()
    assert any(x.startswith("vy-1cl: reusing the network this workdir finished") for x in seen)
    assert not any(x.startswith("vy-3cl: reusing") for x in seen)  # the final model's network
    for k in ("accuracy", "uf1", "uar"):
        assert second["configs"]["vy-1cl"][k] == first["configs"]["vy-1cl"][k]
    kept = tmp_path / "runs" / "vy-1cl" / "result.npz"
    kept.write_bytes(kept.read_bytes()[:100])  # a file cut short
    run()
    assert any("result.npz' is unreadable" in x and "training again" in x for x in seen), seen
    run("train.epochs=3")
    assert any("saved for other data, settings or code: training again" in x for x in seen)

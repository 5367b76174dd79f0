"""Several processes, one run (merjax.hosts): two processes x 2 CPU devices on localhost, gloo
collectives, against one process; a process killed after a checkpoint, and the resume; the
refusals at start. Every process runs under ``timeout -k``."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from merjax import files, hosts
from merjax.train import Execution, strategies

# One problem for every run here: the tiny profile's headline network, 3 epochs.
SETTINGS = ["--set=nets=vy-3cl", "--set=train.epochs=3", "--set=execution.strategy=vmap"]
TIMEOUT_S = 150  # one process's limit (a tiny run takes ~25 s on 2 cores)
# Two programs (one process's vmap over 2 devices, two processes' over 4) agree to float
# rounding: the cross-program tolerance of tests/test_train.py (FAST).
ATOL = 1e-5


def _port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _command(workdir: Path, cache: Path, *extra: str) -> list[str]:
    return [
        "timeout",
        "-k",
        "5",
        str(TIMEOUT_S),
        sys.executable,
        "-m",
        "merjax.main",
        "--experiment=input_study",
        "--profile=tiny",
        f"--workdir={workdir}",
        f"--cache_dir={cache}",
        *SETTINGS,
        *extra,
    ]


def _env() -> dict:
    # Kept: the suite's own XLA flags (e.g. --xla_cpu_max_isa=AVX2); the device count last wins.
    flags = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"
    return os.environ | {"XLA_FLAGS": flags.strip()}


def _start(workdirs: list[Path], cache: Path, *extra: str, port: int | None = None):
    """Two processes of one run (process i in workdirs[i]); their Popen objects."""
    port = port or _port()
    return [
        subprocess.Popen(
            _command(
                w,
                cache,
                f"--coordinator_address=localhost:{port}",
                "--num_processes=2",
                f"--process_id={i}",
                *extra,
            ),
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # signals go to the group: timeout and python both
        )
        for i, w in enumerate(workdirs)
    ]


def _finish(procs) -> list[tuple[int, str, str]]:
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=TIMEOUT_S + 10)
        out.append((p.returncode, stdout, stderr))
    return out


def _predictions(workdir: Path) -> dict:
    lines = [
        json.loads(x) for x in (workdir / "runs/vy-3cl/metrics.jsonl").read_text().split("\n") if x
    ]
    return next(d for d in lines if d["kind"] == "predictions")


def _logits(workdir: Path) -> np.ndarray:
    return np.array(_predictions(workdir)["logits"], np.float64)


@pytest.fixture(scope="module")
def single(tmp_path_factory, cache_dir) -> Path:
    """The run in one process with 2 devices: what two processes must reproduce."""
    workdir = tmp_path_factory.mktemp("single")
    done = subprocess.run(
        _command(workdir, cache_dir), env=_env(), capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return workdir


def _assert_same_predictions(workdir: Path, single: Path) -> None:
    got, want = _logits(workdir), _logits(single)
    np.testing.assert_allclose(got, want, atol=ATOL)
    # Class predictions where the top two logits are further apart than the tolerance.
    top2 = np.sort(want, -1)[..., -2:]
    clear = (top2[..., 1] - top2[..., 0]) > 2 * ATOL
    got_p, want_p = (
        np.array(_predictions(workdir)["preds"]),
        np.array(_predictions(single)["preds"]),
    )
    assert (got_p[clear] == want_p[clear]).all()


@pytest.mark.slow
def test_two_processes_give_one_process_predictions_and_write_once(tmp_path, cache_dir, single):
    """2 processes x 2 devices train the run axis over 4 devices as one program: the pooled
    held-out logits are one process's (tolerance: ATOL); process 0 alone printed progress and
    wrote every file, once (one start line, each epoch once, no temporaries left)."""
    workdir = tmp_path / "run"
    (r0, out0, err0), (r1, out1, err1) = _finish(_start([workdir, workdir], cache_dir))
    assert (r0, r1) == (0, 0), (err0[-2000:], err1[-2000:])
    assert "process 0 of 2" in out0 and "process 1 of 2" in out1
    assert "epoch 3/3" in out0 and "epoch" not in out1
    assert "input_study (vy-3cl): accuracy" in out0 and "process 1: done" in out1
    _assert_same_predictions(workdir, single)
    lines = [
        json.loads(x) for x in (workdir / "runs/vy-3cl/metrics.jsonl").read_text().split("\n") if x
    ]
    kinds = [d["kind"] for d in lines]
    assert kinds.count("start") == 1 and kinds.count("predictions") == 1
    assert [d["epoch"] for d in lines if d["kind"] == "epoch"] == [1, 2, 3]
    assert not [p for p in workdir.rglob(".*") if ".tmp-" in p.name or ".partial-" in p.name]
    assert (workdir / "models/vy-3cl/model.json").is_file()
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["accuracy"] == json.loads((single / "summary.json").read_text())["accuracy"]


@pytest.mark.slow
def test_a_killed_process_stops_the_other_and_the_rerun_resumes(tmp_path, cache_dir, single):
    """Process 1 killed after the first checkpoint: process 0 stops within seconds, with one
    line naming process 1; the same command again resumes from the checkpoint and ends with
    the predictions of a run never interrupted (tolerance: ATOL)."""
    workdir = tmp_path / "run"
    extra = ("--set=execution.checkpoint_every=1",)
    procs = _start([workdir, workdir], cache_dir, *extra)
    first = workdir / "runs/vy-3cl/checkpoints/1"
    deadline = time.monotonic() + TIMEOUT_S
    while not first.is_dir() and time.monotonic() < deadline and procs[0].poll() is None:
        time.sleep(0.05)
    os.killpg(procs[0].pid, signal.SIGSTOP)  # held still: it cannot finish before the kill
    assert first.is_dir(), "no checkpoint was written"
    os.killpg(procs[1].pid, signal.SIGKILL)
    procs[1].wait()
    t0 = time.monotonic()
    os.killpg(procs[0].pid, signal.SIGCONT)
    _, stderr = procs[0].communicate(timeout=60)
    stopped_in = time.monotonic() - t0
    assert procs[0].returncode == 1
    # At once from a gloo collective; from a barrier of the runtime (orbax's), when the
    # coordinator declares the task dead: the heartbeat timeout, plus the time to say so.
    assert stopped_in < hosts.HEARTBEAT_TIMEOUT_S + 15
    errors = [x for x in stderr.splitlines() if x.startswith("error:")]
    assert len(errors) == 1 and "lost process 1" in errors[0], stderr[-2000:]

    (r0, out0, err0), (r1, _, err1) = _finish(_start([workdir, workdir], cache_dir, *extra))
    assert (r0, r1) == (0, 0), (err0[-2000:], err1[-2000:])
    assert "resumed from the checkpoint of epoch" in out0
    _assert_same_predictions(workdir, single)


@pytest.mark.slow
def test_processes_with_other_settings_or_folders_are_refused(tmp_path, cache_dir):
    """At start, in one line on each process: another config (process 1 given another epoch
    count), and a workdir that is not the same folder for both (the marker check)."""
    a, b = tmp_path / "a", tmp_path / "b"
    port = _port()
    cmd = [
        _command(a, cache_dir, f"--coordinator_address=localhost:{port}", "--num_processes=2")
        + [f"--process_id={i}"]
        + (["--set=train.epochs=4"] if i else [])
        for i in range(2)
    ]
    procs = [
        subprocess.Popen(c, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for c in cmd
    ]
    for code, _, stderr in _finish(procs):
        assert code == 1
        assert "process(es) 1 started with other settings" in stderr, stderr[-1500:]
    for code, _, stderr in _finish(_start([a, b], cache_dir)):
        assert code == 1
        assert "is not the same folder for every process" in stderr, stderr[-1500:]


def test_one_process_needs_nothing_from_the_runtime():
    """Without jax.distributed every helper is the single-process behaviour."""
    assert (hosts.count(), hosts.index(), hosts.is_main()) == (1, 0, True)
    assert hosts.first(lambda: 3, "x") == 3 and hosts.main_only(lambda: 4, "x") == 4
    assert hosts.smallest(5) == 5 and hosts.broadcast_text("a") == "a"
    hosts.agree("anything", "data")
    np.testing.assert_array_equal(hosts.gather(np.arange(3)), np.arange(3))
    assert hosts.lost_process(RuntimeError("Gloo AllGather failed")) is None


def test_several_processes_refuse_loop_and_map_and_plan_auto():
    """loop and map would train every run on every process: refused with several processes;
    auto plans chunks instead of looping."""
    for name in ("loop", "map"):
        with pytest.raises(ValueError, match="spread the runs"):
            strategies.resolve(Execution(strategy=name), "cpu", processes=2)
    assert strategies.resolve(Execution(), "cpu", processes=2)[0] == "chunked"
    assert strategies.resolve(Execution(), "cpu", processes=1)[0] == "loop"


def test_temporaries_carry_pid_and_host_and_strays_of_other_hosts_stay(tmp_path):
    """savez's temporary keeps its pid (it used to become ``.NAME.npz.npz``); a stray of a
    dead local pid goes, one named for another host stays (its pid means nothing here)."""
    files.savez(tmp_path / "h.npz", a=np.arange(2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.npz"]
    here = re.sub(r"[^A-Za-z0-9_.-]", "_", os.uname().nodename)
    p = subprocess.Popen(["true"])
    p.wait()  # a pid no process has now
    mine = tmp_path / f".r.md.tmp-{p.pid}@{here}"
    theirs = tmp_path / f".r.md.tmp-{p.pid}@another-host"
    for f in (mine, theirs):
        f.write_text("half")
    assert files.clean_strays(tmp_path) == [mine]
    assert theirs.exists()

"""Faults at the command lines (``merjax.main``, ``merjax.predict``): flags and files that cannot
work, experiment files with bugs, Ctrl-C. Each ends in one line, before any work where it can.

Each test failed on the code before its fix, in the way its docstring says (README,
Reliability: the table names each test).
"""

from __future__ import annotations

import functools
import os
import re
import signal
import subprocess
import sys

import cv2
import numpy as np
import pytest

from merjax import runner
from merjax.data import cache, composite, frames
from merjax.errors import DataError
from merjax.flow import FlowSettings, HornSchunckSettings


def test_nets_an_experiment_cannot_report_are_refused_before_training(tiny_db, tmp_path):
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


def test_repeated_or_huge_seeds_are_refused_up_front(tmp_path, command_in_process):
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


def test_unwritable_folders_are_named_at_start(tmp_path, tiny_db, command_in_process):
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


def test_experiment_files_say_what_is_wrong(tmp_path, monkeypatch, command_in_process):
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


@pytest.mark.slow
def test_ctrl_c_of_the_command_line_is_one_line_and_exit_code_130(tmp_path, tiny_db):
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
    # A shell starts background jobs with SIGINT ignored and a child inherits that (Python then
    # installs no KeyboardInterrupt): the command gets Ctrl-C's default, as from a terminal, so
    # the test does not depend on how pytest was started.
    proc = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
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


def test_predict_refuses_a_negative_window_and_unwritable_outputs(tmp_path):
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


def test_predict_names_float_tiffs_and_folders_given_as_videos(tmp_path):
    """Before: a float32 TIFF was 'not an image, or corrupt' and a folder given to --video 'does
    not exist'."""
    from merjax import predict

    tiff = tmp_path / "f.tiff"
    cv2.imwrite(str(tiff), np.random.default_rng(0).random((8, 8)).astype(np.float32))
    with pytest.raises(DataError, match=r"unsupported pixel type \(float32\)"):
        frames.read_gray(tiff)
    with pytest.raises(DataError, match="is a folder, not a video file"):
        predict.predict_video(None, tmp_path)


@pytest.mark.parametrize(
    "assignment, message",
    [
        ("learned.stride=0", "stride must be an integer >= 1"),
        ("learned.positive_share=1.0", r"positive_share must be in \(0, 1\)"),
        ("learned.feature_size=0", "feature_size must be an integer >= 4"),
        ("spot.batch=0", "batch must be an integer >= 1"),
        ("synthetic_seed=-1", r"synthetic_seed must be an integer 0..2\^32-1"),
        ("recognise.size=0", "size must be an integer >= 8"),
        ("spot.half_seconds=(0.0, 0.0)", "half_seconds must be .* 0 < micro < macro"),
        ("spot.half_seconds=(0.6, 0.2)", "half_seconds must be .* 0 < micro < macro"),
        ("spot.micro_ratio=-1", r"micro_ratio must be in \(0, 1\]"),
    ],
)
def test_every_set_value_is_checked_when_the_config_is_made(assignment, message):
    """Before: stride=0 and positive_share=1.0 divided by zero mid-run, recognise.size=0 was
    refused only after training, half_seconds=(0.6, 0.2) and micro_ratio=-1 were accepted."""
    with pytest.raises(ValueError, match=rf"--set '{re.escape(assignment)}': {message}"):
        runner.make_config("spotting", "tiny", [assignment])


@pytest.mark.parametrize("flag", ["--workdir=", "--cache_dir=", "--seeds="])
def test_an_empty_flag_is_refused_not_read_as_its_default(flag, tmp_path, command_in_process):
    """Before: ``--workdir=``, ``--cache_dir=`` and ``--seeds=`` (an unset shell variable, say)
    silently ran with the defaults."""
    from merjax import main

    code, _, err = command_in_process(main.main, "--profile=tiny", flag)
    name = flag.strip("-=")
    assert code == 1 and f"--{name} is empty; give a value or leave the flag out" in err, err


@pytest.mark.parametrize("args", [["--out="], ["--max_frames=0"], ["--max_frames=-5"]])
def test_predict_refuses_an_empty_out_and_max_frames_below_one(
    args, stream_files, command_in_process
):
    """Before: ``--out=`` wrote no CSV and said nothing; ``--max_frames=0`` meant no limit and
    ``-5`` reported that the video "has 1 frames"."""
    from merjax import predict

    video, model = stream_files
    code, _, err = command_in_process(
        predict.main, f"--model={model}", f"--video={video}", "--spot", *args
    )
    assert code == 1, err
    assert "--out is empty" in err or "--max_frames must be >= 1" in err, err

"""Inference on new clips: model folder, jitted pipeline, jax.export, predict's command line."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import jax
import numpy as np
import pytest

from merjax import context, evaluation, flow, inference, metrics, models, runner
from merjax.data.loading import Roots
from merjax.errors import DataError
from merjax.flow import FlowSettings
from merjax.predict import predict_pair, predict_video, read_clip

FRAME = (16, 16)
CLASSES = tuple(f"class {i}" for i in range(5))


def _texture(rng: np.random.Generator, shift: float = 0.0, side: int = 96) -> np.ndarray:
    """A textured square (never a detectable face) moved right by ``shift`` pixels."""
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32)
    img = 128 + 60 * np.sin((xx - shift) / 5.0) * np.cos(yy / 7.0)
    return np.clip(img + rng.normal(0, 1, img.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    module, rep = models.by_name("vy-1cl")
    variables = models.init(module, jax.random.key(3), (8, 8, 1))
    rng = np.random.default_rng(0)
    spec = inference.ModelSpec(
        net="vy-1cl",
        representation=rep,
        input_size=8,
        flow=FlowSettings(size=FRAME),
        class_names=CLASSES,
        trained_on={"data": "test"},
    )
    mean = rng.normal(0, 0.1, (8, 8, 1)).astype(np.float32)
    return inference.save(
        tmp_path_factory.mktemp("m") / "vy-1cl",
        spec,
        dict(variables, mean=mean, scale=np.float32(0.5)),
    )


@pytest.fixture(scope="module")
def model(model_dir) -> inference.Model:
    return inference.load(model_dir)


def _pairs(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = [cv2.resize(_texture(rng), FRAME[::-1], interpolation=cv2.INTER_AREA) for _ in range(n)]
    b = [
        cv2.resize(_texture(rng, 1.0 + i), FRAME[::-1], interpolation=cv2.INTER_AREA)
        for i in range(n)
    ]
    return np.stack(a), np.stack(b)


def test_pipeline_is_flow_then_network(model):
    onset, apex = _pairs(3)
    probs = model.classify(onset, apex)
    uv = flow.resize_flow(flow.horn_schunck(onset, apex, num_iter=10), (8, 8))
    x = (flow.representation(uv, "vy") - model.variables["mean"]) / model.variables["scale"]
    logits = model.module.apply(
        {"params": model.variables["params"], "batch_stats": model.variables["batch_stats"]}, x
    )
    np.testing.assert_allclose(probs, jax.nn.softmax(logits), atol=1e-6)
    assert probs.shape == (3, 5) and np.allclose(probs.sum(1), 1)
    np.testing.assert_allclose(
        model.classify(onset[1], apex[1])[0], probs[1], atol=1e-6
    )  # one pair


def test_inference_reads_a_dataset_clip_as_training_did(tiny_db, tmp_path):
    """A clip of the database, given to inference as a user would (predict's read_clip and
    prepare_frames, the model's flow settings), reaches the network as the same input that
    training read for that sample through the loaders, the flow cache and
    evaluation.network_inputs. A
    pipeline that resized before the flow, swapped onset and apex, flipped a flow component or
    normalised differently would fail."""
    cfg = runner.make_config("input_study", "tiny")
    ctx = context.Context(
        cfg,
        tmp_path / "w",
        progress=None,
        options=context.RunOptions(
            profile="tiny",
            roots=Roots(tiny_db / "CASME2", tiny_db / "SAMM"),
            cache_dir=tmp_path / "cache",
        ),
    )
    data = ctx.data()
    x_train, _ = evaluation.network_inputs(ctx.data(), "vy", ctx.cfg.size)
    spec = inference.ModelSpec(
        net="vy-1cl",
        representation="vy",
        input_size=cfg.size,
        flow=cfg.flow,
        class_names=CLASSES,
        trained_on={"data": "test"},
    )
    identity = {"mean": np.zeros(x_train.shape[1:], np.float32), "scale": np.float32(1)}
    checked = 0
    for i, s in enumerate(data.samples):
        if s.dataset != "casme2":  # the database's own face crops: inference's crop="none"
            continue
        onset, apex, _ = read_clip(Path(s.frame_path(s.onset)).parent, s.onset, s.apex)
        frames, _, _ = inference.prepare_frames([onset, apex], spec.frame_size, crop="none")
        uv = inference.flow_of(frames[:1], frames[1:], spec)
        x = np.asarray(inference.network_input(identity, uv, spec))[0]
        scale = np.abs(x_train[i]).max()
        assert scale > 1e-4, s.clip  # a flow to compare (the tiny database's motions are small)
        np.testing.assert_allclose(x, x_train[i], rtol=1e-3, atol=1e-3 * scale, err_msg=s.clip)
        checked += 1
        if checked == 3:
            break
    assert checked == 3


def test_save_load_round_trip(model_dir, model):
    spec = json.loads((model_dir / "model.json").read_text())
    assert spec["net"] == "vy-1cl" and spec["flow"]["size"] == [16, 16]
    assert spec["param_shapes"]["mean"] == [8, 8, 1]
    again = inference.load(model_dir, expect_net="VY-1CL")
    for a, b in zip(
        jax.tree.leaves(model.variables), jax.tree.leaves(again.variables), strict=True
    ):
        np.testing.assert_array_equal(a, b)


def test_a_checkpoint_from_another_architecture_is_refused(model_dir, tmp_path):
    with pytest.raises(DataError, match="holds a vy-1cl model, not resnet8"):
        inference.load(model_dir, expect_net="resnet8")
    other = tmp_path / "m"
    other.mkdir()
    os.symlink(model_dir / "variables", other / "variables")
    spec = json.loads((model_dir / "model.json").read_text())
    (other / "model.json").write_text(json.dumps(spec | {"net": "vy-2cl"}))
    with pytest.raises(DataError, match="do not fit a vy-2cl.*another architecture"):
        inference.load(other)
    (other / "model.json").write_text(json.dumps(spec | {"param_shapes": {}}))
    with pytest.raises(DataError, match="lists no param_shapes"):
        inference.load(other)
    with pytest.raises(DataError, match="no model.json"):
        inference.load(tmp_path)


@pytest.mark.slow
def test_exported_function_runs_without_merjax(model, tmp_path):
    path = inference.export(model, tmp_path / "m.jaxexport", platforms=("cpu",))
    onset, apex = _pairs(4, seed=1)
    np.save(tmp_path / "onset.npy", onset)
    np.save(tmp_path / "apex.npy", apex)
    script = textwrap.dedent(f"""
        import sys
        sys.modules["merjax"] = None  # importing merjax now fails
        import numpy as np
        from jax import export
        fn = export.deserialize(bytearray(open({str(path)!r}, "rb").read())).call
        out = fn(np.load({str(tmp_path / "onset.npy")!r}), np.load({str(tmp_path / "apex.npy")!r}))
        np.save({str(tmp_path / "out.npy")!r}, np.asarray(out))
    """)
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, JAX_PLATFORMS="cpu"),
    )
    assert done.returncode == 0, done.stderr
    np.testing.assert_allclose(
        np.load(tmp_path / "out.npy"), model.classify(onset, apex), atol=1e-5
    )
    np.testing.assert_allclose(
        inference.load_exported(path)(onset[:1], apex[:1]),
        model.classify(onset[:1], apex[:1]),
        atol=1e-5,
    )  # any batch size
    assert json.loads(Path(f"{path}.json").read_text())["net"] == "vy-1cl"


def test_frames_are_prepared_as_the_datasets_are(model):
    rng = np.random.default_rng(0)
    a, b = _texture(rng), _texture(rng, 2.0)
    frames, box, note = inference.prepare_frames(
        [a, cv2.cvtColor(b, cv2.COLOR_GRAY2BGR)], FRAME, crop="none"
    )
    assert frames.shape == (2, *FRAME) and frames.dtype == np.uint8 and box is None and not note
    # No face on the first frame: merjax's one face rule uses the whole frame and says so.
    whole, box, note = inference.prepare_frames([a, b], FRAME, crop="face", names=["onset", "apex"])
    assert box is None and note == "no face found on onset; using the whole frame"
    np.testing.assert_array_equal(whole, frames)
    with pytest.raises(DataError, match="differ in size.*apex: 80x96"):
        inference.prepare_frames([a, b[:, :80]], FRAME, crop="none", names=["onset", "apex"])
    with pytest.raises(DataError, match="8-bit"):
        inference.prepare_frames([a.astype(np.float32), b], FRAME, crop="none")
    with pytest.raises(DataError, match=r"frames must be \[B, 16, 16\]"):
        model.classify(a, b)
    res = predict_pair(model, a, b, crop="none")
    assert res["class"] in CLASSES and res["classify_ms"] > 0


def _write_clip(folder: Path, n: int = 6) -> list[np.ndarray]:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(2)
    imgs = [_texture(rng, 0.5 * i) for i in range(n)]
    for i, img in enumerate(imgs):
        cv2.imwrite(str(folder / f"reg_img{40 + i}.png"), img)
    return imgs


def test_clip_folder(tmp_path, model):
    imgs = _write_clip(tmp_path / "clip")
    onset, apex, names = read_clip(tmp_path / "clip", 40, 43)
    np.testing.assert_array_equal(apex, imgs[3])
    with pytest.raises(DataError, match="no frame numbered 99.*40..45"):
        read_clip(tmp_path / "clip", 40, 99)
    with pytest.raises(DataError, match="must come after"):
        read_clip(tmp_path / "clip", 43, 40)


VIDEO_CODECS = (("MJPG", ".avi"), ("mp4v", ".mp4"), ("XVID", ".avi"))


def _write_video(path: Path, n: int = 12) -> Path | None:
    """A 12-frame grey video at ``path`` (its suffix set by the first codec this OpenCV build
    writes: MJPG, mp4v, XVID); None when it writes none of them."""
    for fourcc, suffix in VIDEO_CODECS:
        out = path.with_suffix(suffix)
        writer = cv2.VideoWriter(
            str(out), cv2.VideoWriter_fourcc(*fourcc), 20.0, (96, 96), isColor=False
        )
        if writer.isOpened():
            break
    else:
        return None
    rng = np.random.default_rng(4)
    for i in range(n):
        writer.write(_texture(rng, 0.4 * i))
    writer.release()
    return out


NO_CODEC = (
    f"this OpenCV build writes none of {[c for c, _ in VIDEO_CODECS]}: the video path is untested"
)


def test_video_sliding_window(tmp_path, model):
    video = _write_video(tmp_path / "v")
    if video is None:
        pytest.skip(NO_CODEC)
    res = predict_video(model, video, window=3, crop="none", batch=4)
    assert res["num_frames"] == 12 and list(res["frames"]) == list(range(3, 12))
    assert res["probabilities"].shape == (9, 5) and np.allclose(
        res["probabilities"].sum(1), 1, atol=1e-5
    )
    cap = cv2.VideoCapture(str(video))
    frames = []
    while (got := cap.read())[0]:
        frames.append(
            cv2.resize(
                cv2.cvtColor(got[1], cv2.COLOR_BGR2GRAY), FRAME[::-1], interpolation=cv2.INTER_AREA
            )
        )
    frames = np.stack(frames)
    np.testing.assert_allclose(
        res["probabilities"][4], model.classify(frames[4], frames[7])[0], atol=1e-5
    )
    assert predict_video(model, video, crop="none")["window"] == 3  # 0.15 s at 20 fps
    assert res["outside_training"] == 0  # the fixture model states no flow range
    narrow = inference.Model(
        dataclasses.replace(model.spec, flow_range={"magnitude_p99": 0.0}),
        model.module,
        model.variables,
    )
    moved = predict_video(narrow, video, window=3, crop="none", batch=4)["outside_training"]
    assert 0 < moved <= 9  # every pair that moves at all is beyond a range of 0 px
    (tmp_path / "bad.avi").write_text("not a video")
    with pytest.raises(DataError, match="bad.avi"):
        predict_video(model, tmp_path / "bad.avi", crop="none")


def _predict(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("MERJAX_TRACEBACK", None)
    return subprocess.run(
        [sys.executable, "-m", "merjax.predict", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


@pytest.fixture
def predict_in_process(command_in_process):
    from merjax import predict

    return lambda *args: command_in_process(predict.main, *args)


@pytest.mark.slow
def test_command_line(tmp_path, model_dir):
    """The command line as a process: a clip's two frames to a class."""
    _write_clip(tmp_path / "clip")
    out = _predict(
        f"--model={model_dir}",
        f"--clip={tmp_path / 'clip'}",
        "--onset_frame=40",
        "--apex_frame=44",
        "--crop=none",
    )
    assert out.returncode == 0, out.stderr
    assert "class: class " in out.stdout and "ms flow + network" in out.stdout
    assert "Restoring checkpoint" not in out.stdout + out.stderr  # orbax's INFO lines are off


def test_command_line_on_a_video(tmp_path, model_dir, predict_in_process):
    """The --video path of the command line; skipped, saying so, where OpenCV writes no codec."""
    video = _write_video(tmp_path / "v")
    if video is None:
        pytest.skip(NO_CODEC)
    code, _, err = predict_in_process(
        f"--model={model_dir}",
        f"--video={video}",
        "--window=2",
        "--crop=none",
        f"--out={tmp_path / 'p.csv'}",
    )
    assert code == 0, err
    lines = (tmp_path / "p.csv").read_text().splitlines()
    assert lines[0].startswith("frame,seconds,class,class 0") and len(lines) == 11


@pytest.mark.parametrize(
    "args, message",
    [
        (["--video=BAD"], "cannot open video"),
        (["--onset=CLIP/reg_img40.png", "--apex=SMALL"], "differ in size"),
        (
            ["--net=resnet8", "--onset=CLIP/reg_img40.png", "--apex=CLIP/reg_img41.png"],
            "not resnet8",
        ),
        (["--onset=CLIP/nothing.png", "--apex=CLIP/reg_img41.png"], "cannot read image"),
        (["--clip=CLIP", "--onset_frame=40"], "needs --onset_frame and --apex_frame"),
        ([], "give exactly one of"),
        (["--video=BAD", "--window=-1"], "--window must be >= 0"),
        (["--video=BAD", "--out=CLIP"], "is a folder"),
        (["--export=/proc/merjax/m.jaxexport"], "cannot write in"),
    ],
)
def test_command_line_rejects_bad_input_clearly(
    tmp_path, model_dir, args, message, predict_in_process
):
    _write_clip(tmp_path / "clip")
    (tmp_path / "bad.mp4").write_text("not a video")
    cv2.imwrite(str(tmp_path / "small.png"), np.zeros((40, 50), np.uint8))
    subs = {
        "CLIP": str(tmp_path / "clip"),
        "BAD": str(tmp_path / "bad.mp4"),
        "SMALL": str(tmp_path / "small.png"),
    }
    for k, v in subs.items():
        args = [a.replace(k, v) for a in args]
    code, _, err = predict_in_process(f"--model={model_dir}", *args)
    assert code == 1
    assert message in err, err
    assert "Traceback" not in err


def test_frames_without_a_face_are_classified_whole_with_a_note(
    tmp_path, model_dir, predict_in_process
):
    """merjax's one face rule on the command line: a first frame with no face is used whole,
    and the console says so (an error here, as before, or a silent whole-frame crop are both
    the old policies this rule replaced)."""
    _write_clip(tmp_path / "clip")
    code, out, err = predict_in_process(
        f"--model={model_dir}",
        f"--onset={tmp_path / 'clip' / 'reg_img40.png'}",
        f"--apex={tmp_path / 'clip' / 'reg_img41.png'}",
    )
    assert code == 0, err
    assert "note: no face found on " in out and "using the whole frame" in out
    assert "class: " in out


def test_a_tvl1_model_runs_end_to_end(tmp_path):
    """A model trained on TV-L1 flows records the method; load + classify and export compute
    TV-L1 (not Horn-Schunck) on new frames."""
    from merjax.flow import representation as rep_of
    from merjax.flow import tvl1

    module, rep = models.by_name("vy-1cl")
    settings = FlowSettings(size=FRAME, method="tvl1")
    spec = inference.ModelSpec(
        net="vy-1cl", representation=rep, input_size=8, flow=settings, class_names=CLASSES
    )
    variables = models.init(module, jax.random.key(3), (8, 8, 1))
    path = inference.save(
        tmp_path / "tvl1-model",
        spec,
        dict(variables, mean=np.zeros((8, 8, 1), np.float32), scale=np.float32(1.0)),
    )
    assert json.loads((path / "model.json").read_text())["flow"]["method"] == "tvl1"
    model = inference.load(path)
    assert model.spec.flow == settings
    a, b = _pairs(2)
    probs = model.classify(a, b)
    uv = flow.resize_flow(tvl1(a, b), (8, 8))
    logits = module.apply(variables, rep_of(uv, "vy"))
    np.testing.assert_allclose(probs, jax.nn.softmax(logits, -1), atol=1e-4)


def test_temperature_scaling_fits_the_held_out_likelihood_and_keeps_every_class():
    """The fitted T minimises the held-out NLL (a T 1% either side is no better); it never
    changes a predicted class; a model that says 100% and is right half the time has ECE 0.5."""
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (200, 5))
    labels = np.where(rng.random(200) < 0.6, logits.argmax(1), rng.integers(0, 5, 200))
    t = metrics.fit_temperature(logits, labels)

    def nll(temp):
        return -np.log(metrics.softmax(logits, temp)[np.arange(200), labels]).mean()

    assert nll(t) <= min(nll(t * 1.01), nll(t / 1.01)) and 0.01 < t < 100
    assert (metrics.softmax(logits, t).argmax(1) == logits.argmax(1)).all()
    sure = np.tile([1.0, 0.0], (10, 1))
    assert metrics.expected_calibration_error(sure, np.array([0, 1] * 5)) == pytest.approx(0.5)
    assert metrics.expected_calibration_error(sure, np.zeros(10)) == pytest.approx(0.0)


def test_a_models_temperature_and_flow_range_reach_its_outputs(model_dir, model, tmp_path):
    """A saved temperature divides the logits in classify (the same function jax.export and ONNX
    convert), and a pair whose flow exceeds the training clips' range is named."""
    onset, apex = _pairs(3)
    spec = dataclasses.replace(model.spec, temperature=2.0, flow_range={"magnitude_p99": 0.0})
    hot = inference.load(inference.save(tmp_path / "hot", spec, model.variables))
    p1, p2 = model.classify(onset, apex), hot.classify(onset, apex)
    assert (p1.argmax(1) == p2.argmax(1)).all()
    expect = metrics.softmax(np.log(p1.astype(np.float64)), 2.0)
    assert np.allclose(p2, expect, atol=1e-5)
    assert all("beyond the 0.00 px" in w for w in hot.outside_training(onset, apex))
    assert model.outside_training(onset, apex) == [None] * 3  # no range saved: nothing to say

"""Edge runtimes: the ONNX graph against merjax's jitted pipeline, int8, lasting exports."""

from __future__ import annotations

import json
import logging
import sys

import jax
import numpy as np
import pytest

from merjax import inference
from merjax.errors import DataError
from merjax.flow import FlowSettings

pytest.importorskip("jax2onnx", reason="the export extra: pip install 'merjax[export]'")
from merjax import edge  # noqa: E402

FRAME = (16, 16)


def _model(net: str, method: str = "horn_schunck", seed: int = 0) -> inference.Model:
    """An initialised model with its weights and normalisation moved off their initial values
    (a zero-initialised last layer would give every class the same probability, which any graph
    matches)."""
    m = inference.untrained(net, 8, FlowSettings(size=FRAME, method=method), seed=seed)
    rng = np.random.default_rng(seed)
    leaves, tree = jax.tree_util.tree_flatten(m.variables)
    leaves = [
        np.asarray(x) + 0.1 * rng.standard_normal(np.shape(x)).astype(np.float32)
        if np.ndim(x)
        else x
        for x in leaves
    ]
    return inference.Model(m.spec, m.module, jax.tree_util.tree_unflatten(tree, leaves))


def _frames(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Half random pixels, half a texture moved by a fraction of a pixel (what flow is for)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : FRAME[0], 0 : FRAME[1]].astype(np.float32)

    def texture(dx):
        img = 128 + 60 * np.sin((xx - dx) / 3.0) * np.cos(yy / 4.0) + rng.normal(0, 2, FRAME)
        return np.clip(img, 0, 255).astype(np.uint8)

    k = n // 2
    a = np.concatenate(
        [rng.integers(0, 256, (k, *FRAME), np.uint8), [texture(0) for _ in range(n - k)]]
    )
    b = np.concatenate(
        [
            rng.integers(0, 256, (k, *FRAME), np.uint8),
            [texture(0.3 * (i + 1)) for i in range(n - k)],
        ]
    )
    return a, b


@pytest.mark.parametrize(
    "net, method",
    [
        ("vy-3cl", "horn_schunck"),
        ("vxvystrain-2cl", "horn_schunck"),
        ("resnet4", "horn_schunck"),
        ("ststnet", "horn_schunck"),
        ("vy-2cl-sep", "horn_schunck"),
        ("vy-2cl-shuffle", "horn_schunck"),
        ("vy-3cl-shuffle-g4", "horn_schunck"),
        ("vy-1cl", "tvl1"),
    ],
)
def test_onnx_graph_gives_merjax_probabilities(net, method, tmp_path):
    model = _model(net, method)
    path = edge.export_onnx(model, tmp_path / f"{net}.onnx")
    runtime = edge.load_onnx(path)
    inputs = {i.name: (i.type, i.shape) for i in runtime.session.get_inputs()}
    assert inputs == {n: ("tensor(uint8)", [inputs[n][1][0], *FRAME]) for n in edge.INPUTS}
    assert isinstance(inputs["onset"][1][0], str)  # a symbolic batch size
    assert [o.name for o in runtime.session.get_outputs()] == [edge.OUTPUT]
    for batch in (1, 4):
        onset, apex = _frames(batch, seed=batch)
        want = model.classify(onset, apex)
        got = runtime.classify(onset, apex)
        assert got.shape == want.shape == (batch, 5)
        np.testing.assert_allclose(got, want, atol=1e-4)
    meta = json.loads((tmp_path / f"{net}.onnx.json").read_text())
    assert meta["net"] == net and meta["flow"]["method"] == method
    assert meta["onnx"]["inputs"]["onset"] == ["B", *FRAME, "uint8"]


def test_horn_schunck_is_a_loop_in_the_graph(tmp_path):
    """The flow is computed inside the graph, its sweeps as one ONNX Loop (not unrolled)."""
    import onnx

    path = edge.export_onnx(_model("vy-1cl"), tmp_path / "m.onnx")
    ops = [n.op_type for n in onnx.load(path).graph.node]
    assert ops.count("Loop") == 1 and "Conv" in ops


@pytest.mark.slow
def test_trained_vy3cl_exported_by_predict_runs_in_onnxruntime(paper_run, command_in_process):
    """The done-when check: the paper's Vy-3CL, trained, exported from the command line, gives
    merjax's probabilities under onnxruntime."""
    from merjax import predict

    workdir, _ = paper_run
    folder = json.loads((workdir / "input_study" / "summary.json").read_text())["model"]
    out = workdir / "exports" / "vy-3cl.onnx"
    code, stdout, err = command_in_process(predict.main, f"--model={folder}", f"--export={out}")
    assert code == 0, err
    assert "exported to" in stdout and out.is_file()
    model = inference.load(folder)
    h, w = model.spec.frame_size
    rng = np.random.default_rng(0)
    onset = rng.integers(0, 256, (6, h, w), np.uint8)
    apex = np.clip(onset.astype(int) + rng.integers(-8, 9, onset.shape), 0, 255).astype(np.uint8)
    np.testing.assert_allclose(
        edge.load_onnx(out).classify(onset, apex), model.classify(onset, apex), atol=1e-4
    )
    assert json.loads(out.with_name("vy-3cl.onnx.json").read_text())["onnx"]["model_folder"]


def test_int8_quantises_the_network_and_keeps_the_flow_float(tmp_path):
    import onnx

    model = _model("vy-2cl")
    calibration = _frames(8, seed=3)
    path = edge.quantize_int8(model, tmp_path / "m.int8.onnx", calibration=calibration)
    graph = onnx.load(path).graph
    ops = [n.op_type for n in graph.node]
    assert ops.count("Conv") == 2 and ops.count("QuantizeLinear") >= 2
    # Every convolution reads dequantised int8 weights; the flow's loop has no quantisation.
    made = {o: n for n in graph.node for o in n.output}
    for conv in (n for n in graph.node if n.op_type == "Conv"):
        assert made[conv.input[0]].op_type == "DequantizeLinear"
        assert made[conv.input[1]].op_type == "DequantizeLinear"
    (loop,) = (n for n in graph.node if n.op_type == "Loop")
    body = loop.attribute[0].g
    assert not {"QuantizeLinear", "DequantizeLinear"} & {n.op_type for n in body.node}
    probs = edge.load_onnx(path).classify(*_frames(3, seed=4))
    assert probs.shape == (3, 5)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    meta = json.loads((tmp_path / "m.int8.onnx.json").read_text())
    assert meta["onnx"]["int8"] == {"quantised": list(edge.QUANTISED_OPS), "calibration_pairs": 8}


def test_without_the_export_extra_one_line_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "jax2onnx", None)  # import jax2onnx now fails
    with pytest.raises(DataError, match=r"pip install 'merjax\[export\]'"):
        edge.export_onnx(_model("vy-1cl"), tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_a_damaged_onnx_file_is_one_error(tmp_path):
    path = edge.export_onnx(_model("vy-1cl"), tmp_path / "m.onnx")
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataError, match="not an ONNX graph onnxruntime runs"):
        edge.load_onnx(path)


# --------------------------------------------------------------------------- .jaxexport


def test_jaxexport_records_its_jax_and_date_and_says_how_to_renew(tmp_path, caplog):
    model = _model("vy-1cl")
    model.path = tmp_path / "the-model-folder"
    path = inference.export(model, tmp_path / "m.jaxexport", platforms=("cpu",))
    meta_path = tmp_path / "m.jaxexport.json"
    meta = json.loads(meta_path.read_text())
    assert meta["jaxexport"]["jax"] == jax.__version__
    assert meta["jaxexport"]["model_folder"] == str(model.path)
    with caplog.at_level(logging.WARNING):
        inference.load_exported(path)
    assert not caplog.records  # fresh: no message

    meta["jaxexport"].update(jax="0.4.1", exported="2024-01-02")
    meta_path.write_text(json.dumps(meta))
    with caplog.at_level(logging.WARNING):
        fn = inference.load_exported(path)
    (record,) = caplog.records
    line = record.getMessage()
    assert "past jax.export's ~6-month window" in line and "\n" not in line
    assert f"--model={model.path} --export={path}" in line
    onset, apex = _frames(2)
    np.testing.assert_allclose(fn(onset, apex), model.classify(onset, apex), atol=1e-5)

    path.write_bytes(b"not a jax.export artifact")
    with pytest.raises(DataError, match="cannot be read by jax.*export it again from its model"):
        inference.load_exported(path)


def test_predict_export_refuses_an_unknown_suffix(command_in_process, tmp_path):
    from merjax import predict

    folder = inference.save(tmp_path / "m", _model("vy-1cl").spec, _model("vy-1cl").variables)
    code, _, err = command_in_process(predict.main, f"--model={folder}", "--export=m.tflite")
    assert code != 0 and "the suffix picks the format" in err and ".onnx" in err

"""Models for edge runtimes: one ONNX graph from two uint8 frames to class probabilities.

A model folder (:mod:`merjax.inference`) stays the durable format; an ONNX file is what a phone,
a board or a browser runs (ONNX Runtime, and the runtimes that read ONNX)::

    edge.export_onnx(model, "vy-3cl.onnx")          # onset, apex uint8 [B, H, W] -> probabilities
    runtime = edge.load_onnx("vy-3cl.onnx")         # onnxruntime, no JAX
    probs_BxK = runtime.classify(onset_BxHxW, apex_BxHxW)
    edge.quantize_int8(model, "vy-3cl.int8.onnx", calibration=(onset_NxHxW, apex_NxHxW))

The graph is :func:`merjax.inference.probabilities` converted by jax2onnx: the flow (Horn-Schunck
as an ONNX ``Loop``, or TV-L1) at the model's frame size, the resize, the representation, the
training normalisation, the network in eval mode, softmax. ``<file>.json`` beside it holds the
model's spec and how the file was made. Needs the ``export`` extra (``pip install
'merjax[export]'``): jax2onnx, onnx and onnxruntime.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import functools
import importlib
import importlib.metadata
import json
import logging
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from merjax import files, flow, inference
from merjax.errors import DataError

INPUTS = ("onset", "apex")
OUTPUT = "probabilities"
OPSET = 21  # ONNX Runtime 1.17+ and most edge runtimes read it; jax2onnx targets 23 by default
NETWORK_INPUT = "maps"  # the int8 graph's seam between the float flow and the quantised network


@contextlib.contextmanager
def _quiet():
    """onnx_ir warns per untyped constant; jax2onnx logs each conversion and its optional
    plugins at INFO on the root logger (shown wherever absl sets that level): noise to a user."""
    loggers = [logging.getLogger(), logging.getLogger("onnx_ir")]
    levels = [q.level for q in loggers]
    for q, level in zip(loggers, (logging.WARNING, logging.ERROR), strict=True):
        q.setLevel(max(q.getEffectiveLevel(), level))
    try:
        yield
    finally:
        for q, level in zip(loggers, levels, strict=True):
            q.setLevel(level)


def _need(module: str):
    try:
        with _quiet():
            return importlib.import_module(module)
    except ImportError:
        raise DataError(
            f"ONNX export needs {module}: pip install 'merjax[export]' (jax2onnx, onnx, "
            "onnxruntime)"
        ) from None


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def _strip_shapes(graph) -> None:
    """Drops the intermediate shape annotations (``value_info``) of a graph and its subgraphs.

    jax2onnx moves NHWC tensors to NCHW around convolutions and removes transpose pairs, but
    some annotations keep the old layout; ONNX Runtime checks them against its own inference and
    refuses the graph. They are optional in ONNX: the runtime infers every shape again."""
    del graph.value_info[:]
    for node in graph.node:
        for attr in node.attribute:
            if attr.g is not None and attr.type == attr.GRAPH:
                _strip_shapes(attr.g)
            for g in attr.graphs:
                _strip_shapes(g)


def _convert(fn, args: Sequence[jax.ShapeDtypeStruct], names, output: str, what: str):
    """jax2onnx's ``to_onnx`` with merjax's conventions; a part that does not convert is one
    DataError naming ``what`` and jax2onnx's reason."""
    to_onnx = _need("jax2onnx").to_onnx
    # jax2onnx traces under patched primitives: jit caches filled during the trace would hand
    # those to the next JAX call (a "no MLIR translation rule" error), and caches filled before
    # it would make the graph depend on what ran earlier. Both sides start clean.
    jax.clear_caches()
    try:
        with _quiet():
            proto = to_onnx(
                fn,
                list(args),
                model_name=what,
                opset=OPSET,
                input_names=names,
                output_names=[output],
            )
    except (NotImplementedError, TypeError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(f"{what} does not convert to ONNX: {first}") from e
    finally:
        jax.clear_caches()
    _strip_shapes(proto.graph)
    return proto


def _frames_spec(spec: inference.ModelSpec) -> list[jax.ShapeDtypeStruct]:
    h, w = spec.frame_size
    return [jax.ShapeDtypeStruct(("B", h, w), jnp.uint8)] * 2


def _describe(model: inference.Model) -> str:
    return f"{model.spec.net} with {model.spec.flow.describe()}"


def _onnx_module(model: inference.Model):
    """The network with its convolutions as ``lax.conv`` (the same parameters): ONNX ``Conv``
    nodes, grouped ones included, which edge runtimes optimise; im2col's slices and products
    would reach them as many small nodes."""
    return model.module.clone(conv_impl="lax")


def onnx_graph(model: inference.Model):
    """The ONNX ``ModelProto`` of ``(onset, apex) -> probabilities`` for ``model``."""
    fn = functools.partial(
        inference.probabilities, model.variables, module=_onnx_module(model), spec=model.spec
    )
    return _convert(
        lambda a, b: fn(a, b), _frames_spec(model.spec), list(INPUTS), OUTPUT, _describe(model)
    )


def _sidecar(model: inference.Model, path: Path, **extra) -> bytes:
    meta = model.spec.to_json()
    meta["onnx"] = {
        "inputs": {n: ["B", *model.spec.frame_size, "uint8"] for n in INPUTS},
        "output": {OUTPUT: ["B", len(model.spec.class_names), "float32"]},
        "opset": OPSET,
        "jax2onnx": _version("jax2onnx"),
        "onnxruntime": _version("onnxruntime"),
        "exported": datetime.date.today().isoformat(),
        "model_folder": str(model.path) if model.path else None,
        **extra,
    }
    return (json.dumps(meta, indent=1) + "\n").encode()


def export_onnx(model: inference.Model, path: str | Path) -> Path:
    """Writes ``path`` (an ONNX graph, the weights inside, a symbolic batch size) and
    ``<path>.json`` (the spec), both or neither."""
    path = Path(path)
    proto = onnx_graph(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    files.commit({path: proto.SerializeToString(), Path(f"{path}.json"): _sidecar(model, path)})
    return path


@dataclasses.dataclass
class OnnxModel:
    """An exported graph in an onnxruntime session, with the spec it was exported with."""

    spec: inference.ModelSpec
    session: object
    path: Path | None

    def classify(self, onset_BxHxW, apex_BxHxW) -> np.ndarray:
        """Probabilities ``[B, K]`` for uint8 frames at ``spec.frame_size`` (as
        :meth:`merjax.inference.Model.classify`)."""
        onset, apex = inference.check_pairs(onset_BxHxW, apex_BxHxW, self.spec.frame_size)
        feed = {INPUTS[0]: onset.astype(np.uint8), INPUTS[1]: apex.astype(np.uint8)}
        return self.session.run([OUTPUT], feed)[0]


def session(path: str | Path | bytes, *, threads: int | None = None):
    """An onnxruntime ``InferenceSession`` on the CPU of a file or a serialised graph
    (``threads``: intra-op threads)."""
    ort = _need("onnxruntime")
    options = ort.SessionOptions()
    options.log_severity_level = 3  # its warnings about unused initialisers are noise to a user
    if threads:
        options.intra_op_num_threads = threads
    try:
        source = path if isinstance(path, bytes) else str(path)
        return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types; the message is the point
        what = "the graph" if isinstance(path, bytes) else repr(str(path))
        raise DataError(f"{what} is not an ONNX graph onnxruntime runs: {e}") from None


def runtime(model: inference.Model, *, threads: int | None = None) -> OnnxModel:
    """``model`` converted and in an onnxruntime session, without a file (for timing, tests)."""
    return OnnxModel(
        model.spec, session(onnx_graph(model).SerializeToString(), threads=threads), None
    )


def load_onnx(path: str | Path, *, threads: int | None = None) -> OnnxModel:
    """An exported file and its ``.json``, ready to classify."""
    path = Path(path)
    meta = Path(f"{path}.json")
    if not path.is_file():
        raise DataError(f"{str(path)!r}: no such file")
    try:
        spec = inference.ModelSpec.from_json(json.loads(meta.read_text()), str(meta))
    except (OSError, ValueError) as e:
        raise DataError(f"{str(meta)!r}: the spec beside the graph is unreadable ({e})") from None
    return OnnxModel(spec, session(path, threads=threads), path)


# --------------------------------------------------------------------------- int8


def network_graph(model: inference.Model):
    """The ONNX graph of the network part, ``maps [B, s, s, C] -> probabilities``
    (:func:`merjax.inference.maps_probabilities`): the part :func:`quantized_network`
    quantises, and half of the pipeline when the two are timed apart."""
    s, c = model.spec.input_size, flow.REPRESENTATIONS[model.spec.representation]
    net = functools.partial(
        inference.maps_probabilities,
        model.variables,
        module=_onnx_module(model),
        temperature=model.spec.temperature,
    )
    arg = jax.ShapeDtypeStruct(("B", s, s, c), jnp.float32)
    return _convert(lambda x: net(x), [arg], [NETWORK_INPUT], OUTPUT, f"{model.spec.net} network")


def flow_graph(model: inference.Model):
    """The ONNX graph of the flow part, ``(onset, apex) -> maps`` (flow, resize, representation),
    kept in float32: the other half of the pipeline."""
    spec = model.spec
    return _convert(
        lambda a, b: inference.maps_of(a, b, spec),
        _frames_spec(spec),
        list(INPUTS),
        NETWORK_INPUT,
        _describe(model),
    )


QUANTISED_OPS = ("Conv", "MatMul", "Gemm")
"""What int8 quantises: the network's convolutions and dense layers (weights int8 per channel,
activations uint8 per tensor, calibrated). The flow, its loop, the resize and the normalisation
stay float32: Horn-Schunck's Jacobi sweeps average small differences that 8 bits cannot hold."""


def _calibrated(maps: np.ndarray, batch: int):
    ort_q = _need("onnxruntime.quantization")

    class Reader(ort_q.CalibrationDataReader):
        def __init__(self):
            self._batches = iter([maps[i : i + batch] for i in range(0, len(maps), batch)])

        def get_next(self):
            x = next(self._batches, None)
            return None if x is None else {NETWORK_INPUT: x}

    return Reader()


def quantized_network(model: inference.Model, calibration_maps: np.ndarray, *, batch: int = 16):
    """The network part (``maps [B, s, s, C] -> probabilities``) statically quantised to int8
    (onnxruntime's ``quantize_static``, QDQ: :data:`QUANTISED_OPS` with int8 weights per channel
    and uint8 activations), its activation ranges calibrated on ``calibration_maps`` (network
    inputs of *training* clips, never the test subjects'). Returns the ONNX ModelProto."""
    _need("onnx")
    ort_q = _need("onnxruntime.quantization")
    import onnx

    maps = np.asarray(calibration_maps, np.float32)
    if len(maps) == 0:
        raise DataError("int8 calibration needs at least one training clip")
    with tempfile.TemporaryDirectory() as tmp:
        raw, float_net, int8_net = (Path(tmp) / f"net{s}.onnx" for s in ("", ".pre", ".int8"))
        onnx.save(network_graph(model), raw)
        # Shape inference and graph folding first, as onnxruntime's quantiser asks.
        ort_q.quant_pre_process(str(raw), str(float_net), skip_symbolic_shape=True)
        ort_q.quantize_static(
            str(float_net),
            str(int8_net),
            _calibrated(maps, batch),
            quant_format=ort_q.QuantFormat.QDQ,
            per_channel=True,
            weight_type=ort_q.QuantType.QInt8,
            activation_type=ort_q.QuantType.QUInt8,
            op_types_to_quantize=list(QUANTISED_OPS),
        )
        return onnx.load(int8_net)


def network_session(proto, *, threads: int | None = None):
    """An onnxruntime session of a network graph (:func:`quantized_network`); run it with
    ``session.run([OUTPUT], {NETWORK_INPUT: maps})``."""
    return session(proto.SerializeToString(), threads=threads)


def quantize_int8(
    model: inference.Model,
    path: str | Path,
    *,
    calibration: tuple[np.ndarray, np.ndarray],
    batch: int = 16,
) -> Path:
    """Writes an ONNX graph of the whole pipeline whose network is :func:`quantized_network`,
    calibrated on ``calibration``: pairs of frames from the *training* set (uint8 ``[N, H, W]``),
    never the test subjects; the flow in front of it stays float32."""
    import onnx.compose

    path = Path(path)
    onset, apex = inference.check_pairs(*calibration, model.spec.frame_size)
    if len(onset) == 0:
        raise DataError("int8 calibration needs at least one pair of training frames")
    maps = jax.jit(functools.partial(inference.maps_of, spec=model.spec))(onset, apex)
    net = quantized_network(model, np.asarray(maps), batch=batch)
    flow_part = flow_graph(model)
    net.ir_version = flow_part.ir_version = min(net.ir_version, flow_part.ir_version)
    merged = onnx.compose.merge_models(
        flow_part, net, io_map=[(NETWORK_INPUT, NETWORK_INPUT)], prefix2="net_"
    )
    # merge_models prefixes the second graph's names; the output keeps the documented name.
    for out in merged.graph.output:
        if out.name == f"net_{OUTPUT}":
            for node in merged.graph.node:
                node.output[:] = [OUTPUT if o == out.name else o for o in node.output]
            out.name = OUTPUT
    path.parent.mkdir(parents=True, exist_ok=True)
    extra = {"int8": {"quantised": list(QUANTISED_OPS), "calibration_pairs": len(onset)}}
    files.commit(
        {path: merged.SerializeToString(), Path(f"{path}.json"): _sidecar(model, path, **extra)}
    )
    return path


# --------------------------------------------------------------------------- latency


def latency_ms(fn, *args, repeats: int = 50, min_seconds: float = 0.0) -> float:
    """Median milliseconds of ``fn(*args)`` (after one warm-up call; JAX results are waited
    for), over ``repeats`` calls or ``min_seconds``, whichever is longer."""
    jax.block_until_ready(fn(*args))
    times = []
    start = time.perf_counter()
    while len(times) < repeats or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))

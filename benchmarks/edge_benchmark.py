"""ONNX Runtime against JAX: two frames -> class probabilities, batch 1, on this machine.

    python benchmarks/edge_benchmark.py                   # every network; ~5 min on a 2-core CPU
    python benchmarks/edge_benchmark.py --nets=vy-3cl,resnet8 --repeats=50

For every network of the paper (the shallow Vy-1CL..Vy-4CL, ResNet2..ResNet18), the field's
STSTNet and the new families (depthwise-separable, ShuffleNet v2 units), each with random weights
(the time does not depend on them) at ``--size`` (the paper's 64x64):

* the whole pipeline (Horn-Schunck, resize, representation, network, softmax) as one jitted JAX
  function and as one ONNX graph in onnxruntime (:func:`merjax.edge.runtime`);
* its two halves apart (:func:`merjax.edge.flow_graph`, :func:`merjax.edge.network_graph`), in
  both runtimes, to say where a difference comes from;
* the network half statically quantised to int8 (:func:`merjax.edge.quantized_network`,
  calibrated on the maps of random textured frames: speed only, no accuracy here).

Edge runtimes are CPUs here: it is not part of the GPU suite. Both runtimes get the machine's
cores (onnxruntime's default intra-op threads, XLA:CPU's).
``--profile=NET`` also prints onnxruntime's own profile of that network's whole graph: the
operator types that take the time. Writes ``<out>/edge_benchmark.json``.
"""

from __future__ import annotations

import collections
import functools
import json
import os
import pathlib
import platform
import tempfile

import jax
import numpy as np
from absl import app, flags

from merjax import edge, inference
from merjax.flow import FlowSettings

PAPER = ["vy-1cl", "vy-2cl", "vy-3cl", "vy-4cl"] + [f"resnet{d}" for d in range(2, 19, 2)]
NEW = ["vy-1cl-sep", "vy-2cl-sep", "vy-3cl-sep", "vy-4cl-sep"]
NEW += ["vy-2cl-shuffle", "vy-3cl-shuffle", "vy-4cl-shuffle", "vy-3cl-shuffle-g4"]

FLAGS = flags.FLAGS
flags.DEFINE_list("nets", PAPER + ["ststnet"] + NEW, "Networks by merjax name.")
flags.DEFINE_integer("size", 64, "Frame and network input side.")
flags.DEFINE_integer("repeats", 30, "Timed batch-1 calls per figure (after one warm-up).")
flags.DEFINE_float("min_seconds", 0.5, "At least this long per figure.")
flags.DEFINE_bool("int8", True, "Also time the int8 network half.")
flags.DEFINE_string("profile", "vy-3cl", "Print onnxruntime's operator profile of this network.")
flags.DEFINE_string("out", "bench_out", "Where to write edge_benchmark.json.")


def textured_pair(size: int, n: int = 1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """uint8 frames and the same moved by up to a pixel: the flow has work to do."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    onset, apex = [], []
    for _ in range(n):
        p, d = rng.uniform(3, 8, 2), rng.uniform(-1, 1, 2)
        onset.append(128 + 60 * np.sin(xx / p[0]) * np.cos(yy / p[1]))
        apex.append(128 + 60 * np.sin((xx - d[0]) / p[0]) * np.cos((yy - d[1]) / p[1]))
    q = lambda a: np.clip(np.stack(a), 0, 255).astype(np.uint8)  # noqa: E731
    return q(onset), q(apex)


def ort_profile(proto, feed: dict, calls: int = 20) -> list[tuple[str, float]]:
    """Share of onnxruntime's kernel time per operator type, over ``calls`` runs."""
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        options = ort.SessionOptions()
        options.enable_profiling = True
        options.profile_file_prefix = os.path.join(tmp, "ort")
        options.log_severity_level = 3
        sess = ort.InferenceSession(
            proto.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        for _ in range(calls):
            sess.run(None, feed)
        events = json.loads(pathlib.Path(sess.end_profiling()).read_text())
    per_op: dict[str, float] = collections.defaultdict(float)
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            per_op[e["args"].get("op_name", "?")] += e["dur"]
    total = sum(per_op.values()) or 1.0
    return sorted(((k, v / total) for k, v in per_op.items()), key=lambda kv: -kv[1])


def measure(net: str, onset: np.ndarray, apex: np.ndarray) -> dict:
    size = FLAGS.size
    model = inference.untrained(net, size, FlowSettings(size=(size, size)))
    ms = lambda fn, *a: edge.latency_ms(  # noqa: E731
        fn, *a, repeats=FLAGS.repeats, min_seconds=FLAGS.min_seconds
    )
    row = {"net": net}
    jitted = model.jitted()
    row["jax_ms"] = ms(jitted, onset, apex)
    row["onnx_ms"] = ms(edge.runtime(model).classify, onset, apex)

    maps_fn = jax.jit(functools.partial(inference.maps_of, spec=model.spec))
    maps = np.asarray(maps_fn(onset, apex))
    net_fn = jax.jit(
        lambda x: inference.maps_probabilities(
            model.variables, x, module=model.module, temperature=model.spec.temperature
        )
    )
    row["jax_flow_ms"], row["jax_net_ms"] = ms(maps_fn, onset, apex), ms(net_fn, maps)
    flow_sess = edge.session(edge.flow_graph(model).SerializeToString())
    net_sess = edge.network_session(edge.network_graph(model))
    feed = {edge.INPUTS[0]: onset, edge.INPUTS[1]: apex}
    row["onnx_flow_ms"] = ms(lambda: flow_sess.run(None, feed))
    row["onnx_net_ms"] = ms(lambda: net_sess.run(None, {edge.NETWORK_INPUT: maps}))
    if FLAGS.int8:
        calib_on, calib_ap = textured_pair(size, 32, seed=1)
        calib = np.asarray(maps_fn(calib_on, calib_ap))
        q = edge.network_session(edge.quantized_network(model, calib))
        row["int8_net_ms"] = ms(lambda: q.run(None, {edge.NETWORK_INPUT: maps}))
    if net == FLAGS.profile:
        row["onnx_profile"] = ort_profile(edge.onnx_graph(model), feed)
    return row


def main(argv):
    del argv
    model_name = (
        [
            line.split(":", 1)[1].strip()
            for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ]
        if pathlib.Path("/proc/cpuinfo").exists()
        else []
    )
    cpu = model_name[0] if model_name else platform.processor() or platform.machine()
    machine = f"{cpu}, {os.cpu_count()} cores"
    try:
        import jax2onnx  # noqa: F401
        import onnxruntime
    except ImportError:
        print("edge_benchmark: needs the export extra (pip install -e '.[export]'); skipped")
        return

    print(
        f"{machine}; jax {jax.__version__} ({jax.default_backend()}), onnxruntime "
        f"{onnxruntime.__version__}; {FLAGS.size}x{FLAGS.size} frames, batch 1, median ms",
        flush=True,
    )
    onset, apex = textured_pair(FLAGS.size)
    head = (
        f"{'net':16s} {'jax':>7s} {'onnx':>7s} {'onnx/jax':>8s} | {'flow jax':>8s} "
        f"{'flow ort':>8s} | {'net jax':>7s} {'net ort':>7s} {'net int8':>8s} {'int8 x':>6s}"
    )
    print(head, flush=True)
    rows = []
    for net in FLAGS.nets:
        r = measure(net, onset, apex)
        r["onnx_over_jax"] = r["onnx_ms"] / r["jax_ms"]
        if "int8_net_ms" in r:
            r["int8_speedup"] = r["onnx_net_ms"] / r["int8_net_ms"]
        rows.append(r)
        int8 = f"{r['int8_net_ms']:8.3f} {r['int8_speedup']:5.2f}x" if "int8_net_ms" in r else ""
        print(
            f"{net:16s} {r['jax_ms']:7.3f} {r['onnx_ms']:7.3f} {r['onnx_over_jax']:7.2f}x | "
            f"{r['jax_flow_ms']:8.3f} {r['onnx_flow_ms']:8.3f} | {r['jax_net_ms']:7.3f} "
            f"{r['onnx_net_ms']:7.3f} {int8}",
            flush=True,
        )
        if "onnx_profile" in r:
            top = ", ".join(f"{op} {share:.0%}" for op, share in r["onnx_profile"][:8])
            print(f"  onnxruntime kernel time of {net}'s whole graph: {top}", flush=True)
    out = pathlib.Path(FLAGS.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"machine": machine, "jax": jax.__version__, "onnxruntime": onnxruntime.__version__}
    (out / "edge_benchmark.json").write_text(json.dumps({**meta, "rows": rows}, indent=1))


if __name__ == "__main__":
    app.run(main)

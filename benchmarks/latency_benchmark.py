"""Real-time inference: one clip, two 64x64 frames -> class probabilities, end to end.

    python benchmarks/latency_benchmark.py                      # ~2 min on a 2-core CPU
    python benchmarks/latency_benchmark.py --model=runs/input_study-quick/models/vy-3cl

For Vy-3CL and ResNet8 (random weights unless ``--model``: weights do not change the time) it
times ``inference.probabilities`` -- Horn-Schunck (MATLAB variant, 10 iterations) + resize +
representation + network + softmax, one jitted function -- on one clip (median and p99) and in
batches (clips/s). Baselines measured in the same run on the same frames:

* ``sequential``: the paper's shape of pipeline -- flow by pyoptflow's Horn-Schunck (NumPy/SciPy,
  10 iterations), then the network as its own jitted call;
* ``unfused``: merjax's flow and network as two jitted calls with the flow copied to the host
  between them.

The paper's 24.6 ms per clip (11.8 ms flow + 12.8 ms network, MATLAB on a GTX 1060) is printed
beside them; it was not measured here.
"""

from __future__ import annotations

import functools
import json
import pathlib
import time

import jax
import numpy as np
from absl import app, flags

from merjax import inference
from merjax.flow import FlowSettings

FLAGS = flags.FLAGS
flags.DEFINE_list("nets", ["vy-3cl", "resnet8"], "Networks by paper name (merjax.models.by_name).")
flags.DEFINE_string("model", None, "A saved model folder to time instead of --nets.")
flags.DEFINE_list("batches", ["64", "1024"], "Batch sizes for throughput.")
flags.DEFINE_float("min_time", 3.0, "Seconds of timed calls per figure.")
flags.DEFINE_integer("size", 64, "Frame and network input side.")
flags.DEFINE_bool("baselines", True, "Also time the sequential (pyoptflow) and unfused pipelines.")
flags.DEFINE_string("out", "bench_out", "Where to write latency_benchmark.json.")

PAPER_MS = {"flow": 11.8, "network": 12.8, "total": 24.6}


def times(fn, args, min_time: float, min_calls: int = 20) -> np.ndarray:
    """Seconds per call (after one warm-up call)."""
    jax.block_until_ready(fn(*args))
    ts = []
    start = time.perf_counter()
    while len(ts) < min_calls or (time.perf_counter() - start < min_time and len(ts) < 20000):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        ts.append(time.perf_counter() - t0)
    return np.asarray(ts)


def frames(n: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Textured uint8 frames and the same shifted by up to a pixel (a micro-movement)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    onset, apex = [], []
    for _ in range(n):
        p = rng.uniform(3, 8, 2)
        d = rng.uniform(-1, 1, 2)
        onset.append(128 + 60 * np.sin(xx / p[0]) * np.cos(yy / p[1]))
        apex.append(128 + 60 * np.sin((xx - d[0]) / p[0]) * np.cos((yy - d[1]) / p[1]))
    q = lambda a: np.clip(np.stack(a), 0, 255).astype(np.uint8)  # noqa: E731
    return q(onset), q(apex)


def load_models() -> list[inference.Model]:
    if FLAGS.model:
        return [inference.load(FLAGS.model)]
    frames_at = FlowSettings(size=(FLAGS.size, FLAGS.size))
    return [inference.untrained(name, FLAGS.size, frames_at) for name in FLAGS.nets]


def _network(model: inference.Model):
    """The model's network part alone (flow in, probabilities out), jitted."""
    return jax.jit(
        functools.partial(
            inference.network_probabilities, model.variables, module=model.module, spec=model.spec
        )
    )


def sequential_pipeline(model: inference.Model):
    """pyoptflow's Horn-Schunck in NumPy, then the jitted network: the paper's two-step shape."""
    from pyoptflow import HornSchunck

    spec = model.spec
    net = _network(model)

    def run(onset, apex):
        u, v = HornSchunck(
            onset[0].astype(np.float32),
            apex[0].astype(np.float32),
            alpha=spec.flow.horn_schunck.smoothness,
            Niter=spec.flow.horn_schunck.num_iter,
        )
        return net(np.stack([u, v], -1)[None].astype(np.float32))

    return run


def unfused_pipeline(model: inference.Model):
    hs = jax.jit(functools.partial(inference.flow_of, spec=model.spec))
    net = _network(model)
    return lambda onset, apex: net(np.asarray(hs(onset, apex)))


def main(argv):
    del argv
    device = f"{jax.devices()[0].device_kind} ({jax.default_backend()})"
    print(f"device: {device}, jax {jax.__version__}", flush=True)
    batches = [int(b) for b in FLAGS.batches]
    onset_all, apex_all = frames(max(batches), FLAGS.size)
    rows = []
    for model in load_models():
        fused = model.jitted()
        pipes = {"merjax (one jitted function)": fused}
        if FLAGS.baselines:
            pipes["unfused (flow, host, network)"] = unfused_pipeline(model)
            try:
                pipes["sequential (pyoptflow + network)"] = sequential_pipeline(model)
            except ImportError:
                print("pyoptflow is not installed: no sequential baseline (pip install pyoptflow)")
        one = (onset_all[:1], apex_all[:1])
        one_dev = tuple(jax.device_put(a) for a in one)
        lat = {}
        for name, fn in pipes.items():
            args = one_dev if fn is fused else one
            t = times(fn, args, FLAGS.min_time) * 1e3
            lat[name] = t
            print(
                f"{model.spec.net:8s} 1 clip  {name:34s} median {np.median(t):8.3f} ms  p99 "
                f"{np.percentile(t, 99):8.3f} ms",
                flush=True,
            )
        base = np.median(lat["merjax (one jitted function)"])
        thr = {}
        for b in batches:
            args = tuple(jax.device_put(a[:b]) for a in (onset_all, apex_all))
            t = times(fused, args, FLAGS.min_time, min_calls=5)
            thr[b] = b / np.median(t)
            print(f"{model.spec.net:8s} batch {b:5d}: {thr[b]:12,.0f} clips/s", flush=True)
        row = {
            "net": model.spec.net,
            "device": device,
            "frames": FLAGS.size,
            "latency_ms": {
                k: {"median": float(np.median(v)), "p99": float(np.percentile(v, 99))}
                for k, v in lat.items()
            },
            "clips_per_s": {str(b): float(v) for b, v in thr.items()},
            "speedup_vs": {k: float(np.median(v) / base) for k, v in lat.items()},
            "paper_ms": PAPER_MS["total"],
            "paper_ratio": float(PAPER_MS["total"] / base),
        }
        rows.append(row)
        ratios = ", ".join(
            f"{v:.1f}x {k.split(' (')[0]}"
            for k, v in row["speedup_vs"].items()
            if k.startswith(("u", "s"))
        )
        print(
            f"{model.spec.net:8s} merjax {base:.3f} ms per clip: {ratios}; "
            f"{row['paper_ratio']:.0f}x under the paper's {PAPER_MS['total']} ms (GTX 1060, not "
            "measured here)",
            flush=True,
        )
    out = pathlib.Path(FLAGS.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "latency_benchmark.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    app.run(main)

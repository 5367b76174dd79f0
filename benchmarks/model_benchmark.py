"""Forward latency and throughput of the paper's networks (Vy-3CL and ResNet8 by default).

    python benchmarks/model_benchmark.py                       # ~1 min on a 2-core CPU
    python benchmarks/model_benchmark.py --nets=vy-3cl,resnet8,vxvy-3cl,resnet18 --batch=256

Latency: one 64x64 clip's flow map -> logits, jitted, eval mode; median and p99 over repeated
calls. Throughput: clips per second at ``--batch``. The paper's network took 12.8 ms per clip on a
GTX 1060 (MATLAB); that figure is printed beside ours as the baseline.
"""

from __future__ import annotations

import json
import pathlib
import time

import jax
import numpy as np
from absl import app, flags

from merjax import models
from merjax.flow import REPRESENTATIONS

FLAGS = flags.FLAGS
flags.DEFINE_list(
    "nets", ["vy-3cl", "resnet8"], "Networks by paper name (see merjax.models.by_name)."
)
flags.DEFINE_integer("batch", 256, "Clips per call for the throughput figure.")
flags.DEFINE_integer("size", 64, "Input height and width.")
flags.DEFINE_float("min_time", 3.0, "Seconds of timed calls per figure.")
flags.DEFINE_string("out", "bench_out", "Where to write model_benchmark.json.")

PAPER_MS_PER_CLIP = 12.8


def times(fn, x, min_time: float) -> np.ndarray:
    jax.block_until_ready(fn(x))
    ts = []
    start = time.perf_counter()
    while len(ts) < 20 or (time.perf_counter() - start < min_time and len(ts) < 5000):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(x))
        ts.append(time.perf_counter() - t0)
    return np.asarray(ts)


def main(argv):
    del argv
    device = jax.devices()[0].device_kind
    rows = []
    for name in FLAGS.nets:
        model, rep = models.by_name(name)
        c = REPRESENTATIONS[rep]
        variables = models.init(model, jax.random.key(0), (FLAGS.size, FLAGS.size, c))
        fwd = jax.jit(lambda x: model.apply(variables, x))
        one = jax.device_put(
            np.random.default_rng(0).normal(size=(1, FLAGS.size, FLAGS.size, c)).astype(np.float32)
        )
        many = jax.device_put(
            np.random.default_rng(1)
            .normal(size=(FLAGS.batch, FLAGS.size, FLAGS.size, c))
            .astype(np.float32)
        )
        lat = times(fwd, one, FLAGS.min_time) * 1e3
        thr = FLAGS.batch / np.median(times(fwd, many, FLAGS.min_time))
        row = {
            "net": name,
            "params": models.count_params(model, (FLAGS.size, FLAGS.size, c)),
            "median_ms": float(np.median(lat)),
            "p99_ms": float(np.percentile(lat, 99)),
            "clips_per_s": float(thr),
            "batch": FLAGS.batch,
            "device": device,
        }
        rows.append(row)
        print(
            f"{name:10s} {row['params']:>10,} params | 1 clip: median {row['median_ms']:.3f} ms, "
            f"p99 {row['p99_ms']:.3f} ms ({PAPER_MS_PER_CLIP / row['median_ms']:.1f}x the paper's "
            f"{PAPER_MS_PER_CLIP} ms) | batch {FLAGS.batch}: {thr:,.0f} clips/s on {device}",
            flush=True,
        )
    out = pathlib.Path(FLAGS.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "model_benchmark.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    app.run(main)

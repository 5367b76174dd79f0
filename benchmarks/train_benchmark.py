"""Fold strategies of the LOSO trainer, against training the folds one after another.

    python benchmarks/train_benchmark.py                      # 2-core CPU: ~3 min (reduced)
    python benchmarks/train_benchmark.py --paper              # GPU: the paper protocol

Each strategy (``merjax.train.STRATEGIES``) trains the same runs on the same random data; the
baseline is ``loop``: one jitted program per fold, folds one after another from Python. Times
are steady state (a first call compiles; it is timed separately), reported per epoch, with
the ratio ``loop / strategy`` (> 1: faster than the folds one after another).

``--paper`` is the paper's protocol on the composite's shape: 47 folds, 253 samples (506
training items with augmentation), Vy-3CL at 64x64, batch 64, 150 epochs; it prints the whole
run's time for the fastest strategy. The reduced default fits a 2-core CPU.
"""

from __future__ import annotations

import json
import pathlib
import time

import jax
import numpy as np
from absl import app, flags

from merjax import models, train

FLAGS = flags.FLAGS
flags.DEFINE_list("strategies", ["loop", "vmap", "chunked", "map"], "Strategies to time.")
flags.DEFINE_string("net", "vy-3cl", "Network (merjax.models.by_name).")
flags.DEFINE_integer("size", 32, "Input height and width.")
flags.DEFINE_integer("folds", 6, "Subjects = LOSO folds.")
flags.DEFINE_integer("per_subject", 8, "Samples per subject.")
flags.DEFINE_integer("batch", 64, "Mini-batch size.")
flags.DEFINE_integer("epochs", 2, "Timed epochs per strategy.")
flags.DEFINE_integer("chunk", 4, "Runs per chunk for 'chunked'.")
flags.DEFINE_bool("paper", False, "The paper protocol's shape (47 folds, 253 samples, 64x64).")
flags.DEFINE_integer("paper_epochs", 150, "Epochs for the --paper full-run figure.")
flags.DEFINE_string("out", "bench_out", "Where to write train_benchmark.json.")


def data(folds: int, per_subject: int, size: int, channels: int, total: int | None = None):
    rng = np.random.default_rng(0)
    n = total or folds * per_subject
    subjects = [f"s{i % folds:02d}" for i in range(n)]
    x = rng.normal(size=(n, size, size, channels)).astype(np.float32)
    xa = rng.normal(size=x.shape).astype(np.float32)
    labels = rng.integers(0, 5, n).astype(np.int32)
    return x, xa, labels, subjects


def time_strategy(model, d, strategy: str, epochs: int, batch: int, chunk: int) -> dict:
    cfg = dict(batch_size=batch, chunk_size=chunk, strategy=strategy, epochs_per_call=epochs)
    t0 = time.perf_counter()
    train.train_loso(model, *d, train.TrainConfig(epochs=epochs, **cfg), progress=None)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    train.train_loso(model, *d, train.TrainConfig(epochs=epochs, **cfg), progress=None)
    steady = time.perf_counter() - t0
    return {"strategy": strategy, "first_call_s": first, "s_per_epoch": steady / epochs}


def main(argv):
    del argv
    model, rep = models.by_name(FLAGS.net)
    channels = {"vy": 1, "vx": 1, "mag": 1, "vxvy": 2, "vxvym": 3}[rep]
    if FLAGS.paper:
        folds, size, total = 47, 64, 253
    else:
        folds, size, total = FLAGS.folds, FLAGS.size, None
    d = data(folds, FLAGS.per_subject, size, channels, total)
    n = len(d[2])
    print(f"{jax.devices()[0].device_kind} ({jax.default_backend()}), {FLAGS.net} {size}x{size}, "
          f"{folds} folds, {n} samples, batch {FLAGS.batch}, {FLAGS.epochs} timed epochs")
    rows = []
    for s in FLAGS.strategies:
        rows.append(time_strategy(model, d, s, FLAGS.epochs, FLAGS.batch, FLAGS.chunk))
        print(f"  {s}: first call {rows[-1]['first_call_s']:.1f} s, "
              f"{rows[-1]['s_per_epoch']:.3f} s / epoch", flush=True)
    base = next((r["s_per_epoch"] for r in rows if r["strategy"] == "loop"), None)
    print("| strategy | first call (s) | s / epoch | loop / strategy |")
    print("|---|---|---|---|")
    for r in rows:
        r["speedup_vs_loop"] = base / r["s_per_epoch"] if base else None
        ratio = f"{r['speedup_vs_loop']:.2f}x" if base else "-"
        print(f"| {r['strategy']} | {r['first_call_s']:.1f} | {r['s_per_epoch']:.3f} | {ratio} |")
    best = min(rows, key=lambda r: r["s_per_epoch"])
    result = {"device": jax.devices()[0].device_kind, "backend": jax.default_backend(),
              "net": FLAGS.net, "size": size, "folds": folds, "samples": n,
              "batch": FLAGS.batch, "rows": rows, "fastest": best["strategy"]}
    if FLAGS.paper:
        t0 = time.perf_counter()
        cfg = train.TrainConfig(epochs=FLAGS.paper_epochs, batch_size=FLAGS.batch,
                                strategy=best["strategy"], epochs_per_call=25,
                                chunk_size=FLAGS.chunk)
        train.train_loso(model, *d, cfg, progress=print)
        result["paper_run_s"] = time.perf_counter() - t0
        est_loop = base * FLAGS.paper_epochs if base else None
        print(f"paper protocol ({FLAGS.paper_epochs} epochs, {best['strategy']}): "
              f"{result['paper_run_s']:.1f} s; folds one after another, estimated from the "
              f"timed epochs: {est_loop:.1f} s" if est_loop else "")
    out = pathlib.Path(FLAGS.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "train_benchmark.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    app.run(main)

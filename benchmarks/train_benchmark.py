"""LOSO training programs: convolution formulation x fold strategy, per-run step time.

    python benchmarks/train_benchmark.py                           # quick profile's shape (16x16)
    python benchmarks/train_benchmark.py --size 64 --samples 64    # the paper's input size
    python benchmarks/train_benchmark.py --net resnet8             # any merjax.models name
    python benchmarks/train_benchmark.py --paper                   # GPU: every combination on the
                                                                   # paper's shapes, then the
                                                                   # protocol

Every combination of ``--convs`` (``lax``: lax.conv; ``im2col``: one matrix product) and
``--strategies`` (``loop``, ``vmap``, ``chunked``, ``map``) trains the same runs on the same random
data with merjax's trainer (epochs and steps are ``lax.scan``s in one program). The ``host`` rows
drive each step from Python as a jitted call, one run at a time (written out below, as the
trainer no longer has it); the first, with lax.conv, is the baseline: what merjax did on CPU
before. Each row is timed on a
second call (the first compiles; its time is shown too) and reported as milliseconds per run and
step, with the ratio to the baseline measured in the same process. ``--skip`` leaves out
combinations known to be pathological (lax.conv in scanned programs on CPU: ~1.4 s per run-step
at 16x16, ~57 s at 64x64). Results also go to ``<out>/train_benchmark.json``.

``--paper`` is the paper's protocol on the composite's shape: 47 folds, 253 samples (506 training
items with augmentation), 64x64, batch 64; after the table it trains 150 epochs with the fastest
combination and prints the whole run's time against the baseline's estimate.
"""

from __future__ import annotations

import functools
import itertools
import json
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from merjax import models, train

FLAGS = flags.FLAGS
flags.DEFINE_list("convs", ["lax", "im2col"], "Convolution formulations.")
flags.DEFINE_list("strategies", ["loop", "vmap", "chunked"], "Fold strategies (also: map).")
flags.DEFINE_list("skip", [], "Combinations to leave out, as conv/strategy (e.g. lax/vmap).")
flags.DEFINE_list(
    "host",
    ["lax", "im2col"],
    "Formulations to time with Python-driven steps, one run at a "
    "time (the first is the baseline: lax, merjax's CPU default before).",
)
flags.DEFINE_string("net", "vy-3cl", "Network (merjax.models.by_name).")
flags.DEFINE_integer("size", 16, "Input height and width (16: the quick profile; 64: the paper).")
flags.DEFINE_integer("folds", 4, "Subject groups = runs per seed.")
flags.DEFINE_integer("samples", 253, "Samples (x2 training items with augmentation).")
flags.DEFINE_integer("batch", 64, "Mini-batch size.")
flags.DEFINE_integer("epochs", 1, "Timed epochs per combination.")
flags.DEFINE_integer("chunk", 2, "Runs per chunk for 'chunked'.")
flags.DEFINE_bool(
    "paper", False, "The paper protocol's shape (47 folds, 253 samples, 64x64), then a full run."
)
flags.DEFINE_bool(
    "full_run", False, "After the table, train --paper_epochs epochs with the fastest combination."
)
flags.DEFINE_integer("paper_epochs", 150, "Epochs for the --paper full run.")
flags.DEFINE_string("out", "bench_out", "Where to write train_benchmark.json.")


def data(folds: int, samples: int, size: int, channels: int):
    rng = np.random.default_rng(0)
    subjects = [f"s{i % folds:02d}" for i in range(samples)]
    x = rng.normal(size=(samples, size, size, channels)).astype(np.float32)
    augmented = rng.normal(size=x.shape).astype(np.float32)
    labels = rng.integers(0, 5, samples).astype(np.int32)
    return x, augmented, labels, subjects


def _timed(run) -> tuple[float, float, object]:
    t0 = time.perf_counter()
    first_result = run()
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    run()
    return first, time.perf_counter() - t0, first_result


def _row(name: tuple[str, str, str], first: float, steady: float, runs: int, steps: int) -> dict:
    return {
        "conv": name[0],
        "steps": name[1],
        "strategy": name[2],
        "first_call_s": first,
        "s_per_epoch": steady / FLAGS.epochs,
        "runs": runs,
        "steps_per_epoch": steps,
        "s_per_run_step": steady / (FLAGS.epochs * runs * steps),
    }


def time_one(net: str, d, conv: str, strategy: str) -> dict:
    model, _ = models.by_name(net, conv_impl=conv)
    cfg = train.TrainConfig(epochs=FLAGS.epochs, batch_size=FLAGS.batch)
    execution = train.Execution(
        strategy=strategy, chunk_size=FLAGS.chunk, epochs_per_call=FLAGS.epochs
    )
    first, steady, r = _timed(lambda: train.train_loso(model, *d, cfg, execution, progress=None))
    steps = int(np.ceil(r.plan.train_mask.sum(1).max() / FLAGS.batch))
    return _row((conv, "scanned", strategy), first, steady, len(r.losses), steps)


def time_host(net: str, d, conv: str) -> dict:
    """Python-driven steps, one run at a time: merjax's CPU default before (with lax.conv)."""
    model, _ = models.by_name(net, conv_impl=conv)
    x, augmented, labels, subjects = d
    items = jnp.concatenate([x, augmented])
    item_labels = jnp.concatenate([labels, labels])
    plan = train.fold_plan(subjects, train.subject_groups(subjects), (0,))
    steps = int(np.ceil(plan.train_mask.sum(1).max() / FLAGS.batch))
    tx = train.optimizer(train.TrainConfig())
    init = jax.jit(functools.partial(train.init_run, model, tx))
    order = jax.jit(functools.partial(train.epoch_batches, steps=steps, batch_size=FLAGS.batch))
    step = jax.jit(functools.partial(train.train_step, model=model, tx=tx))

    def run():
        for mask, seed in zip(plan.train_mask, plan.seeds, strict=True):
            state = init(items, mask, seed)
            for e in range(FLAGS.epochs):
                idx, valid = order(mask, seed, e)
                for s in range(steps):
                    state, m = step(state, items, item_labels, idx[s], valid[s])
            jax.block_until_ready(state)

    first, steady, _ = _timed(run)
    return _row((conv, "host", "loop"), first, steady, len(plan.seeds), steps)


def main(argv):
    del argv
    _, rep = models.by_name(FLAGS.net)
    channels = {"vy": 1, "vx": 1, "mag": 1, "vxvy": 2, "vxvym": 3}[rep]
    folds, samples, size = (
        (47, 253, 64) if FLAGS.paper else (FLAGS.folds, FLAGS.samples, FLAGS.size)
    )
    d = data(folds, samples, size, channels)
    print(
        f"{jax.devices()[0].device_kind} ({jax.default_backend()}), {FLAGS.net} {size}x{size}, "
        f"{folds} folds, {samples} samples, batch {FLAGS.batch}, {FLAGS.epochs} timed epoch(s)",
        flush=True,
    )
    combos = [
        c for c in itertools.product(FLAGS.convs, FLAGS.strategies) if "/".join(c) not in FLAGS.skip
    ]
    rows = []
    for conv in FLAGS.host:
        rows.append(time_host(FLAGS.net, d, conv))
    for conv, strategy in combos:
        rows.append(time_one(FLAGS.net, d, conv, strategy))
    for r in rows:
        print(
            f"  {r['conv']}/{r['steps']}/{r['strategy']}: first call {r['first_call_s']:.1f} s, "
            f"{r['s_per_epoch']:.2f} s/epoch, {1e3 * r['s_per_run_step']:.0f} ms per run-step",
            flush=True,
        )
    base = rows[0]
    name = f"{base['conv']}/{base['steps']}/{base['strategy']}"
    print(
        f"\n| conv | steps | strategy | first call (s) | s / epoch | ms per run-step | {name} / "
        "this |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        r["speedup_vs_baseline"] = base["s_per_run_step"] / r["s_per_run_step"]
        print(
            f"| {r['conv']} | {r['steps']} | {r['strategy']} | {r['first_call_s']:.1f} | "
            f"{r['s_per_epoch']:.2f} | "
            f"{1e3 * r['s_per_run_step']:.0f} | {r['speedup_vs_baseline']:.2f}x |"
        )
    best = min(rows, key=lambda r: r["s_per_run_step"])
    result = {
        "device": jax.devices()[0].device_kind,
        "backend": jax.default_backend(),
        "net": FLAGS.net,
        "size": size,
        "folds": folds,
        "samples": samples,
        "batch": FLAGS.batch,
        "rows": rows,
        "baseline": name,
        "fastest": f"{best['conv']}/{best['steps']}/{best['strategy']}",
    }
    print(f"fastest: {result['fastest']}")
    if FLAGS.paper or FLAGS.full_run:
        model, _ = models.by_name(FLAGS.net, conv_impl=best["conv"])
        cfg = train.TrainConfig(epochs=FLAGS.paper_epochs, batch_size=FLAGS.batch)
        execution = train.Execution(
            strategy=best["strategy"], epochs_per_call=25, chunk_size=FLAGS.chunk
        )
        t0 = time.perf_counter()
        train.train_loso(model, *d, cfg, execution, progress=print)
        result["paper_run_s"] = time.perf_counter() - t0
        est = base["s_per_epoch"] * FLAGS.paper_epochs
        result["baseline_estimate_s"] = est
        print(
            f"paper protocol ({FLAGS.paper_epochs} epochs, {result['fastest']}): "
            f"{result['paper_run_s']:.1f} s; "
            f"{name} estimated from its timed epoch: {est:.1f} s "
            f"({est / result['paper_run_s']:.1f}x)"
        )
    out = pathlib.Path(FLAGS.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "train_benchmark.json").write_text(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    app.run(main)

"""Device memory of the LOSO training program per run, and how many runs fit per chunk.

    python benchmarks/memory_benchmark.py                       # every network, both convolutions
    python benchmarks/memory_benchmark.py --nets vy-3cl,resnet8 --convs lax

For each network the experiments train (the shallow CNNs on 1 and 2 channels, the ResNet depth
variants), at 64x64 inputs and batch 64 over the MEGC 2018 composite's 506 training items, the
one-epoch training program is compiled (not run) for 1 and 2 vmapped runs; XLA's memory
analysis of the two gives the bytes per run and the fixed part (the shared items).
``merjax.train.plan_chunk`` sizes chunks the same way. The table adds how many runs fit per
chunk on 16, 24, 40 and 80 GB devices with plan_chunk's safety margin. Any backend can compile
for its own platform; the figures in RESULTS.md are XLA:CPU's (GPU buffers are laid out
differently: the GPU suite re-measures there).
"""

from __future__ import annotations

import json
import pathlib

import jax
from absl import app, flags

from merjax import models, train
from merjax.train import memory

FLAGS = flags.FLAGS
SHALLOW = [f"{r}-{d}cl" for r in ("vy", "vxvy") for d in (1, 2, 3, 4)]
RESNETS = [f"resnet{d + 1}" for d in (1, 3, 5, 7, 9, 11, 13, 15, 17)]
flags.DEFINE_list(
    "nets",
    SHALLOW + RESNETS,
    "merjax.models.by_name names (vy-* stands for every 1-channel input).",
)
flags.DEFINE_list("convs", ["lax", "im2col"], "Convolution formulations.")
flags.DEFINE_integer("size", 64, "Input side.")
flags.DEFINE_integer("batch", 64, "Mini-batch size.")
flags.DEFINE_integer("items", 506, "Training items (samples x 2 with augmentation).")
flags.DEFINE_list(
    "devices_gb", ["16", "24", "40", "80"], "Device sizes for the runs-per-chunk columns."
)
flags.DEFINE_string("out", "bench_out", "Where to write memory_benchmark.json.")


def main(argv):
    del argv
    cfg = train.TrainConfig(batch_size=FLAGS.batch)
    print(
        f"{jax.devices()[0].device_kind} ({jax.default_backend()}), {FLAGS.size}x{FLAGS.size}, "
        f"batch {FLAGS.batch}, "
        f"{FLAGS.items} items; safety margin {memory.SAFETY:.0%} of each device",
        flush=True,
    )
    sizes = [float(g) for g in FLAGS.devices_gb]
    header = ["net", "conv", "params", "GB per run", "fixed GB"] + [
        f"runs on {g:g} GB" for g in sizes
    ]
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    rows = []
    for net in FLAGS.nets:
        for conv in FLAGS.convs:
            model, rep = models.by_name(net, conv_impl=conv)
            shape = (FLAGS.size, FLAGS.size, {"vy": 1, "vxvy": 2, "vxvym": 3}.get(rep, 1))
            per_run, fixed = memory.per_run_bytes(model, cfg, shape, FLAGS.items)
            fit = [max(0, int((g * 1e9 * memory.SAFETY - fixed) // per_run)) for g in sizes]
            row = {
                "net": net,
                "conv": conv,
                "params": models.count_params(model, shape),
                "bytes_per_run": per_run,
                "fixed_bytes": fixed,
                "runs_per_chunk": dict(zip(FLAGS.devices_gb, fit, strict=True)),
            }
            rows.append(row)
            print(
                f"| {net} | {conv} | {row['params']:,} | {per_run / 1e9:.2f} | {fixed / 1e9:.2f} | "
                + " | ".join(str(f) for f in fit)
                + " |",
                flush=True,
            )
    out = pathlib.Path(FLAGS.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "memory_benchmark.json").write_text(
        json.dumps(
            {
                "device": jax.devices()[0].device_kind,
                "backend": jax.default_backend(),
                "size": FLAGS.size,
                "batch": FLAGS.batch,
                "items": FLAGS.items,
                "safety": memory.SAFETY,
                "rows": rows,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    app.run(main)

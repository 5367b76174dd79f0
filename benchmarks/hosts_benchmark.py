"""What several processes cost: the same LOSO training on 2 devices, as 1 process x 2 devices
(the baseline) and as 2 processes x 1 device (JAX's distributed runtime on localhost).

    python benchmarks/hosts_benchmark.py                    # CPU: 2 host devices, gloo
    python benchmarks/hosts_benchmark.py --platform=gpu     # 2 GPUs: 1 process, then 1 per GPU

Both setups run one vmapped program over the same 2 devices' worth of runs, on the same random
data (seeded); what differs is that two processes meet in collectives (gloo on CPU, NCCL on GPU)
for every read-back -- the per-call metrics, the predictions -- and that each process feeds its
own device. Each setup is its own set of processes started by this script: a first training
compiles, a second (the same programs) is timed. Printed: seconds per training, the ratio to
the baseline measured in the same run, the time of one read-back of every run's metrics (a
device-to-host copy in one process, a gloo/NCCL all-gather between two), and the largest
difference between the two setups' held-out logits.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from absl import app, flags

flags.DEFINE_enum("platform", "cpu", ["cpu", "gpu"], "cpu: host devices; gpu: one GPU each.")
flags.DEFINE_string("net", "vy-3cl", "Network (merjax.models.by_name).")
flags.DEFINE_integer("size", 16, "Input height and width.")
flags.DEFINE_integer("folds", 8, "Subject groups = runs (a multiple of 2 lays them evenly).")
flags.DEFINE_integer("samples", 160, "Samples.")
flags.DEFINE_integer("batch", 32, "Mini-batch size.")
flags.DEFINE_integer("epochs", 4, "Epochs per training.")
flags.DEFINE_integer("timeout", 600, "Seconds each process may take.")
flags.DEFINE_string("out", "bench_out", "Where hosts_benchmark.json goes.")
# A worker's own flags (the script starts itself with them).
flags.DEFINE_integer("worker_processes", 0, "internal: processes of this worker's setup")
flags.DEFINE_integer("worker_id", 0, "internal: this worker's process id")
flags.DEFINE_string("worker_address", "", "internal: coordinator address")
flags.DEFINE_string("worker_result", "", "internal: where process 0 writes its result")
FLAGS = flags.FLAGS


def worker() -> None:
    """One process of a setup: train twice, write the second training's time and the logits."""
    from merjax import hosts

    if FLAGS.worker_processes > 1:
        hosts.initialize(FLAGS.worker_address, FLAGS.worker_processes, FLAGS.worker_id)
    import jax
    import numpy as np

    from merjax import environment, models, train

    rng = np.random.default_rng(0)
    model, representation = models.by_name(FLAGS.net, num_classes=3)
    channels = 2 if representation == "vxvy" else 1
    x = rng.normal(size=(FLAGS.samples, FLAGS.size, FLAGS.size, channels)).astype(np.float32)
    labels = rng.integers(0, 3, FLAGS.samples)
    subjects = [f"s{i % FLAGS.folds}" for i in range(FLAGS.samples)]
    config = train.TrainConfig(epochs=FLAGS.epochs, batch_size=FLAGS.batch)
    execution = train.Execution(strategy="vmap", epochs_per_call=1)
    times = []
    with environment.float32():
        for _ in range(2):
            t0 = time.perf_counter()
            r = train.train_loso(model, x, x, labels, subjects, config, execution, progress=None)
            times.append(time.perf_counter() - t0)
    # One read-back as training does it after every call: the per-step metrics of every run.
    metrics = np.zeros((FLAGS.folds, 1, 16), np.float32)
    hosts.gather(metrics)
    t0 = time.perf_counter()
    for _ in range(50):
        if FLAGS.worker_processes > 1:
            from jax.experimental import multihost_utils

            multihost_utils.process_allgather(metrics)
        else:
            hosts.gather(jax.device_put(metrics))
    gather_ms = (time.perf_counter() - t0) / 50 * 1e3
    if hosts.is_main():
        Path(FLAGS.worker_result).write_text(
            json.dumps(
                {
                    "first_s": times[0],
                    "steady_s": times[1],
                    "gather_ms": gather_ms,
                    "devices": [str(d) for d in jax.devices()],
                    "logits": np.nan_to_num(r.logits).tolist(),
                }
            )
        )


def _port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def run_setup(processes: int, devices_each: int, result: Path) -> dict:
    """Starts ``processes`` workers with ``devices_each`` devices each; process 0's result."""
    address = f"localhost:{_port()}"
    procs = []
    for i in range(processes):
        env = dict(os.environ)
        if FLAGS.platform == "cpu":
            env["JAX_PLATFORMS"] = "cpu"
            count = f"--xla_force_host_platform_device_count={devices_each}"
            env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {count}".strip()
        else:
            first = i * devices_each
            env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, range(first, first + devices_each)))
        args = [a for a in sys.argv[1:] if not a.startswith("--worker")]
        procs.append(
            subprocess.Popen(
                ["timeout", "-k", "5", str(FLAGS.timeout), sys.executable, __file__, *args]
                + [
                    f"--worker_processes={processes}",
                    f"--worker_id={i}",
                    f"--worker_address={address}",
                    f"--worker_result={result}",
                ],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    for p in procs:
        out, _ = p.communicate()
        if p.returncode:
            sys.exit(
                f"{processes} process(es): a worker failed (exit {p.returncode}):\n{out[-3000:]}"
            )
    return json.loads(result.read_text())


def main(argv) -> None:
    del argv
    if FLAGS.worker_processes:
        worker()
        return
    import numpy as np

    out = Path(FLAGS.out)
    out.mkdir(parents=True, exist_ok=True)
    base = run_setup(1, 2, out / "hosts_1x2.json")
    two = run_setup(2, 1, out / "hosts_2x1.json")
    diff = float(np.abs(np.array(base["logits"]) - np.array(two["logits"])).max())
    steps = -(-FLAGS.samples * 2 // FLAGS.batch)  # augmented items: each sample twice
    print(
        f"{FLAGS.net}, {FLAGS.folds} runs, {FLAGS.samples} samples at {FLAGS.size}x{FLAGS.size}, "
        f"batch {FLAGS.batch}, {FLAGS.epochs} epochs (~{steps} steps each), vmap, "
        f"{FLAGS.platform}"
    )
    print(
        "| setup | devices | first (compiles) s | timed s | ratio to 1 process | "
        "one metrics read-back ms |"
    )
    print("|---|---|---:|---:|---:|---:|")
    for name, r in (("1 process x 2 devices", base), ("2 processes x 1 device", two)):
        print(
            f"| {name} | {', '.join(r['devices'])} | {r['first_s']:.2f} | {r['steady_s']:.2f} | "
            f"{r['steady_s'] / base['steady_s']:.2f}x | {r['gather_ms']:.2f} |"
        )
    print(f"largest held-out logit difference between the setups: {diff:.1e}")
    (out / "hosts_benchmark.json").write_text(
        json.dumps(
            {"baseline": base["steady_s"], "two_processes": two["steady_s"], "max_diff": diff}
        )
    )


if __name__ == "__main__":
    app.run(main)

"""The real-time stream (``predict --spot``): frames per second and latency after an offset.

    python benchmarks/stream_benchmark.py                 # a synthetic long video, this machine
    python benchmarks/stream_benchmark.py --seconds 120 --database samm_lv   # 200 fps source

Writes a synthetic long video of the chosen layout (merjax.data.synthetic_long) as a Motion-JPEG
file, then streams it three ways, each after a warm-up pass over the same file (the timed pass
compiles nothing):

* ``decode``: reading and decoding the frames alone -- the baseline, the most any stream on
  this file can do here;
* ``spot``: decode + face crop + TV-L1 region motion for both k + peak decisions;
* ``spot+classify``: the same, each interval classified by a recognition network (an untrained
  Vy-3CL of the paper's shape: classification costs the same whatever the weights).

Prints frames per second, the ratio to ``decode``, whether it keeps up with the source's frame
rate (SAMM's 200 fps is the goal, CAS(ME)^3's 30 fps the floor), and the wall-clock latency from
the arrival of each interval's offset frame to its detection (median and maximum; the
detection-rule hold is in frames and is the same at any speed: merjax.spotting.stream). Results
also go to ``<out>/stream_benchmark.json``.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import tempfile
import time

import numpy as np
from absl import app, flags

from merjax import inference
from merjax.data import longvideo, synthetic_long
from merjax.data.frames import index_frames
from merjax.spotting import signal, stream

FLAGS = flags.FLAGS
flags.DEFINE_string("database", "casme3", "Synthetic layout: casme3 (30 fps) or samm_lv (200 fps).")
flags.DEFINE_float("seconds", 60.0, "Length of the synthetic video.")
flags.DEFINE_integer("chunk", 16, "Frames per flow batch in the stream.")
flags.DEFINE_integer("size", 32, "Face crop side of the spotting flows.")
flags.DEFINE_string("out", "bench_out", "Folder for stream_benchmark.json.")


def _video(folder: pathlib.Path) -> tuple[pathlib.Path, float]:
    spec = dataclasses.replace(
        synthetic_long.SPECS["tiny"],
        subjects=1,
        seconds={d: FLAGS.seconds for d in synthetic_long.FOLDERS},
    )
    roots = synthetic_long.write(folder / "long", spec=spec, seed=0)
    frames = sorted(roots[FLAGS.database].rglob("*.jpg"))  # one subject: one video's frames
    fps = longvideo.FPS[FLAGS.database]
    paths = [str(p) for _, p in index_frames(frames[0].parent)]
    return synthetic_long.write_video(paths, folder / "long.avi", fps), fps


def _decode(path) -> int:
    source = stream.open_source(video=path)
    return sum(1 for _ in source.frames)


def _spot(path, fps, model) -> tuple[int, list[float]]:
    source = stream.open_source(video=path)
    spotter = stream.StreamSpotter(
        fps, signal.SpotSettings(size=FLAGS.size), model=model, chunk=FLAGS.chunk
    )
    latencies = []
    for gray in source.frames:
        latencies += [d.latency_s for d in spotter.push(gray)]
    latencies += [d.latency_s for d in spotter.flush()]
    return spotter.frames_seen, latencies


def main(argv):
    del argv
    out = pathlib.Path(FLAGS.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        path, fps = _video(pathlib.Path(tmp))
        model = inference.untrained("vy-3cl", 64, class_names=("negative", "positive", "surprise"))
        rows = {}
        for name, run in (
            ("decode", lambda: (_decode(path), [])),
            ("spot", lambda: _spot(path, fps, None)),
            ("spot+classify", lambda: _spot(path, fps, model)),
        ):
            run()  # warm-up: compiles and fills the OS file cache
            t0 = time.perf_counter()
            frames, latencies = run()
            seconds = time.perf_counter() - t0
            rows[name] = {
                "frames": frames,
                "seconds": seconds,
                "fps": frames / seconds,
                "intervals": len(latencies),
                "latency_median_ms": 1e3 * float(np.median(latencies)) if latencies else None,
                "latency_max_ms": 1e3 * float(np.max(latencies)) if latencies else None,
            }
    base = rows["decode"]["fps"]
    print(
        f"{FLAGS.database} synthetic video, {FLAGS.seconds:.0f} s at {fps:.0f} fps, "
        f"{rows['decode']['frames']} frames; chunk {FLAGS.chunk}, flows {FLAGS.size}x{FLAGS.size}"
    )
    head = ("frames/s", "vs decode", "real time", "latency median / max")
    print(f"{'':15s} {head[0]:>9s} {head[1]:>9s} {head[2]:>10s} {head[3]:>22s}")
    for name, r in rows.items():
        lat = (
            f"{r['latency_median_ms']:.1f} / {r['latency_max_ms']:.1f} ms"
            if r["latency_median_ms"] is not None
            else "-"
        )
        print(
            f"{name:15s} {r['fps']:9.0f} {r['fps'] / base:9.2f} {r['fps'] / fps:9.1f}x {lat:>22s}"
        )
    ks = {kind: signal.SpotSettings().k(kind, fps) for kind in ("micro", "macro")}
    print(
        "latency: wall clock from the offset frame's arrival to the detection, frames arriving "
        "here as fast as they decode; a live source adds the detection rule's hold in its own "
        f"time: a macro interval {ks['macro'] / fps:.2f} s after its offset, a micro one "
        f"{(3 * ks['macro'] - ks['micro']) / fps:.2f} s (merjax.spotting.stream)"
    )
    for goal, name in ((200, "SAMM's 200 fps"), (30, "CAS(ME)^3's 30 fps")):
        ok = rows["spot+classify"]["fps"] >= goal
        print(f"spot+classify {'keeps up with' if ok else 'is below'} {name}")
    (out / "stream_benchmark.json").write_text(
        json.dumps({"database": FLAGS.database, "fps": fps, "rows": rows}, indent=1)
    )


if __name__ == "__main__":
    app.run(main)

"""Horn-Schunck speed and accuracy against pyoptflow, OpenCV Farneback and scikit-image TV-L1.

    python benchmarks/flow_benchmark.py                 # full run, ~5 min on a 2-core CPU
    python benchmarks/flow_benchmark.py --quick         # ~1 min: fewer repeats and fields
    python benchmarks/flow_benchmark.py --gpu_batch=1024  # add the large-batch GPU figures

Speed: pairs per second at each size for merjax (both variants; one pair per call and a batch per
call) and for pyoptflow (same algorithm, same iterations) and Farneback, all measured in this run;
ratios are against pyoptflow.

Accuracy: average end-point error (AEPE, px) on a real face (scikit-image's astronaut) warped by
known smooth sub-pixel displacement fields (max 0.1-2 px, like micro-expressions). "tuned" picks
the smoothness with the lowest AEPE on fields from other seeds than the ones scored.

Writes ``flow_benchmark.json`` and ``flow_benchmark.md`` to ``--out``.
"""

from __future__ import annotations

import json
import os
import pathlib
import platform
import time
from collections.abc import Callable

import cv2
import jax
import numpy as np
from absl import app, flags
from scipy import ndimage

from merjax.flow import horn_schunck
from merjax.flow import tvl1 as tvl1_jax

FLAGS = flags.FLAGS
flags.DEFINE_list("sizes", ["64", "128", "256"], "Square image sizes for the speed benchmark.")
flags.DEFINE_integer("iters", 100, "Horn-Schunck iterations in the speed benchmark.")
flags.DEFINE_integer("batch", 64, "Pairs per merjax call in the batched speed figures.")
flags.DEFINE_integer(
    "gpu_batch", 0, "If > 0: pairs per call for the bandwidth figure (>= 1024 on a GPU)."
)
flags.DEFINE_bool("quick", False, "Fewer repeats and displacement fields.")
flags.DEFINE_bool(
    "only_bandwidth", False, "Only the large-batch bandwidth figure (the GPU suite's part)."
)
flags.DEFINE_integer("bandwidth_size", 128, "Frame side for the bandwidth figure.")
flags.DEFINE_string("out", "bench_out", "Where to write the JSON and Markdown results.")


# ------------------------------------------------------------------ data


def face_image(size: int) -> np.ndarray:
    """The astronaut's face from scikit-image, grey, ``size x size``, float in [0, 1]."""
    from skimage import data

    grey = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY)[10:230, 140:340]
    return cv2.resize(grey, (size, size), interpolation=cv2.INTER_AREA).astype(np.float64) / 255.0


def smooth_field(shape: tuple[int, int], max_px: float, rng: np.random.Generator) -> np.ndarray:
    """A smooth random displacement field ``[H, W, 2]`` whose largest vector is ``max_px``."""
    h, w = shape
    field = np.stack(
        [ndimage.gaussian_filter(rng.normal(size=(h, w)), min(h, w) / 8) for _ in range(2)], -1
    )
    return field * (max_px / np.linalg.norm(field, axis=-1).max())


def warp_pair(img: np.ndarray, field: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(frame0, frame1) as uint8, where the true flow from frame0 to frame1 is ``field``.

    frame0(x) = img(x + field(x)), frame1 = img: a point of frame0 at x sits at x + field(x) in
    frame1, exactly the flow definition, with no inversion of the field needed.
    """
    h, w = img.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    map_x, map_y = xs + field[..., 0].astype(np.float32), ys + field[..., 1].astype(np.float32)
    frame0 = cv2.remap(
        img.astype(np.float32), map_x, map_y, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT
    )

    def to_u8(x):
        return np.clip(np.round(x * 255), 0, 255).astype(np.uint8)

    return to_u8(frame0), to_u8(img)


# ------------------------------------------------------------------ methods


def pyoptflow_hs(f0: np.ndarray, f1: np.ndarray, alpha: float, iters: int) -> np.ndarray:
    from pyoptflow import HornSchunck

    u, v = HornSchunck(
        f0.astype(np.float32) / 255, f1.astype(np.float32) / 255, alpha=alpha, Niter=iters
    )
    return np.stack([u, v], -1)


def farneback(f0: np.ndarray, f1: np.ndarray) -> np.ndarray:
    return cv2.calcOpticalFlowFarneback(f0, f1, None, 0.5, 3, 15, 3, 5, 1.2, 0)


def tvl1(f0: np.ndarray, f1: np.ndarray) -> np.ndarray:
    from skimage.registration import optical_flow_tvl1

    v, u = optical_flow_tvl1(f0.astype(np.float32) / 255, f1.astype(np.float32) / 255)
    return np.stack([u, v], -1)


def merjax_hs(
    variant: str, smoothness: float, iters: int
) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    return lambda f0, f1: np.asarray(
        horn_schunck(f0, f1, smoothness=smoothness, num_iter=iters, variant=variant)
    )


def merjax_tvl1(**params) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    return lambda f0, f1: np.asarray(tvl1_jax(f0, f1, **params))


# ------------------------------------------------------------------ timing


def pairs_per_second(fn: Callable[[], object], pairs: int, min_time: float) -> float:
    """Median throughput of ``fn`` (which handles ``pairs`` pairs), after one warm-up call."""
    jax.block_until_ready(fn())
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < 3 or (time.perf_counter() - start < min_time and len(times) < 200):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return pairs / float(np.median(times))


def speed(sizes: list[int], iters: int, batch: int, min_time: float) -> list[dict]:
    rows = []
    rng = np.random.default_rng(0)
    for size in sizes:
        img = face_image(size)
        f0, f1 = warp_pair(img, smooth_field((size, size), 1.0, rng))
        b0 = np.broadcast_to(f0, (batch, size, size)).copy()
        b1 = np.broadcast_to(f1, (batch, size, size)).copy()
        r = {"size": size, "iters": iters, "batch": batch}
        r["pyoptflow"] = pairs_per_second(lambda: pyoptflow_hs(f0, f1, 1.0, iters), 1, min_time)
        r["farneback"] = pairs_per_second(lambda: farneback(f0, f1), 1, min_time)
        for variant in ("classic", "matlab"):
            r[f"merjax_{variant}"] = pairs_per_second(
                lambda: horn_schunck(f0, f1, num_iter=iters, variant=variant), 1, min_time
            )
            r[f"merjax_{variant}_batched"] = pairs_per_second(
                lambda: horn_schunck(b0, b1, num_iter=iters, variant=variant), batch, min_time
            )
        rows.append(r)
        print(
            f"size {size}: "
            + ", ".join(f"{k}={v:.1f}/s" for k, v in r.items() if isinstance(v, float)),
            flush=True,
        )
    return rows


def tvl1_speed(sizes: list[int], batch: int, min_time: float) -> list[dict]:
    """Pairs per second of merjax's TV-L1 (one pair per call, and a batch per call) against
    scikit-image's (one pair per call; it has no batch), default parameters, same frames."""
    rows = []
    rng = np.random.default_rng(0)
    for size in sizes:
        f0, f1 = warp_pair(face_image(size), smooth_field((size, size), 1.0, rng))
        b0 = np.broadcast_to(f0, (batch, size, size)).copy()
        b1 = np.broadcast_to(f1, (batch, size, size)).copy()
        r = {"size": size, "batch": batch}
        r["scikit_image"] = pairs_per_second(lambda: tvl1(f0, f1), 1, min_time)
        r["merjax"] = pairs_per_second(lambda: tvl1_jax(f0, f1), 1, min_time)
        r["merjax_batched"] = pairs_per_second(lambda: tvl1_jax(b0, b1), batch, min_time)
        rows.append(r)
        print(
            f"TV-L1 size {size}: "
            + ", ".join(f"{k}={v:.1f}/s" for k, v in r.items() if isinstance(v, float)),
            flush=True,
        )
    return rows


def bandwidth(size: int, iters: int, batch: int) -> dict:
    """Per-pair time and achieved memory bandwidth of a large batch, against a measured copy.

    Traffic model per Jacobi sweep and pixel (float32): read u, v, Ix, Iy, It and the
    denominator (6 x 4 B) and write u, v (2 x 4 B) = 32 B. A fused sweep cannot move less
    unless it keeps those fields on chip, so this is the bandwidth the sweep loop achieves.
    """
    rng = np.random.default_rng(1)
    b0 = rng.integers(0, 256, (batch, size, size), dtype=np.uint8)
    b1 = rng.integers(0, 256, (batch, size, size), dtype=np.uint8)
    b0, b1 = jax.device_put(b0), jax.device_put(b1)
    out = {
        "size": size,
        "iters": iters,
        "batch": batch,
        "device": str(jax.devices()[0].device_kind),
    }
    for variant in ("classic", "matlab"):
        pps = pairs_per_second(
            lambda: horn_schunck(b0, b1, num_iter=iters, variant=variant, check_frames=False),
            batch,
            2.0,
        )
        bytes_per_pair = 32 * size * size * iters
        out[variant] = {"us_per_pair": 1e6 / pps, "GBps": pps * bytes_per_pair / 1e9}
    out["tvl1_pairs_per_s"] = pairs_per_second(
        lambda: tvl1_jax(b0, b1, check_frames=False), batch, 2.0
    )
    x = jax.device_put(np.ones((batch, size, size, 8), np.float32))
    copy = jax.jit(lambda a: a * 1.0000001)
    copies_per_s = pairs_per_second(lambda: copy(x), 1, 2.0)
    out["copy_GBps"] = copies_per_s * 2 * x.nbytes / 1e9  # read + write
    for variant in ("classic", "matlab"):
        out[variant]["fraction_of_copy"] = out[variant]["GBps"] / out["copy_GBps"]
    return out


# ------------------------------------------------------------------ accuracy


def aepe(est: np.ndarray, true: np.ndarray, border: int = 4) -> float:
    """Average end-point error, ignoring a thin border where the warp had no data."""
    d = (est - true)[border:-border, border:-border]
    return float(np.linalg.norm(d, axis=-1).mean())


def accuracy(size: int, magnitudes: list[float], fields: int) -> dict:
    img = face_image(size)

    def pairs(seed0: int):
        rng = np.random.default_rng(seed0)
        return [
            (m, *warp_pair(img, f), f)
            for m in magnitudes
            for f in (smooth_field((size, size), m, rng) for _ in range(fields))
        ]

    tune_set, test_set = pairs(100), pairs(200)

    def score(method, data):
        per_mag: dict[float, list[float]] = {}
        for m, f0, f1, truth in data:
            per_mag.setdefault(m, []).append(aepe(method(f0, f1), truth))
        return {m: float(np.mean(v)) for m, v in per_mag.items()}

    def mean(scores):
        return float(np.mean(list(scores.values())))

    def tuned(variant, grid, iters):
        best = min(grid, key=lambda s: mean(score(merjax_hs(variant, s, iters), tune_set)))
        return best, merjax_hs(variant, best, iters)

    methods: dict[str, Callable] = {
        "zero flow": lambda f0, f1: np.zeros(f0.shape + (2,)),
        "merjax matlab, defaults (s=1, 10 it)": merjax_hs("matlab", 1.0, 10),
    }
    s, fn = tuned("matlab", [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 1.0], 100)
    methods[f"merjax matlab, tuned (s={s:g}, 100 it)"] = fn
    methods["merjax classic, pyoptflow defaults (alpha=0.001, 8 it)"] = merjax_hs(
        "classic", 0.001, 8
    )
    s, fn = tuned("classic", [0.003, 0.01, 0.03, 0.1, 0.3, 1.0], 100)
    methods[f"merjax classic, tuned (alpha={s:g}, 100 it)"] = fn
    methods["OpenCV Farneback (defaults of the OpenCV sample)"] = farneback
    methods["scikit-image TV-L1 (defaults)"] = tvl1
    methods["merjax TV-L1 (defaults: IPOL's, lambda 38.25 on [0, 1], 10 it)"] = merjax_tvl1()
    methods["merjax TV-L1, scikit-image's parameters (lambda 15, 10 it)"] = merjax_tvl1(
        lambda_=15.0
    )
    result = {}
    for name, method in methods.items():
        result[name] = score(method, test_set)
        print(
            f"AEPE {name}: " + ", ".join(f"{m}px={e:.3f}" for m, e in result[name].items()),
            flush=True,
        )
    return {"size": size, "fields_per_magnitude": fields, "aepe_px": result}


# ------------------------------------------------------------------ report


def markdown(results: dict) -> str:
    lines = [f"Device: {results['device']}; jax {results['jax']}; {results['cpu']}", ""]
    if "speed" in results:
        lines += _speed_and_accuracy(results)
    if "bandwidth" in results:
        b = results["bandwidth"]
        lines += [
            "",
            f"### Large batch ({b['batch']} pairs, {b['size']}x{b['size']}, {b['iters']} it) on "
            f"{b['device']}",
            "",
        ]
        lines.append(f"Measured copy bandwidth: {b['copy_GBps']:.0f} GB/s")
        for v in ("classic", "matlab"):
            lines.append(
                f"- {v}: {b[v]['us_per_pair']:.2f} us/pair, {b[v]['GBps']:.0f} GB/s "
                f"({100 * b[v]['fraction_of_copy']:.0f}% of copy)"
            )
        lines.append(f"- TV-L1 (defaults): {b['tvl1_pairs_per_s']:,.0f} pairs/s")
    return "\n".join(lines) + "\n"


def _speed_and_accuracy(results: dict) -> list[str]:
    lines = []
    if "tvl1_speed" in results:
        lines += [
            "### TV-L1 speed (pairs/s, default parameters; ratio vs scikit-image)",
            "",
            "| size | scikit-image | merjax, one pair per call | merjax, batch of 16 |",
            "|---|---|---|---|",
        ]
        for r in results["tvl1_speed"]:
            base = r["scikit_image"]
            lines.append(
                f"| {r['size']} | {base:,.1f} (1x) | {r['merjax']:,.1f} "
                f"({r['merjax'] / base:.1f}x) | "
                f"{r['merjax_batched']:,.1f} ({r['merjax_batched'] / base:.1f}x) |"
            )
        lines.append("")
    lines += [
        f"### Speed (pairs/s; {results['speed'][0]['iters']} iterations; ratio vs pyoptflow)",
        "",
        "| size | pyoptflow | Farneback | merjax classic | merjax matlab | merjax classic, batch "
        "| merjax matlab, batch |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results["speed"]:
        base = r["pyoptflow"]

        def cell(k, r=r, base=base):
            return f"{r[k]:,.0f} ({r[k] / base:.1f}x)"

        lines.append(
            f"| {r['size']} | {base:,.1f} (1x) | {cell('farneback')} | {cell('merjax_classic')} | "
            f"{cell('merjax_matlab')} | {cell('merjax_classic_batched')} | "
            f"{cell('merjax_matlab_batched')} |"
        )
    acc = results["accuracy"]
    mags = list(next(iter(acc["aepe_px"].values())).keys())
    lines += [
        "",
        f"### Accuracy (AEPE in px, {acc['size']}x{acc['size']} face, "
        f"{acc['fields_per_magnitude']} fields per max displacement)",
        "",
        "| method | " + " | ".join(f"max {m} px" for m in mags) + " | mean |",
        "|---|" + "---|" * (len(mags) + 1),
    ]
    for name, per in acc["aepe_px"].items():
        vals = list(per.values())
        lines.append(
            f"| {name} | " + " | ".join(f"{v:.3f}" for v in vals) + f" | {np.mean(vals):.3f} |"
        )
    return lines


def main(argv: list[str]) -> None:
    del argv
    min_time = 0.5 if FLAGS.quick else 2.0
    results = {
        "device": str(jax.devices()[0].device_kind),
        "jax": jax.__version__,
        "cpu": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
    }
    if not FLAGS.only_bandwidth:
        results["speed"] = speed([int(s) for s in FLAGS.sizes], FLAGS.iters, FLAGS.batch, min_time)
        results["tvl1_speed"] = tvl1_speed([int(s) for s in FLAGS.sizes], 16, min_time)
        results["accuracy"] = accuracy(128, [0.1, 0.5, 1.0, 1.5, 2.0], 2 if FLAGS.quick else 5)
    if FLAGS.gpu_batch:
        results["bandwidth"] = bandwidth(FLAGS.bandwidth_size, FLAGS.iters, FLAGS.gpu_batch)
    out = pathlib.Path(FLAGS.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "flow_benchmark.json").write_text(json.dumps(results, indent=2))
    md = markdown(results)
    (out / "flow_benchmark.md").write_text(md)
    print(md)
    print(f"wrote {out / 'flow_benchmark.json'} and {out / 'flow_benchmark.md'}")


if __name__ == "__main__":
    app.run(main)

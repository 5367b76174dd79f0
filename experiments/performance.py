"""Tables 8-9, Figure 7 and the time per clip: the paper's chosen network (Vy-3CL) in full.

    python -m merjax.main --experiment=performance  # the quick profile (its time: README)
    python -m merjax.main --experiment=performance --profile=paper   # the paper's protocol (GPU)

Writes ``table8.{csv,md}`` (accuracy, UF1, UAR against the literature the paper quotes, with the
majority class), ``figure7.{csv,md,png}`` (the confusion matrix, row-normalised, the paper's rates
beside ours), ``table9.{csv,md}`` (parameters and filters of the shallow CNNs at 64x64, ours and
the paper's), ``timing.{csv,md}`` (one clip, two frames -> class: Horn-Schunck + network,
median and p99 over ``timing_repeats`` calls, and batched throughput with ``timing_batch`` clips
per call, against the paper's 11.8 + 12.8 ms on a GTX 1060), ``report.md`` and ``summary.json``.
"""

from __future__ import annotations

import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np

from merjax import context, inference, models, report
from merjax import paper_numbers as paper
from merjax.config import Config, base
from merjax.data import cache, composite
from merjax.figures import confusion_figure
from merjax.report import num, pct


@dataclasses.dataclass(frozen=True)
class PerformanceConfig(Config):
    timing_repeats: int = 200  # clips timed one at a time
    timing_batch: int = 256  # clips per call for throughput


def config(profile: str) -> PerformanceConfig:
    cfg = base(profile, PerformanceConfig).replace(nets=("vy-3cl",), headline="vy-3cl")
    if profile == "tiny":  # plumbing only
        cfg = cfg.replace(timing_repeats=3, timing_batch=4)
    return cfg


def timed(fn, *args, repeats: int) -> np.ndarray:
    """Seconds per call of a jitted ``fn`` (after one warm-up call), ``repeats`` times."""
    jax.block_until_ready(fn(*args))
    out = np.empty(repeats)
    for i in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        out[i] = time.perf_counter() - t0
    return out


def run(ctx: context.Context) -> dict:
    cfg, data = ctx.cfg, ctx.data()
    head = cfg.headline
    res = ctx.train_and_score(head)
    r = res.row()
    rep = ctx.report(f"Performance of {head} (paper Tables 8-9, Figure 7)", data)
    on_paper_data = paper.comparable(cfg.composite)
    if not on_paper_data:
        rep.text(paper.PAPER_DATA_TEXT.format(title=composite.spec(cfg.composite).title))
    _table8(rep, head, r, on_paper_data)
    _figure7(rep, head, res.confusion, data.class_names, on_paper_data)
    _table9(rep)
    timing = clip_timing(ctx, head)
    _timing_table(rep, cfg, head, timing)
    return rep.write(report.summary("performance", cfg, data, head, {head: r}, timing=timing))


def _table8(rep: report.Report, head: str, r: dict, on_paper_data: bool) -> None:
    rows = [[name, "-", pct(acc), "-", "-"] for name, acc in paper.TABLE8 if on_paper_data]
    rows.append(
        [
            f"merjax {head} (this run)",
            pct(r["accuracy"], r["accuracy_std"]),
            "-",
            num(r["uf1"], 3),
            num(r["uar"], 3),
        ]
    )
    rows.append(["majority class (this data)", pct(r["majority"]), "-", "-", "-"])
    for g, v in r["per_dataset"].items():
        rows.append(
            [
                f"merjax {head}, {g} only (n={v['n']})",
                pct(v["accuracy"]),
                "-",
                num(v["uf1"], 3),
                num(v["uar"], 3),
            ]
        )
    rep.table(
        "table8",
        ["method", "accuracy", "paper", "UF1", "UAR"],
        rows,
        title="Table 8: accuracy against the literature (5 objective classes, LOSO)"
        if on_paper_data
        else "Table 8: accuracy (the literature's rows are on the paper's data: left out)",
    )


def _figure7(
    rep: report.Report, head: str, cm: np.ndarray, class_names, on_paper_data: bool
) -> None:
    labels, k = list(class_names), len(class_names)
    ref = paper.FIGURE7 if on_paper_data else [[None] * k] * k
    rates = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    rep.table(
        "figure7",
        ["true \\ predicted"] + labels,
        [
            [labels[i]] + [f"{pct(rates[i, j])} ({pct(ref[i][j])})" for j in range(k)]
            for i in range(k)
        ],
        title=f"Figure 7: confusion matrix of {head}, rows normalised — ours (paper)",
        csv_header=["true"] + [h for c in labels for h in (c, f"{c} paper")],
        csv_rows=[
            [labels[i]] + [v for j in range(k) for v in (float(rates[i, j]), ref[i][j])]
            for i in range(k)
        ],
    )
    rep.figure(
        "figure7",
        confusion_figure(cm, labels, f"{head}: pooled held-out predictions"),
        f"Confusion matrix of {head} (rows: true class; counts summed over seeds).",
    )


def _table9(rep: report.Report) -> None:

    rows, csv_rows = [], []
    for channels, name, rep_name in ((1, "single channel", "vy"), (2, "double channel", "vxvy")):
        cells = []
        for d in range(1, 5):
            model, _ = models.by_name(f"{rep_name}-{d}cl")
            ours = models.count_params(model, (64, 64, channels))
            filters = 16 * channels * (2**d - 1)
            ref, ref_filters = paper.TABLE9[channels][d - 1]
            cells.append(f"{ours:,} ({filters}) — paper {ref:,} ({ref_filters})")
            csv_rows.append([name, d, ours, filters, ref, ref_filters])
        rows.append([name] + cells)
    rep.table(
        "table9",
        ["input", "1 CL", "2 CL", "3 CL", "4 CL"],
        rows,
        title="Table 9: learnable parameters (filters) at 64x64 — ours and the paper's",
        csv_header=["input", "CL", "params", "filters", "paper_params", "paper_filters"],
        csv_rows=csv_rows,
    )
    rep.text(
        "The paper's 333,121 for the single-channel 3 CL network does not follow from the "
        "architecture of the other seven cells, which gives 331,301 (docs/networks.md)."
    )


def _timing_table(rep: report.Report, cfg: PerformanceConfig, head: str, timing: dict) -> None:
    rep.table(
        "timing",
        ["step", "median (ms)", "p99 (ms)", "paper (ms, GTX 1060)", "batched (clips/s)"],
        [
            [
                k,
                num(v["median_ms"], 3),
                num(v["p99_ms"], 3),
                num(paper.TIMING_MS[k], 1),
                f"{v['clips_per_s']:,.0f}",
            ]
            for k, v in timing.items()
        ],
        title=f"Time per clip on {timing['total']['device']}: two frames -> class",
        csv_header=["step", "median_ms", "p99_ms", "paper_ms", "clips_per_s"],
        csv_rows=[
            [k, v["median_ms"], v["p99_ms"], paper.TIMING_MS[k], v["clips_per_s"]]
            for k, v in timing.items()
        ],
    )
    rep.text(
        f"Frames {cfg.flow.size[0]}x{cfg.flow.size[1]} uint8, {cfg.flow.describe()}, "
        f"{head} on {cfg.size}x{cfg.size} inputs; each step jitted, "
        f"timed after a warm-up call over {cfg.timing_repeats} calls; batched: {cfg.timing_batch} "
        "clips per call. The network's weights do not change its time."
    )


def clip_timing(ctx: context.Context, net: str) -> dict[str, dict]:
    """Median and p99 latency of flow, network and both for one clip, and batched throughput."""
    cfg, data = ctx.cfg, ctx.data()
    frames, _ = cache.sample_frames(
        data.samples[0], cfg.flow
    )  # [3, H, W] uint8: onset, apex, apex+1
    onset, apex = jnp.asarray(frames[:1]), jnp.asarray(frames[1:2])
    model = inference.untrained(net, cfg.size, cfg.flow)

    def flow_fn(f0, f1):
        return inference.flow_of(f0, f1, model.spec)

    def net_fn(uv):
        return inference.network_probabilities(
            model.variables, uv, module=model.module, spec=model.spec
        )

    fns = {"flow": jax.jit(flow_fn), "network": jax.jit(net_fn), "total": model.jitted()}
    uv = fns["flow"](onset, apex)
    args = {"flow": (onset, apex), "network": (uv,), "total": (onset, apex)}
    b = cfg.timing_batch
    batch_args = {
        "flow": (jnp.repeat(onset, b, 0), jnp.repeat(apex, b, 0)),
        "network": (jnp.repeat(uv, b, 0),),
        "total": (jnp.repeat(onset, b, 0), jnp.repeat(apex, b, 0)),
    }
    device = f"{jax.devices()[0].device_kind} ({jax.default_backend()})"
    out = {}
    for name, fn in fns.items():
        ctx.say(f"timing {name} ({cfg.timing_repeats} calls)")
        t = timed(fn, *args[name], repeats=cfg.timing_repeats)
        tb = timed(fn, *batch_args[name], repeats=max(3, cfg.timing_repeats // 20))
        out[name] = {
            "median_ms": float(np.median(t) * 1e3),
            "p99_ms": float(np.percentile(t, 99) * 1e3),
            "clips_per_s": float(b / np.median(tb)),
            "device": device,
        }
    return out

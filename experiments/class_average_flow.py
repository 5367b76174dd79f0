"""Figure 6: the average optical flow (Vx, Vy, M) of each class.

    python -m merjax.main --experiment=class_average_flow  # the quick profile (its time: README)

No network is trained. The class averages are also used as a classifier -- each held-out
sample goes to the class whose average (over the training subjects only) is nearest -- which
gives the headline accuracy, UF1 and UAR in ``summary.json``: what the averages alone can tell
apart. Writes ``figure6.png``, ``class_average_flow.npz`` (``[K, H, W, 2]``),
``table_flow.{csv,md}`` (per class: samples, mean |Vx|, |Vy| and M), ``report.md`` and
``summary.json``.
"""

from __future__ import annotations

import io

import numpy as np

from merjax import baselines, context, flow, metrics, report
from merjax.config import Config, base
from merjax.figures import flow_grid_figure
from merjax.report import num, pct


def config(profile: str) -> Config:
    return base(profile).replace(nets=(), headline="nearest-class-mean")


def run(ctx: context.Context) -> dict:
    cfg, data = ctx.cfg, ctx.data()
    labels, num_classes = list(data.class_names), data.num_classes
    uv = np.asarray(data.flows.apex)  # [N, H, W, 2]
    mean_KxHxWx2 = np.stack(
        [
            uv[data.labels == k].mean(0) if (data.labels == k).any() else np.zeros(uv.shape[1:])
            for k in range(num_classes)
        ]
    )
    mag = np.asarray(flow.representation(mean_KxHxWx2, "mag"))[..., 0]
    maps = np.stack([mean_KxHxWx2[..., 0], mean_KxHxWx2[..., 1], mag])  # [3, K, H, W]
    rep = ctx.report(
        "Average flow per class (paper Figure 6)",
        data,
        f"{cfg.profile} profile: onset->apex flows at {cfg.flow.size[0]}x{cfg.flow.size[1]} "
        f"({cfg.flow.describe()})",
    )
    buf = io.BytesIO()
    np.savez(buf, mean_flow=mean_KxHxWx2, labels=np.arange(num_classes))
    rep.add_file("class_average_flow.npz", buf.getvalue())
    rep.text(
        "The class means, `[K, H, W, 2]` (vx, vy): "
        "[class_average_flow.npz](class_average_flow.npz)."
    )
    rep.figure(
        "figure6",
        flow_grid_figure(maps, ["Vx", "Vy", "M"], labels, "Average onset->apex flow per class"),
        "Average Vx, Vy and magnitude per class (the magnitude of the mean flow).",
    )
    m_all = np.asarray(flow.representation(uv, "mag"))[..., 0]
    rows, csv_rows = [], []
    for k in range(num_classes):
        sel = data.labels == k
        vals = (
            [
                float(np.abs(uv[sel, ..., 0]).mean()),
                float(np.abs(uv[sel, ..., 1]).mean()),
                float(m_all[sel].mean()),
            ]
            if sel.any()
            else [float("nan")] * 3
        )
        rows.append([labels[k], int(sel.sum())] + [num(v, 4) for v in vals])
        csv_rows.append([labels[k], int(sel.sum())] + vals)
    rep.table(
        "table_flow",
        ["class", "samples", "mean |Vx| (px)", "mean |Vy| (px)", "mean M (px)"],
        rows,
        title="Flow statistics per class",
        csv_rows=csv_rows,
        csv_header=["class", "samples", "mean_abs_vx", "mean_abs_vy", "mean_m"],
    )

    results = {}
    for kind in ("vx", "vy", "vxvy", "mag"):
        x = np.asarray(flow.representation(uv, kind))
        subjects = np.asarray(data.subjects)
        pred = baselines.nearest_class_mean_loso(x, data.labels, subjects, num_classes)
        per = metrics.by_group(data.labels, pred, data.datasets, num_classes)
        results[f"nearest-class-mean-{kind}"] = {
            "net": "nearest class mean",
            "representation": kind,
            "params": 0,
            **{k: per["all"][k] for k in ("accuracy", "uf1", "uar", "majority", "n")},
            **{f"{k}_std": 0.0 for k in ("accuracy", "uf1", "uar")},
            "per_dataset": {
                g: {k: v[k] for k in ("accuracy", "uf1", "uar", "n")}
                for g, v in per.items()
                if g != "all"
            },
        }
    rep.table(
        "table_nearest_mean",
        ["input", "accuracy", "UF1", "UAR", "majority class"],
        [
            [
                k.rsplit("-", 1)[1],
                pct(v["accuracy"]),
                num(v["uf1"], 3),
                num(v["uar"], 3),
                pct(v["majority"]),
            ]
            for k, v in results.items()
        ],
        title="The class averages as a classifier (leave-one-subject-out nearest class mean)",
        csv_header=["input", "accuracy", "uf1", "uar", "majority"],
        csv_rows=[
            [k.rsplit("-", 1)[1], v["accuracy"], v["uf1"], v["uar"], v["majority"]]
            for k, v in results.items()
        ],
    )
    head = "nearest-class-mean-vy"
    return rep.write(report.summary("class_average_flow", cfg, data, head, results))

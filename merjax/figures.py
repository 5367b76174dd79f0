"""The figures experiments draw: confusion matrices, accuracy curves, grouped bars, flow grids,
similarity and score matrices, and a long video's spotting signals (matplotlib, files only).

Each builder returns a figure for :meth:`merjax.report.Report.figure`, which saves and closes it;
legends sit outside the axes, so no text covers the data.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from merjax.report import num


def _plt():
    import matplotlib

    matplotlib.use("Agg")  # files only; no display on a server or in CI
    import matplotlib.pyplot as plt

    return plt


def confusion_figure(cm: np.ndarray, labels: Sequence[str], title: str):
    """Row-normalised confusion matrix (as the paper's Figure 7), counts in brackets."""
    plt = _plt()
    cm = np.asarray(cm, float)
    rates = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(
                j,
                i,
                f"{100 * rates[i, j]:.1f}%\n({int(cm[i, j])})",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if rates[i, j] > 0.5 else "black",
            )
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    return fig


MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def series_figure(
    ours: dict[str, tuple[Sequence[float], Sequence[float]]],
    paper: dict[str, tuple[Sequence[float], Sequence[float | None]]],
    majority: float,
    *,
    xlabel: str,
    title: str,
    logx: bool = False,
    marker_names: Sequence[str] = (),
    kinds: dict[str, Sequence[int]] | None = None,
    xticks: tuple[Sequence[float], Sequence[str]] | None = None,
):
    """Accuracy curves: one colour per series, ours solid, the paper's dashed in the same colour,
    the majority class dotted; the legend outside the axes.

    ``ours[name] = (xs, accuracies)`` and ``paper[name] = (xs, accuracies or None)``. With
    ``marker_names``, point j of series ``name`` gets marker ``kinds[name][j]`` (default: j), and
    the legend says what each marker is (e.g. the number of conv layers), so no text sits on the
    data."""
    from matplotlib.lines import Line2D

    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.6, 4.2))
    colours = plt.get_cmap("tab10").colors
    handles = []
    for i, (name, (xs, ys)) in enumerate(ours.items()):
        c = colours[i % len(colours)]
        ax.plot(xs, 100 * np.asarray(ys, float), "-", color=c, lw=1.6, zorder=3)
        pts = paper.get(name)
        known = (
            [(x, 100 * y) for x, y in zip(*pts, strict=True) if y is not None]
            if pts is not None
            else []
        )
        if known:
            ax.plot(*zip(*known, strict=True), "--", color=c, lw=1.2, zorder=2)
        marks = (kinds or {}).get(name, range(len(xs)))
        for j, (x, y, k) in enumerate(zip(xs, ys, marks, strict=True)):
            m = MARKERS[k % len(MARKERS)] if marker_names else "o"
            ax.plot([x], [100 * y], m, color=c, ms=6, zorder=4)
            if pts is not None and j < len(pts[1]) and pts[1][j] is not None:
                ax.plot([pts[0][j]], [100 * pts[1][j]], m, mfc="white", mec=c, ms=6, zorder=4)
        handles.append(Line2D([], [], color=c, lw=2, label=name))
    ax.axhline(100 * majority, color="grey", lw=1, ls=":", zorder=1)
    handles.append(Line2D([], [], color="black", ls="-", marker="o", label="merjax (this run)"))
    if paper:
        handles.append(
            Line2D([], [], color="black", ls="--", marker="o", mfc="white", label="paper")
        )
    handles.append(
        Line2D([], [], color="grey", ls=":", label=f"majority class ({100 * majority:.1f}%)")
    )
    handles += [
        Line2D([], [], color="black", ls="", marker=MARKERS[j % len(MARKERS)], label=t)
        for j, t in enumerate(marker_names)
    ]
    if logx:
        ax.set_xscale("log")
    if xticks is not None:
        ax.set_xticks(list(xticks[0]), list(xticks[1]), fontsize=7)
        ax.minorticks_off()
    ax.set_xlabel(xlabel)
    ax.set_ylabel("held-out accuracy (%)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(
        handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0
    )
    return fig


def bar_figure(
    groups: Sequence[str],
    series: dict[str, Sequence[float | None]],
    *,
    ylabel: str,
    title: str,
    errors: dict[str, Sequence[float]] | None = None,
    hollow: Sequence[str] = (),
    markers: dict[str, Sequence[float | None]] | None = None,
    intervals: dict[str, Sequence[Sequence[float]]] | None = None,
    bar_markers: dict[str, tuple[str, Sequence[float | None], str]] | None = None,
):
    """Grouped bars: one group per name, one bar per series (``hollow`` series drawn as outlines,
    e.g. numbers that are not valid results); ``errors``: symmetric error bars (e.g. std),
    ``intervals``: (low, high) error bars (e.g. a 95% interval; empty draws none);
    ``markers``: values drawn as a black bar across their group (e.g. published numbers; None
    draws nothing); ``bar_markers``: ``{label: (series, values, linestyle)}``, values drawn
    across that series' bar only (a published number of one class set, a baseline that differs
    by series); the legend outside the axes."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(groups) + 3), 4.0))
    colours = plt.get_cmap("tab10").colors
    width = 0.8 / max(1, len(series))
    x = np.arange(len(groups))
    for i, (name, values) in enumerate(series.items()):
        v = np.array([np.nan if a is None else a for a in values], float)
        err = None if not errors or name not in errors else errors[name]
        if intervals and name in intervals:
            lo_hi = np.array([iv if len(iv) == 2 else (np.nan, np.nan) for iv in intervals[name]])
            err = np.abs(np.stack([v - lo_hi[:, 0], lo_hi[:, 1] - v]))
        c = colours[i % len(colours)]
        kw = dict(facecolor="none", edgecolor=c, hatch="//") if name in hollow else dict(color=c)
        ax.bar(
            x + (i - (len(series) - 1) / 2) * width,
            v,
            width * 0.95,
            yerr=err,
            capsize=3,
            label=name,
            **kw,
        )
    names = list(series)
    for label, (name, values, style) in (bar_markers or {}).items():
        offset = (names.index(name) - (len(series) - 1) / 2) * width
        at = [(i + offset, float(a)) for i, a in enumerate(values) if a is not None]
        if at:
            ax.hlines(
                [a for _, a in at],
                [c - width / 2 for c, _ in at],
                [c + width / 2 for c, _ in at],
                colors="black",
                linestyles=style,
                linewidth=2,
                zorder=3,
                label=label,
            )
    for name, values in (markers or {}).items():
        at = [(i, float(a)) for i, a in enumerate(values) if a is not None]
        if at:
            ax.hlines(
                [a for _, a in at],
                [i - 0.42 for i, _ in at],
                [i + 0.42 for i, _ in at],
                colors="black",
                linewidth=2,
                zorder=3,
                label=name,
            )
    ax.set_xticks(x, list(groups), fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    return fig


def flow_grid_figure(
    maps_RxKxHxW: np.ndarray, rows: Sequence[str], cols: Sequence[str], title: str, unit: str = "px"
):
    """A grid of maps (rows: Vx, Vy, M; columns: classes), one colour scale per row, with its
    colour bar (in ``unit``) at the row's end."""
    plt = _plt()
    r, k = maps_RxKxHxW.shape[:2]
    fig, axes = plt.subplots(r, k, figsize=(1.9 * k + 0.8, 1.9 * r + 0.4), squeeze=False)
    for i in range(r):
        lim = float(np.nanmax(np.abs(maps_RxKxHxW[i]))) or 1.0
        signed = float(np.nanmin(maps_RxKxHxW[i])) < 0
        for j in range(k):
            ax = axes[i, j]
            im = ax.imshow(
                maps_RxKxHxW[i, j],
                cmap="RdBu_r" if signed else "magma",
                vmin=-lim if signed else 0,
                vmax=lim,
            )
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(cols[j], fontsize=8)
            if j == 0:
                ax.set_ylabel(rows[i], fontsize=9)
        bar = fig.colorbar(im, ax=list(axes[i]), fraction=0.025, pad=0.02)
        bar.set_label(unit, fontsize=7)
        bar.ax.tick_params(labelsize=7)
    fig.suptitle(title, fontsize=9)
    return fig


def similarity_figure(sim: np.ndarray, labels: Sequence[str], title: str):
    """Cosine similarity between classes, the value in each cell (dark text on light cells)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.4, 4.2))
    lo = min(0.0, float(np.nanmin(sim)))
    im = ax.imshow(sim, cmap="viridis", vmin=lo, vmax=1)
    for i in range(len(labels)):
        for j in range(len(labels)):
            light = (float(sim[i, j]) - lo) / (1 - lo) > 0.6 if np.isfinite(sim[i, j]) else False
            ax.text(
                j,
                i,
                num(float(sim[i, j]), 3),
                ha="center",
                va="center",
                fontsize=7,
                color="black" if light else "white",
            )
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04).set_label("cosine similarity", fontsize=8)
    return fig


def matrix_figure(
    values: np.ndarray,
    rows: Sequence[str],
    cols: Sequence[str],
    title: str,
    *,
    notes: Sequence[Sequence[str]] | None = None,
    label: str = "UF1",
):
    """A score per (row, column) on a 0-1 scale, the value and a note (e.g. an interval) in each
    cell; NaN cells are blank but for their note."""
    plt = _plt()
    values = np.asarray(values, float)
    fig, ax = plt.subplots(figsize=(1.5 * len(cols) + 2.6, 0.8 * len(rows) + 1.6))
    im = ax.imshow(np.ma.masked_invalid(values), cmap="viridis", vmin=0, vmax=1)
    for i in range(len(rows)):
        for j in range(len(cols)):
            v = values[i, j]
            text = "" if not np.isfinite(v) else f"{v:.3f}"
            if notes is not None and notes[i][j]:
                text = f"{text}\n{notes[i][j]}" if text else notes[i][j]
            dark = not np.isfinite(v) or v > 0.6
            ax.text(
                j, i, text, ha="center", va="center", fontsize=7, color="black" if dark else "white"
            )
    ax.set_xticks(range(len(cols)), cols, fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04).set_label(label, fontsize=8)
    return fig


def spotting_figure(
    seconds_T: np.ndarray,
    curves: dict[str, np.ndarray],
    levels: dict[str, float],
    truth: Sequence[tuple[float, float, str]],
    spotted: Sequence[tuple[float, float, str]],
    blinks: Sequence[tuple[float, float]],
    title: str,
):
    """One video over time: each curve (a spotting signal, scaled to its own maximum) with its
    threshold dashed; ground-truth intervals shaded by kind; spotted intervals as bars above
    the curves; blinks as ticks along the bottom."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(8.0, min(24.0, seconds_T[-1] / 8)), 3.4))
    colours = {"micro": "tab:red", "macro": "tab:blue"}
    for a, b, kind in truth:
        ax.axvspan(a, b, color=colours[kind], alpha=0.15, lw=0)
    for (name, y), c in zip(
        curves.items(), ("tab:red", "tab:blue", "tab:purple", "tab:cyan"), strict=False
    ):
        top = float(np.nanmax(y)) or 1.0
        ax.plot(seconds_T, y / top, color=c, lw=0.8, label=name)
        if name in levels:
            ax.axhline(levels[name] / top, color=c, ls="--", lw=0.7)
    for a, b, kind in spotted:
        ax.hlines(1.08 if kind == "micro" else 1.16, a, b, colors=colours[kind], lw=4)
    for a, b in blinks:
        ax.hlines(-0.06, a, b, colors="0.3", lw=4)
    from matplotlib.patches import Patch

    handles, _ = ax.get_legend_handles_labels()
    handles += [
        Patch(color=colours["micro"], alpha=0.15, label="micro (ground truth)"),
        Patch(color=colours["macro"], alpha=0.15, label="macro (ground truth)"),
        plt.Line2D([], [], color=colours["micro"], lw=4, label="spotted micro (bars above)"),
        plt.Line2D([], [], color=colours["macro"], lw=4, label="spotted macro (higher bars)"),
        plt.Line2D([], [], color="0.3", lw=4, label="blinks"),
    ]
    if levels:
        handles.append(
            plt.Line2D([], [], color="0.3", ls="--", lw=0.7, label="threshold (curve's colour)")
        )
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_ylim(-0.12, 1.24)
    ax.set_xlim(seconds_T[0], seconds_T[-1])
    ax.set_xlabel("seconds")
    ax.set_ylabel("signal / its maximum")
    ax.set_title(title, fontsize=9)
    return fig


def sweep_figure(
    levels: Sequence[str], series: dict[str, Sequence[float]], default: int, title: str
):
    """Scores against a swept setting: F1 series (names with "F1") on the left, false spots per
    minute on the right, the default level marked by a dashed line."""
    plt = _plt()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10.0, 3.6))
    x = np.arange(len(levels))
    styles = {"micro": ":", "macro": "--", "overall": "-"}
    colours: dict[str, str] = {}
    palette = iter(("tab:red", "tab:blue", "tab:green", "tab:purple"))
    for name, ys in series.items():
        who = name.split(" F1 ")[0].split(" false")[0]
        c = colours.setdefault(who, next(palette, "tab:grey"))
        if " F1 " in name:
            left.plot(x, ys, styles[name.rsplit(" ", 1)[-1]], marker="o", color=c, label=name)
        else:
            right.plot(x, ys, "-", marker="s", color=c, label=name)
    for ax, ylabel in ((left, "F1 (IoU >= 0.5)"), (right, "false spots per minute")):
        ax.axvline(default, color="black", ls="--", lw=0.8)
        ax.set_xticks(x, levels)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        # Long handles: the marker on a short one hides the dashes that tell the kinds apart.
        ax.legend(fontsize=7, handlelength=4)
    left.set_ylim(0, 1)
    right.set_ylim(bottom=0)
    right.text(default, right.get_ylim()[1] * 0.95, " default", fontsize=7, va="top")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def pareto_figure(
    rows: Sequence[dict],
    costs: Sequence[str],
    labels: Sequence[str],
    *,
    marked: Sequence[str] = (),
    score: str = "uf1",
):
    """``score`` against each cost in ``costs`` (one panel each, log x): every candidate as a
    point coloured by its ``family``, the front (no point cheaper and better) as a step line,
    the ``marked`` networks as labelled stars; one legend outside the axes."""
    from matplotlib.lines import Line2D

    plt = _plt()
    fig, axes = plt.subplots(1, len(costs), figsize=(5.0 * len(costs) + 1.8, 4.2), sharey=True)
    axes = np.atleast_1d(axes)
    families = sorted({r["family"] for r in rows})
    colours = dict(zip(families, plt.get_cmap("tab10").colors, strict=False))
    for ax, cost, label in zip(axes, costs, labels, strict=True):
        for r in rows:
            star = r["net"] in marked
            ax.plot(
                r[cost], r[score], "*" if star else "o", color=colours[r["family"]],
                ms=13 if star else 5, mec="black" if star else "none", zorder=4 if star else 3,
            )  # fmt: skip
            if star:
                ax.annotate(r["net"], (r[cost], r[score]), xytext=(6, -10),
                            textcoords="offset points", fontsize=8)  # fmt: skip
        front = sorted((r[cost], r[score]) for r in rows if r.get(f"front_{cost}"))
        if front:
            xs, ys = zip(*front, strict=True)
            ax.step(xs, ys, where="post", color="black", lw=1.2, zorder=2)
            ax.plot(xs, ys, "o", mfc="none", mec="black", ms=9, zorder=5)
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"held-out {score.upper()}")
    handles = [Line2D([], [], color=colours[f], marker="o", ls="", label=f) for f in families]
    handles += [
        Line2D([], [], color="black", lw=1.2, marker="o", mfc="none", ms=8, label="front"),
        Line2D([], [], color="grey", marker="*", mec="black", ms=12, ls="", label="the paper's"),
    ]
    axes[-1].legend(
        handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0
    )
    fig.suptitle("The search's fronts: score against cost", fontsize=10)
    return fig

"""Writing what an experiment found: CSV + Markdown tables, PNG figures (drawn by
:mod:`merjax.figures`), report.md, summary.json, and the cells and sentences tables share.

Tables are laid out like the paper's, with the paper's number in the column next to ours. Every
report states its protocol (so a quick run is never mistaken for the paper's) and the
majority-class baseline next to every accuracy.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from merjax import hosts, metrics
from merjax import paper_numbers as paper
from merjax.files import commit, short_name


def pct(x: float | None, std: float | None = None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{100 * x:.2f}%" + (f" ± {100 * std:.2f}" if std else "")


def num(x: float | int | None, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:,}" if isinstance(x, (int, np.integer)) else f"{x:.{digits}f}"


SYNTHETIC_TEXT = (
    "**Synthetic data: every number below checks the pipeline; none is comparable with the "
    "paper's or any published result on real faces.**"
)


def on_synthetic_data(source: str) -> bool:
    """Whether a report's data (its ``Data:`` line, as :mod:`merjax.data.loading` words it) is
    merjax's synthetic databases or videos rather than a user's real ones."""
    return source.split(": ", 1)[-1].startswith(("the synthetic database", "the synthetic long"))


class Report:
    """Collects one experiment's report.md, tables, figures and files, and writes them together.

    Nothing is written until :meth:`write`, which commits every file at once (temporaries, then
    renames: :func:`merjax.files.commit`), so a crash or a full disk during a rerun leaves the
    previous run's files whole and never a mix of two runs."""

    def __init__(
        self, workdir: Path, title: str, protocol: str, source: str, warnings: Sequence[str] = ()
    ):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.lines = (
            [f"# {title}", ""]
            + ([SYNTHETIC_TEXT, ""] if on_synthetic_data(source) else [])
            + [f"**{w}**\n" for w in warnings]
            + [f"Data: {source}.", "", f"Protocol: {protocol}.", ""]
        )
        self.files: list[str] = []
        self._pending: dict[str, bytes] = {}

    def text(self, *paragraphs: str) -> None:
        for p in paragraphs:
            self.lines += [p, ""]

    def add_file(self, name: str, data: bytes) -> str:
        """Another file of the report (written with the rest by :meth:`write`); returns its file
        name, shortened with a hash where ``name`` is too long for a file system (a figure named
        after a video whose subject and video names are long), so the work never ends in
        ``File name too long``."""
        name = short_name(name)
        self._pending[name] = data
        self.files.append(name)
        return name

    def table(
        self,
        name: str,
        header: Sequence[str],
        rows: Sequence[Sequence],
        *,
        title: str,
        csv_header: Sequence[str] | None = None,
        csv_rows: Sequence[Sequence] | None = None,
    ) -> None:
        """``name.csv`` (raw values: ``csv_header``/``csv_rows``, else the shown ones) and a
        Markdown table in report.md (also written alone to ``name.md``)."""
        if (csv_rows is None) != (csv_header is None):
            raise ValueError("give csv_header and csv_rows together")
        buf = io.StringIO(newline="")
        w = csv.writer(buf)
        w.writerow(csv_header if csv_header is not None else header)
        w.writerows(csv_rows if csv_rows is not None else rows)
        md = [f"| {' | '.join(map(str, header))} |", "|" + "---|" * len(header)]
        md += [f"| {' | '.join(map(str, r))} |" for r in rows]
        csv_name = self.add_file(f"{name}.csv", buf.getvalue().encode())
        md_name = self.add_file(f"{name}.md", (f"## {title}\n\n" + "\n".join(md) + "\n").encode())
        self.lines += [
            f"## {title}",
            "",
            *md,
            "",
            f"Files: [{csv_name}]({csv_name}), [{md_name}]({md_name})",
            "",
        ]

    def figure(self, name: str, fig, caption: str) -> None:
        import matplotlib.pyplot as plt

        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
        plt.close(fig)
        used = self.add_file(f"{name}.png", buf.getvalue())
        self.lines += [f"![{caption}]({used})", "", f"*{caption}*", ""]

    def write(self, summary: dict) -> dict:
        """Writes every file, report.md and summary.json (``summary`` plus the list of files)."""
        summary = summary | {"files": sorted(set(self.files + ["report.md", "summary.json"]))}
        files = {self.workdir / n: d for n, d in self._pending.items()}
        files[self.workdir / "report.md"] = "\n".join(self.lines).encode()
        files[self.workdir / "summary.json"] = (
            json.dumps(_plain(summary), indent=1) + "\n"
        ).encode()
        # Process 0 writes the report; the others have built the same one and wait for it.
        hosts.main_only(lambda: commit(files), f"writing {self.workdir / 'report.md'}")
        self._pending.clear()
        return summary


def _plain(x):
    """JSON-safe: numpy scalars and arrays to Python, NaN to None."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, np.ndarray):
        return _plain(x.tolist())
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and math.isnan(x):
        return None
    return x


# --------------------------------------------------------------------------- cells and sentences


def cell(value: float | None, std: float | None = None, ci=(), digits: int = 3) -> str:
    """``0.512 ± 0.010 [0.431, 0.597]``: a score, its std over seeds, its 95% interval."""
    if value is None:
        return "-"
    text = num(value, digits) + (f" ± {num(std, digits)}" if std else "")
    if ci is not None and len(ci) == 2:
        text += f" [{num(ci[0], digits)}, {num(ci[1], digits)}]"
    return text


def pct_interval(ci) -> str:
    """`` [81.2%, 93.0%]``: a 95% interval of an accuracy ('' without one)."""
    return f" [{pct(ci[0])}, {pct(ci[1])}]" if ci is not None and len(ci) == 2 else ""


def near_majority_text(results: dict[str, dict], epochs: int) -> str:
    """A warning for the networks whose held-out accuracy interval contains the majority class's
    accuracy ('' if none): after ``epochs`` epochs they are not distinguishable from always
    predicting one class, which says they did not train in this budget, not how depth or input
    matter."""
    flat = [
        n
        for n, r in results.items()
        if len(r.get("accuracy_ci") or ()) == 2
        and r["accuracy_ci"][0] <= r["majority"] <= r["accuracy_ci"][1]
    ]
    if not flat:
        return ""
    return (
        f"**Not distinguishable from the majority class** ({pct(results[flat[0]]['majority'])} "
        f"accuracy; its value lies inside their 95% interval): {', '.join(flat)}. After {epochs} "
        "epochs these networks have not learned enough to be told apart from always predicting "
        "the most frequent class; read their rows as an effect of this profile's training budget, "
        "not as a finding about depth or input."
    )


SCORE_HEADER = ["UF1 [95% CI]", "UAR [95% CI]", "accuracy"]
"""The columns of :func:`score_cells`."""


def score_cells(r: dict) -> list[str]:
    """A result row's scores (``NetResult.row()``): UF1 and UAR (± std [95% interval]),
    accuracy (± std)."""
    return [
        cell(r["uf1"], r["uf1_std"], r["uf1_ci"]),
        cell(r["uar"], r["uar_std"], r["uar_ci"]),
        pct(r["accuracy"], r["accuracy_std"]),
    ]


def majority_text(data, what: str = "") -> str:
    """What always predicting the most frequent class scores on ``data`` (``what``: which data,
    e.g. " on 3 classes")."""
    always = np.full_like(data.labels, np.bincount(data.labels).argmax())
    k = data.num_classes
    return (
        f"Majority class{what} (always predicting the most frequent class): accuracy "
        f"{pct(metrics.accuracy(data.labels, always))}, UF1 "
        f"{metrics.uf1(data.labels, always, k):.3f}, UAR {metrics.uar(data.labels, always, k):.3f}."
    )


INTERVALS_TEXT = (
    "Intervals in brackets are 95% intervals by resampling subjects (1,000 resamples of the "
    "held-out subjects with replacement, the score recomputed from the pooled counts; "
    "merjax.metrics.bootstrap_ci), beside ± the standard deviation over training seeds. A "
    "subject's samples are not independent, so resampling samples would give narrower, "
    "over-confident intervals; with 20-30 subjects per database, differences inside these "
    "intervals are not differences."
)

NOT_VALID_TEXT = (
    "**The NOT VALID column is not a valid result.** It picks, for each held-out subject, the "
    "evaluated epoch where that subject's own test samples scored best by the metric shown (its "
    "UF1 for the UF1, its recall for the UAR; the fixed final epoch is among the candidates), "
    "which selects on the test set, as the papers that report each subject's best epoch do. It "
    "is shown only to measure how much that practice inflates a score; our results are the "
    "fixed-epoch columns. UF1 and UAR pool counts over subjects, so a per-subject choice can "
    "land below the fixed epoch's pooled score; by accuracy it never can."
)


def best_epoch_warning(what: str) -> str:
    """Why published numbers on ``what`` may be inflated: the Micro-Expression Benchmark's
    measurement of choosing epochs on test subjects."""
    fixed, best = paper.MEB_FIXED_VS_BEST_EPOCH["STSTNet"]
    return (
        f"Published numbers on {what}, like many micro-expression results, may come from "
        "choosing epochs by test results: the Micro-Expression Benchmark measured STSTNet's UF1 "
        f"on the MEGC 2019 composite at {fixed:.3f} with a fixed number of epochs against "
        f"{best:.3f} picking each subject's best test epoch."
    )


# --------------------------------------------------------------------------- prose and summary


def model_text(workdir: Path, net: str, model_dir: Path | None) -> str:
    """A report paragraph on the saved final model of ``net`` ('' if none was saved)."""
    if model_dir is None:
        return ""
    return (
        f"Final model: `{os.path.relpath(model_dir, workdir)}` — {net} trained on every subject "
        f"(not scored: it has no held-out data). On new clips: `python -m merjax.predict "
        f"--model={model_dir} --onset=ONSET.jpg --apex=APEX.jpg`."
    )


def summary(experiment: str, cfg, data, head: str, results: dict[str, dict], **extra) -> dict:
    """summary.json: the headline configuration's accuracy, UF1 and UAR first, then the rest
    (the data, its warnings and notes, every configuration, the config, the device)."""
    import jax

    h = results[head]
    return {
        "experiment": experiment,
        "headline": head,
        "accuracy": h["accuracy"],
        "accuracy_std": h["accuracy_std"],
        "uf1": h["uf1"],
        "uf1_std": h["uf1_std"],
        "uar": h["uar"],
        "uar_std": h["uar_std"],
        "majority": h["majority"],
        "profile": cfg.profile,
        "protocol": cfg.protocol,
        "data": data.source,
        "samples": len(data.samples),
        "subjects": len(set(data.subjects)),
        "warnings": data.warnings,
        "skipped": [str(p) for p in data.samples.skipped],
        "notes": data.notes,
        "configs": results,
        "config": dataclasses.asdict(cfg),
        "device": f"{jax.devices()[0].device_kind} ({jax.default_backend()})",
    } | extra

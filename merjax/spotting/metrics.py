"""Spotting scores as the Micro-Expression Grand Challenge defines them, and STRS.

A spotted interval is a true positive when its intersection over union with a ground-truth
interval of the same kind (micro or macro) is at least 0.5, frames counted inclusively
(``[onset, offset]``). Matching is one to one: each spotted interval is a true positive at most
once and each ground truth is found at most once, and the true positives are the largest such
set of pairs (a bipartite maximum matching; ties towards the higher total IoU). So a spotted
interval that overlaps two ground truths counts once, and the other ground truth is a false
negative unless another spotted interval finds it. Other evaluators of the field depart from this
in ways docs/spotting.md ("Scoring rules") lists, each with its test case. Precision, recall and
F1 come from counts pooled over videos: per kind, and overall (both kinds' counts together).

STRS (the spot-then-recognize score of MEGC 2023; Liong et al., Signal Processing: Image
Communication 2023) is the spotting F1 times the analysis F1: the true-positive pairs' predicted
emotion against their ground truth's, with precision and recall averaged over the emotions and
the analysis F1 their harmonic mean.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

import numpy as np
import scipy.optimize

from merjax.data.intervals import KINDS, Interval

IOU_THRESHOLD = 0.5


def iou(a: Interval, b: Interval) -> float:
    """Intersection over union of two intervals, frames counted inclusively."""
    inter = min(a.offset, b.offset) - max(a.onset, b.onset) + 1
    if inter <= 0:
        return 0.0
    return inter / (a.length + b.length - inter)


def match(
    spotted: Sequence[Interval], truth: Sequence[Interval], threshold: float = IOU_THRESHOLD
) -> list[tuple[int, int]]:
    """The largest one-to-one set of ``(spotted index, truth index)`` pairs with IoU >=
    ``threshold``; among the largest, one with the highest total IoU. Kinds are not looked at:
    pass intervals of one kind.

    A bipartite maximum matching, not a greedy one: taking the best pair first can use up the
    only spot that a second truth had (two touching truths, a spot across both). Each eligible
    pair weighs ``len(spotted) + 1 + IoU``, so a larger matching always outweighs a smaller one
    and IoU only breaks ties between matchings of one size."""
    if not spotted or not truth:
        return []
    iou_SxT = np.array([[iou(s, t) for t in truth] for s in spotted])
    eligible = iou_SxT >= threshold
    if not eligible.any():
        return []
    weight = np.where(eligible, len(spotted) + 1 + iou_SxT, 0.0)
    rows, cols = scipy.optimize.linear_sum_assignment(weight, maximize=True)
    return sorted((int(i), int(j)) for i, j in zip(rows, cols, strict=True) if eligible[i, j])


@dataclasses.dataclass(frozen=True)
class Counts:
    """True positives, false positives and false negatives, and the scores they give (0 where a
    denominator is 0: no spotted interval has precision 0, no ground truth recall 0)."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def as_dict(self) -> dict:
        return dataclasses.asdict(self) | {
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
        }


def video_counts(
    spotted: Sequence[Interval], truth: Sequence[Interval], threshold: float = IOU_THRESHOLD
) -> dict[str, Counts]:
    """Per kind, the counts of one video (an empty video, or one with nothing spotted, is
    fine: all its ground truths are false negatives, or all its spots false positives)."""
    out = {}
    for kind in KINDS:
        s = [x for x in spotted if x.kind == kind]
        t = [x for x in truth if x.kind == kind]
        n = len(match(s, t, threshold))
        out[kind] = Counts(n, len(s) - n, len(t) - n)
    return out


def scores(
    videos: Iterable[tuple[Sequence[Interval], Sequence[Interval]]],
    threshold: float = IOU_THRESHOLD,
) -> dict[str, dict]:
    """Precision, recall and F1 from counts pooled over ``videos`` (``(spotted, truth)`` per
    video): ``{"micro": ..., "macro": ..., "overall": ...}``, each with tp, fp and fn."""
    total = {k: Counts() for k in KINDS}
    for spotted, truth in videos:
        for kind, c in video_counts(spotted, truth, threshold).items():
            total[kind] = total[kind] + c
    overall = sum(total.values(), Counts())
    return {k: c.as_dict() for k, c in total.items()} | {"overall": overall.as_dict()}


def analysis_f1(pairs: Sequence[tuple[str, str]]) -> dict:
    """The analysis scores of true-positive pairs ``(predicted emotion, true emotion)``: per
    emotion (every emotion either side names) precision and recall, their means, the analysis
    F1 (harmonic mean of the two means), and UF1 (mean per-emotion F1)."""
    emotions = sorted({e for p in pairs for e in p})
    if not emotions:
        return {"precision": 0.0, "recall": 0.0, "f1": 0.0, "uf1": 0.0, "emotions": []}
    per = []
    for e in emotions:
        c = Counts(
            sum(p == e and t == e for p, t in pairs),
            sum(p == e and t != e for p, t in pairs),
            sum(p != e and t == e for p, t in pairs),
        )
        per.append((c.precision, c.recall, c.f1))
    p, r = float(np.mean([x[0] for x in per])), float(np.mean([x[1] for x in per]))
    return {
        "precision": p,
        "recall": r,
        "f1": 2 * p * r / (p + r) if p + r else 0.0,
        "uf1": float(np.mean([x[2] for x in per])),
        "emotions": emotions,
    }


def strs(
    videos: Iterable[tuple[Sequence[Interval], Sequence[Interval]]],
    kind: str = "micro",
    threshold: float = IOU_THRESHOLD,
) -> dict:
    """The spot-then-recognize score over ``videos`` (``(spotted, truth)``, spotted intervals
    carrying their recognised ``emotion``), for intervals of ``kind``: spotting F1, analysis F1
    of the true-positive pairs, and their product."""
    total, pairs = Counts(), []
    for spotted, truth in videos:
        s = [x for x in spotted if x.kind == kind]
        t = [x for x in truth if x.kind == kind]
        matched = match(s, t, threshold)
        total = total + Counts(len(matched), len(s) - len(matched), len(t) - len(matched))
        pairs += [(str(s[i].emotion), str(t[j].emotion)) for i, j in matched]
    analysis = analysis_f1(pairs)
    return {
        "strs": total.f1 * analysis["f1"],
        "spotting": total.as_dict(),
        "analysis": analysis,
    }


def f1_interval(
    videos: Sequence[tuple[Sequence[Interval], Sequence[Interval]]],
    kind: str = "overall",
    *,
    threshold: float = IOU_THRESHOLD,
    resamples: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """A 95% interval of the pooled F1 of ``kind`` ("micro", "macro" or "overall") by resampling
    the videos with replacement (the counts of each video are matched once, then pooled per
    resample). Videos, not intervals, are resampled: the intervals of one video share its
    face, lighting and spotter threshold. (nan, nan) without videos."""
    if not videos:
        return float("nan"), float("nan")
    per_video = []
    for spotted, truth in videos:
        c = video_counts(spotted, truth, threshold)
        got = sum(c.values(), Counts()) if kind == "overall" else c[kind]
        per_video.append((got.tp, got.fp, got.fn))
    counts = np.array(per_video, float)  # [V, 3]
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(counts), (resamples, len(counts)))
    tp, fp, fn = counts[pick].sum(1).T
    denom = 2 * tp + fp + fn
    f1 = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)
    low, high = np.percentile(f1, [2.5, 97.5])
    return float(low), float(high)

"""Spotting's counting rules: merjax's (MEGC's definition, a one-to-one maximum matching) and
the field's other evaluators', each re-stated from its documented behaviour (docs/spotting.md,
"Scoring rules"), so that one submission can be scored the way each published number was.

    rule = RULES["megc2020"]
    counts = rule.count(videos)        # per kind and overall: Counts(tp, fp, fn)

A rule counts true positives, false positives and false negatives per kind over ``videos``
(``(spotted, truth)`` per video); precision, recall and F1 follow from the counts as
:class:`merjax.spotting.metrics.Counts` computes them. Where a rule is not one to one, ``fp`` is
the spots less the true positives and may be negative: precision is then above 1, as the
MEGC 2020 baseline's was.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

from merjax.data.intervals import KINDS, Interval
from merjax.spotting.metrics import IOU_THRESHOLD, Counts, iou, match

Videos = Iterable[tuple[Sequence[Interval], Sequence[Interval]]]


def best_truth_only_tp(spotted: Sequence[Interval], truth: Sequence[Interval]) -> int:
    """MEAN's and SOFTNet's matcher: each spot, in order, tries only the truth it overlaps most;
    a hit if that IoU >= 0.5 and the truth is not found yet."""
    found, tp = set(), 0
    for s in spotted:
        if not truth:
            break
        j = max(range(len(truth)), key=lambda k: iou(s, truth[k]))
        if iou(s, truth[j]) >= IOU_THRESHOLD and j not in found:
            found.add(j)
            tp += 1
    return tp


def megc2020_iou(a: Interval, b: Interval) -> float:
    """The MEGC 2020 baseline's IoU: lengths as ``offset - onset``, so a one-frame interval has
    length 0 and an IoU of 0 with everything."""
    inter = min(a.offset, b.offset) - max(a.onset, b.onset)
    union = (a.offset - a.onset) + (b.offset - b.onset) - inter
    return inter / union if inter > 0 and union > 0 else 0.0


def megc2020_tp(spotted: Sequence[Interval], truth: Sequence[Interval]) -> int:
    """The MEGC 2020 baseline's true positives: every (spot, truth) pair at its IoU >= 0.5, not
    one to one."""
    return sum(megc2020_iou(s, t) >= IOU_THRESHOLD for s in spotted for t in truth)


def megc2020_precision(spotted: Sequence[Interval], truth: Sequence[Interval]) -> float:
    """The MEGC 2020 baseline's precision: its true positives over the spots (can exceed 1)."""
    return megc2020_tp(spotted, truth) / len(spotted) if spotted else 0.0


def all_pairs_tp(spotted: Sequence[Interval], truth: Sequence[Interval]) -> int:
    """The STRS reference script's true positives in one video: every pair at IoU >= 0.5."""
    return sum(iou(s, t) >= IOU_THRESHOLD for s in spotted for t in truth)


def strs_script_tp(videos: Sequence[tuple[Sequence[Interval], Sequence[Interval]]]) -> int:
    """The STRS reference script's true positives: every pair at IoU >= 0.5, over the videos
    that have ground truth (a video without truth adds nothing, not even its false spots)."""
    return sum(all_pairs_tp(spotted, truth) for spotted, truth in videos if truth)


def strs_script_uar(pairs: Sequence[tuple[str, str]]) -> float:
    """What the STRS script calls the analysis "UAR": the mean over emotions of *precision*
    (true positives over predictions of that emotion), over the emotions predicted."""
    emotions = sorted({p for p, _ in pairs})
    per = [sum(p == e == t for p, t in pairs) / sum(p == e for p, _ in pairs) for e in emotions]
    return sum(per) / len(per) if per else 0.0


class Rule(NamedTuple):
    """One evaluator's way of counting spots."""

    name: str
    says: str  # who scored this way, and how it departs from merjax's rule
    tp: Callable[[Sequence[Interval], Sequence[Interval]], int]  # one video, one kind
    skips_truthless: bool = False  # videos without ground truth are not counted at all

    def count(self, videos: Videos) -> dict[str, Counts]:
        """Per kind and ``overall`` (both kinds' counts together), the counts over ``videos``."""
        total = {k: Counts() for k in KINDS}
        for spotted, truth in videos:
            if self.skips_truthless and not truth:
                continue
            for kind in KINDS:
                s = [x for x in spotted if x.kind == kind]
                t = [x for x in truth if x.kind == kind]
                n = self.tp(s, t)
                total[kind] = total[kind] + Counts(n, len(s) - n, len(t) - n)
        return total | {"overall": sum(total.values(), Counts())}


RULES = {
    r.name: r
    for r in (
        Rule(
            "merjax",
            "MEGC's definition: IoU >= 0.5, one to one, the largest matching",
            lambda s, t: len(match(s, t)),
        ),
        Rule(
            "best-truth",
            "MEAN's and SOFTNet's evaluators: each spot tries only the truth it overlaps most",
            best_truth_only_tp,
        ),
        Rule(
            "megc2020",
            "the MEGC 2020 baseline: lengths as offset - onset, every pair above 0.5 a TP "
            "(precision can exceed 1)",
            megc2020_tp,
        ),
        Rule(
            "strs-script",
            "the MEGC 2023 STRS script: every pair above 0.5 a TP, videos without ground "
            "truth skipped",
            all_pairs_tp,
            skips_truthless=True,
        ),
    )
}

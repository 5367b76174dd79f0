"""The field's other spotting evaluators, written out from their documented behaviour.

Each function re-states one peer's counting rule (docs/spotting.md, "Scoring rules") on
merjax's ``Interval``; the tests put each beside merjax's maximum matching on the hand case
where the two disagree, so the docs' claims about every peer are checked, not asserted.
"""

from __future__ import annotations

from collections.abc import Sequence

from merjax.data.intervals import Interval
from merjax.spotting.metrics import iou


def best_truth_only_tp(spotted: Sequence[Interval], truth: Sequence[Interval]) -> int:
    """MEAN's and SOFTNet's matcher: each spot, in order, tries only the truth it overlaps most;
    a hit if that IoU >= 0.5 and the truth is not found yet."""
    found, tp = set(), 0
    for s in spotted:
        if not truth:
            break
        j = max(range(len(truth)), key=lambda k: iou(s, truth[k]))
        if iou(s, truth[j]) >= 0.5 and j not in found:
            found.add(j)
            tp += 1
    return tp


def megc2020_iou(a: Interval, b: Interval) -> float:
    """The MEGC 2020 baseline's IoU: lengths as ``offset - onset``, so a one-frame interval has
    length 0 and an IoU of 0 with everything."""
    inter = min(a.offset, b.offset) - max(a.onset, b.onset)
    union = (a.offset - a.onset) + (b.offset - b.onset) - inter
    return inter / union if inter > 0 and union > 0 else 0.0


def megc2020_precision(spotted: Sequence[Interval], truth: Sequence[Interval]) -> float:
    """The MEGC 2020 baseline's precision: every (spot, truth) pair at IoU >= 0.5 is a true
    positive, over the number of spots -- not one to one, so it can exceed 1."""
    tp = sum(megc2020_iou(s, t) >= 0.5 for s in spotted for t in truth)
    return tp / len(spotted) if spotted else 0.0


def strs_script_tp(videos: Sequence[tuple[Sequence[Interval], Sequence[Interval]]]) -> int:
    """The STRS reference script's true positives: every pair at IoU >= 0.5, over the videos
    that have ground truth (a video without truth adds nothing, not even its false spots)."""
    return sum(
        iou(s, t) >= 0.5 for spotted, truth in videos if truth for s in spotted for t in truth
    )


def strs_script_uar(pairs: Sequence[tuple[str, str]]) -> float:
    """What the STRS script calls the analysis "UAR": the mean over emotions of *precision*
    (true positives over predictions of that emotion), over the emotions predicted."""
    emotions = sorted({p for p, _ in pairs})
    per = [sum(p == e == t for p, t in pairs) / sum(p == e for p, _ in pairs) for e in emotions]
    return sum(per) / len(per) if per else 0.0

"""MEGC spotting scores and STRS against hand-computed cases."""

from __future__ import annotations

import pytest

from merjax.data.intervals import Interval
from merjax.spotting.metrics import iou, match, scores, strs, video_counts


def test_iou_counts_frames_inclusively():
    assert iou(Interval(0, 9), Interval(5, 14)) == pytest.approx(5 / 15)
    assert iou(Interval(0, 9), Interval(0, 4)) == 0.5  # 5 shared of 10: exactly the threshold
    assert iou(Interval(0, 4), Interval(5, 9)) == 0.0
    assert iou(Interval(3, 3), Interval(3, 3)) == 1.0
    with pytest.raises(ValueError, match="before its onset"):
        Interval(5, 4)
    with pytest.raises(ValueError, match="kind"):
        Interval(0, 4, "nano")


def test_a_spotted_interval_that_matches_two_ground_truths_counts_once():
    """[10, 19] has IoU 0.9 with both [10, 18] and [11, 19]: one true positive (the earlier
    ground truth), and the other ground truth is missed: P 1, R 1/2, F1 2/3."""
    spotted, truth = [Interval(10, 19)], [Interval(10, 18), Interval(11, 19)]
    assert match(spotted, truth) == [(0, 0)]
    s = scores([(spotted, truth)])["micro"]
    assert (s["tp"], s["fp"], s["fn"]) == (1, 0, 1)
    assert s["precision"] == 1.0 and s["recall"] == 0.5 and s["f1"] == pytest.approx(2 / 3)
    # A second spotted interval finds the other one: both are true positives.
    assert match([Interval(10, 19), Interval(11, 20)], truth) == [(0, 0), (1, 1)]


def test_empty_videos_and_videos_without_spots():
    """Video A: no ground truth, two spots (2 FP). Video B: three micro ground truths, no spots
    (3 FN). Video C: one hit at IoU exactly 0.5 and one macro miss. Micro: TP 1, FP 2, FN 3:
    P 1/3, R 1/4, F1 2/7. Macro: FN 1. Overall: TP 1, FP 2, FN 4: P 1/3, R 1/5, F1 1/4."""
    a = ([Interval(0, 4), Interval(20, 24)], [])
    b = ([], [Interval(0, 4), Interval(10, 14), Interval(20, 24)])
    c = ([Interval(0, 9)], [Interval(0, 4), Interval(30, 90, "macro")])
    assert video_counts(*a)["micro"].fp == 2 and video_counts(*b)["micro"].fn == 3
    s = scores([a, b, c])
    assert (s["micro"]["tp"], s["micro"]["fp"], s["micro"]["fn"]) == (1, 2, 3)
    assert s["micro"]["f1"] == pytest.approx(2 / 7)
    assert (s["macro"]["tp"], s["macro"]["fp"], s["macro"]["fn"]) == (0, 0, 1)
    assert s["macro"]["precision"] == 0.0 and s["macro"]["f1"] == 0.0
    assert (s["overall"]["tp"], s["overall"]["fp"], s["overall"]["fn"]) == (1, 2, 4)
    assert s["overall"]["precision"] == pytest.approx(1 / 3)
    assert s["overall"]["f1"] == pytest.approx(1 / 4)
    assert scores([])["overall"]["f1"] == 0.0


def test_kinds_are_matched_separately():
    """A spotted micro interval never matches a macro ground truth, however well it overlaps."""
    s = scores([([Interval(0, 9, "micro")], [Interval(0, 9, "macro")])])
    assert s["micro"]["fp"] == 1 and s["macro"]["fn"] == 1 and s["overall"]["tp"] == 0


def test_strs_by_hand():
    """Three micro ground truths (negative, negative, positive); three spots: two hits
    (recognised negative and negative) and one false positive. Spotting: TP 2, FP 1, FN 1: F1
    2/3. Analysis pairs (neg, neg) and (neg, pos): negative P 1/2, R 1; positive P 0, R 0 ->
    mean P 1/4, mean R 1/2, F1 1/3. STRS 2/9."""
    truth = [
        Interval(0, 9, emotion="negative"),
        Interval(20, 29, emotion="positive"),
        Interval(40, 49, emotion="negative"),
    ]
    spotted = [
        Interval(0, 9, emotion="negative"),
        Interval(20, 29, emotion="negative"),
        Interval(60, 69, emotion="negative"),
    ]
    r = strs([(spotted, truth)])
    assert r["spotting"]["f1"] == pytest.approx(2 / 3)
    assert r["analysis"]["precision"] == pytest.approx(1 / 4)
    assert r["analysis"]["recall"] == pytest.approx(1 / 2)
    assert r["analysis"]["f1"] == pytest.approx(1 / 3)
    assert r["strs"] == pytest.approx(2 / 9)
    assert strs([([], truth)])["strs"] == 0.0

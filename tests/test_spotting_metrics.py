"""MEGC spotting scores and STRS against hand-computed cases."""

from __future__ import annotations

import numpy as np
import peer_evaluators
import pytest

from merjax.data.intervals import Interval
from merjax.spotting.metrics import analysis_f1, iou, match, scores, strs, video_counts


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


# --------------------------------------------------------------------------- the matching


def _max_matching_size(eligible: list[list[bool]]) -> int:
    """The largest one-to-one set of eligible pairs, by trying every assignment (small cases)."""

    def best(i: int, used: frozenset) -> int:
        if i == len(eligible):
            return 0
        skip = best(i + 1, used)
        take = [
            1 + best(i + 1, used | {j}) for j, ok in enumerate(eligible[i]) if ok and j not in used
        ]
        return max([skip, *take])

    return best(0, frozenset())


def test_greedy_by_iou_loses_a_pair_that_the_maximum_matching_keeps():
    """Truths t0 = [0, 9] and t1 = [4, 13]. Spot s0 = [0, 10] has IoU 10/11 with t0 and 7/14 =
    0.5 with t1; spot s1 = [0, 8] has IoU 9/10 with t0 and 5/14 with t1. Greedy takes the best
    pair (s0, t0) first and then s1 has only t0, which is used: 1 pair. The maximum pairs s0
    with t1 and s1 with t0: 2 true positives."""
    truth = [Interval(0, 9), Interval(4, 13)]
    s0, s1 = Interval(0, 10), Interval(0, 8)
    assert iou(s0, truth[0]) > iou(s1, truth[0]) > 0.5 and iou(s1, truth[1]) < 0.5
    assert iou(s0, truth[1]) == 0.5
    assert match([s0, s1], truth) == [(0, 1), (1, 0)]
    assert scores([([s0, s1], truth)])["micro"]["tp"] == 2


def test_true_positives_equal_a_brute_force_maximum_matching():
    """2,000 random videos with up to 5 spots and 5 truths, crowded so that intervals overlap:
    the true positives are the size of the largest one-to-one matching, found by trying all."""
    rng = np.random.default_rng(0)
    for _ in range(2000):
        spotted, truth = [], []
        for out in (spotted, truth):
            for _ in range(rng.integers(0, 6)):
                onset = int(rng.integers(0, 30))
                out.append(Interval(onset, onset + int(rng.integers(0, 12))))
        eligible = [[iou(s, t) >= 0.5 for t in truth] for s in spotted]
        pairs = match(spotted, truth)
        assert len({i for i, _ in pairs}) == len({j for _, j in pairs}) == len(pairs)
        assert all(eligible[i][j] for i, j in pairs)
        assert len(pairs) == _max_matching_size(eligible)


# --------------------------------------------------------------------------- peer evaluators


def test_best_truth_only_matching_loses_a_pair_as_mean_and_softnet_do():
    """MEAN and SOFTNet let each spot try only the truth it overlaps most: in the greedy case
    above both spots' best truth is t0, so they count one true positive where MEGC's one-to-one
    rule allows two."""
    truth = [Interval(0, 9), Interval(4, 13)]
    spotted = [Interval(0, 10), Interval(0, 8)]
    assert peer_evaluators.best_truth_only_tp(spotted, truth) == 1
    assert len(match(spotted, truth)) == 2


def test_the_megc2020_baseline_is_not_one_to_one_and_misses_one_frame_intervals():
    """The MEGC 2020 baseline counts every pair: one spot [0, 12] over truths [0, 9] and [3, 12]
    (IoU 0.75 with both, by its lengths) makes 2 true positives of 1 spot, precision 2.0;
    merjax counts 1 (precision 1). A one-frame spot on the same one-frame truth has IoU 0
    there and 1 here."""
    truth, spot = [Interval(0, 9), Interval(3, 12)], [Interval(0, 12)]
    assert peer_evaluators.megc2020_precision(spot, truth) == 2.0
    s = scores([(spot, truth)])["micro"]
    assert s["tp"] == 1 and s["precision"] == 1.0
    assert peer_evaluators.megc2020_iou(Interval(7, 7), Interval(7, 7)) == 0.0
    assert iou(Interval(7, 7), Interval(7, 7)) == 1.0


def test_the_strs_script_counts_every_pair_skips_videos_without_truth_and_means_precision():
    """The STRS reference script: the spot over two truths above counts twice; a video with no
    truth and three spots adds nothing (merjax: 3 false positives). Its analysis "UAR" is the
    mean precision over predicted emotions: pairs (negative, negative) twice and (negative,
    positive) give 2/3, where merjax's mean recall over every emotion named is (1 + 0) / 2."""
    both = ([Interval(0, 12)], [Interval(0, 9), Interval(3, 12)])
    empty = ([Interval(50, 59), Interval(70, 79), Interval(90, 99)], [])
    assert peer_evaluators.strs_script_tp([both, empty]) == 2
    s = scores([both, empty])["micro"]
    assert (s["tp"], s["fp"], s["fn"]) == (1, 3, 1)
    pairs = [("negative", "negative"), ("negative", "negative"), ("negative", "positive")]
    assert peer_evaluators.strs_script_uar(pairs) == pytest.approx(2 / 3)
    assert analysis_f1(pairs)["recall"] == pytest.approx(1 / 2)

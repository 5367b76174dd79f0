"""A learned spotter in the manner of SOFTNet (Liong et al., FG 2021: a shallow three-stream
network on optical flow whose score, thresholded and peak-picked, spots intervals), trained
leave-one-subject-out with merjax's vmapped trainer.

Each frame t of a video is one item: the flows from frame t - k to t for the micro and the macro
k, each as (Vx, Vy, optical strain) maps with the eyes zeroed (:mod:`merjax.spotting.signal`),
six channels. Its label says whether an interval centred on t, ``[t - k, t + k]``, would be a
true positive (IoU >= 0.5 with a ground truth of that kind): 1 micro, 2 macro, 0 neither -- so
the network is taught the very frames where spotting should put a peak (SOFTNet regresses a
pseudo-label of the same idea). The network is STSTNet's architecture (the field's shallow
three-stream baseline) with six input channels and three outputs. Positives are rare (a few in a
hundred frames): they are repeated in the training items until they are about a fifth of them.
Every ``stride``-th frame is an item; the held-out scores (the softmax of the micro and macro
classes, averaged over seeds) are interpolated back to every frame and smoothed over k/2
frames; the spotter value (:func:`merjax.spotting.spotters.learned`) peak-picks them as the
training-free signal is, the threshold fixed beforehand -- never chosen on test subjects.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np

from merjax import models, train
from merjax.data.intervals import KINDS, Interval
from merjax.spotting.metrics import iou
from merjax.train import Execution, TrainConfig


@dataclasses.dataclass(frozen=True)
class LearnedSettings:
    """The learned spotter's inputs and training."""

    feature_size: int = 16  # side of the (Vx, Vy, strain) maps
    stride: int = 2  # every stride-th frame is an item
    positive_share: float = 0.2  # positives repeated up to this share of the training items
    # p of the relative threshold over the network's scores, mean + p (max - mean) per video:
    # class probabilities have no noise floor of their own (the motion under them has one).
    threshold: float = 0.3
    train: TrainConfig = TrainConfig(
        optimizer="adam",
        learning_rate=1e-3,
        batch_size=128,
        epochs=8,
        weight_decay=0.0,
        shuffle="every-epoch",
        drop_last=False,
        bn_stats="moving",
        augment=False,
    )

    def __post_init__(self):
        if not isinstance(self.feature_size, int) or self.feature_size < 4:
            raise ValueError(f"feature_size must be an integer >= 4, got {self.feature_size!r}")
        if not isinstance(self.stride, int) or self.stride < 1:
            raise ValueError(f"stride must be an integer >= 1, got {self.stride!r}")
        if not 0.0 < self.positive_share < 1.0:
            raise ValueError(f"positive_share must be in (0, 1), got {self.positive_share!r}")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold p must be in [0, 1], got {self.threshold!r}")


def labels_of(n: int, numbers: Sequence[int], truth: Sequence[Interval], ks: dict) -> np.ndarray:
    """``[n]`` item labels of a video's frames: 1 (2) when ``[t - k, t + k]`` at the micro
    (macro) k would match a micro (macro) ground truth, else 0; micro wins a tie."""
    numbers = list(numbers)
    out = np.zeros(n, np.int32)
    for code, kind in ((2, "macro"), (1, "micro")):
        k = ks[kind]
        gts = [g for g in truth if g.kind == kind]
        for t in range(n):
            window = Interval(numbers[max(0, t - k)], numbers[min(n - 1, t + k)], kind)
            if any(iou(window, g) >= 0.5 for g in gts):
                out[t] = code
    return out


def _balanced(labels: np.ndarray, share: float) -> np.ndarray:
    """Item indices with positives repeated until they are about ``share`` of the items."""
    pos, neg = np.flatnonzero(labels > 0), np.flatnonzero(labels == 0)
    if not len(pos) or not len(neg):
        return np.arange(len(labels))
    want = share / (1 - share) * len(neg)
    reps = int(max(1, min(50, round(want / len(pos)))))
    return np.sort(np.concatenate([neg, np.repeat(pos, reps)]))


def held_out_scores(
    features: Sequence[np.ndarray],
    numbers: Sequence[Sequence[int]],
    truths: Sequence[Sequence[Interval]],
    subjects: Sequence[str],
    ks: Sequence[dict],
    folds: Sequence[Sequence[str]],
    settings: LearnedSettings = LearnedSettings(),
    execution: Execution = Execution(),
    *,
    progress: Callable[[str], None] | None = None,
    workdir=None,
) -> tuple[list[dict[str, np.ndarray]], dict]:
    """Trains the spotter over the videos (``features[i]``: ``[F_i, f, f, 6]``, the micro and
    macro maps side by side), one run per fold (``folds``: groups of subjects, each held out by
    its run; all folds at once), and scores every frame of each video with the run that did not
    see its subject. Returns per video its scores by kind (``[F_i]``, smoothed, interpolated to
    every frame) and a training summary."""
    items, item_labels, item_subjects, owner = [], [], [], []
    for v, (feats, nums, truth) in enumerate(zip(features, numbers, truths, strict=True)):
        labels = labels_of(len(feats), nums, truth, ks[v])
        at = np.arange(0, len(feats), settings.stride)
        items.append(feats[at])
        item_labels.append(labels[at])
        item_subjects += [subjects[v]] * len(at)
        owner.append((v, at))
    x = np.concatenate(items)
    y = np.concatenate(item_labels)
    subj = np.asarray(item_subjects)
    # Positives are balanced among the items some run trains on; items every run holds out
    # (unlabelled test videos, held out by the one run of a challenge) are only predicted.
    never_trained = np.isin(subj, list(set.intersection(*(set(map(str, g)) for g in folds))))
    trained_idx = np.flatnonzero(~never_trained)
    keep = np.sort(
        np.concatenate(
            [
                trained_idx[_balanced(y[trained_idx], settings.positive_share)],
                np.flatnonzero(never_trained),
            ]
        )
    )
    # Every item is predicted (held out), but positives appear several times in training: the
    # duplicates' predictions are the same items', so only the first of each is read back.
    first = np.searchsorted(keep, np.arange(len(y)))
    model = models.build("ststnet", 1, x.shape[-1], len(KINDS) + 1)
    result = train.train_loso(
        model,
        x[keep],
        None,
        y[keep],
        subj[keep].tolist(),
        settings.train,
        execution,
        groups=[list(g) for g in folds],
        progress=progress,
        workdir=workdir,
    )
    logits = result.logits[:, first]  # [S, N, 3]
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs = (probs / probs.sum(-1, keepdims=True)).mean(0)
    out, start = [], 0
    for v, at in owner:
        n = len(features[v])
        p_items = probs[start : start + len(at)]
        start += len(at)
        scores = {}
        for c, kind in enumerate(KINDS, start=1):
            full = np.interp(np.arange(n), at, p_items[:, c])
            w = max(1, ks[v][kind] // 2)
            scores[kind] = np.convolve(full, np.ones(w) / w, mode="same")
        out.append(scores)
    summary = {
        "items": int(len(y)),
        "positives": {kind: int((y == c).sum()) for c, kind in enumerate(KINDS, start=1)},
        "training_items": int(len(keep)),
        "final_train_loss": float(np.nanmean(result.losses[:, -1])),
        "seconds": round(result.seconds, 1),
    }
    return out, summary

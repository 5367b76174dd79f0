"""Metrics of pooled LOSO predictions (MEGC conventions) and feature similarity.

UF1 and UAR follow MEGC 2018/2019: predictions of all folds are pooled first, then per-class F1
(or recall) is computed from the pooled counts and averaged over classes. Which classes:

- UF1 averages over the classes present in the ground truth *or* the predictions. A class that
  is predicted but never true has F1 0 and counts in the mean, as in MEGC's formula and the
  evaluators of STSTNet, MEAN and MEB; leaving it out would inflate UF1 in every subset that
  lacks a class (a subject-bootstrap resample, one database of a composite).
- UAR averages recall over the classes present in the ground truth (a class never true has no
  recall).
- No samples: accuracy, UF1 and UAR are all NaN.

docs/protocol.md ("Scores") says how other evaluators differ.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def confusion_matrix(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> np.ndarray:
    """``[K, K]`` counts; rows are true classes, columns predicted ones."""
    labels, preds = np.asarray(labels, int), np.asarray(preds, int)
    if labels.shape != preds.shape:
        raise ValueError(f"labels {labels.shape} and predictions {preds.shape} differ in shape")
    for name, v in (("labels", labels), ("predictions", preds)):
        bad = (v < 0) | (v >= num_classes)
        if bad.any():  # np.add.at would wrap a -1 (a sample in no fold) into the last class
            raise ValueError(
                f"{int(bad.sum())} {name} outside classes 0..{num_classes - 1}, e.g. {v[bad][0]}"
            )
    cm = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(cm, (labels, preds), 1)
    return cm


def accuracy(labels: np.ndarray, preds: np.ndarray) -> float:
    labels, preds = np.asarray(labels), np.asarray(preds)
    return float((labels == preds).mean()) if len(labels) else float("nan")


def uf1(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> float:
    """Unweighted (macro) F1 over the classes present in ``labels`` or ``preds``, from pooled
    counts."""
    return float(_scores(confusion_matrix(labels, preds, num_classes))["uf1"])


def uar(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> float:
    """Unweighted average recall over the classes present in ``labels``."""
    return float(_scores(confusion_matrix(labels, preds, num_classes))["uar"])


def _scores(cm_BxKxK: np.ndarray) -> dict[str, np.ndarray]:
    """accuracy, UF1 and UAR of confusion matrices ``[..., K, K]`` (rows: true classes): F1 and
    recall per class from the pooled counts, averaged over the classes of the module's rules
    (NaN where a matrix counts no sample)."""
    cm = cm_BxKxK.astype(float)
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    actual, predicted = cm.sum(-1), cm.sum(-2)
    true_class, seen_class = actual > 0, (actual > 0) | (predicted > 0)
    total = actual.sum(-1)
    denom = actual + predicted  # 2 tp + fp + fn
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    recall = np.divide(tp, actual, out=np.zeros_like(tp), where=true_class)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "accuracy": np.where(total > 0, tp.sum(-1) / total, np.nan),
            "uf1": np.where(total > 0, f1.sum(-1) / seen_class.sum(-1), np.nan),
            "uar": np.where(total > 0, recall.sum(-1) / true_class.sum(-1), np.nan),
        }


def bootstrap_ci(
    labels: np.ndarray,
    preds: np.ndarray,
    subjects: Sequence[str],
    num_classes: int,
    *,
    metric: str = "uf1",
    n: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """A ``level`` interval of ``metric`` ("uf1", "uar" or "accuracy") on pooled held-out
    predictions, by resampling *subjects* with replacement ``n`` times (seeded).

    Subjects, not samples: a subject's samples share a face and a recording, so they are not
    independent, and resampling them one by one understates the uncertainty of a score on 20-30
    subjects (pass one subject per sample to get that narrower interval). ``preds`` is ``[N]``,
    or ``[S, N]`` for S training seeds: each resample then scores the mean over seeds (an
    interval for the seed-averaged score). The metric is recomputed from the resample's pooled
    counts, as the MEGC definitions pool (a subject drawn twice counts twice). Percentile
    interval."""
    labels = np.asarray(labels, int)
    preds = np.asarray(preds, int)
    preds_SxN = preds[None] if preds.ndim == 1 else preds
    if preds_SxN.shape[1:] != labels.shape:
        raise ValueError(f"labels {labels.shape} and predictions {preds.shape} do not match")
    if metric not in ("uf1", "uar", "accuracy"):
        raise ValueError(f"metric must be 'uf1', 'uar' or 'accuracy', got {metric!r}")
    names, which = np.unique(np.asarray(subjects), return_inverse=True)
    if len(which) != len(labels):
        raise ValueError(f"{len(which)} subjects for {len(labels)} samples")
    # Per seed and subject, its confusion counts: a resample's pooled counts are their sum.
    cm_SxUxKxK = np.zeros((len(preds_SxN), len(names), num_classes, num_classes), np.int64)
    for s, p in enumerate(preds_SxN):
        np.add.at(cm_SxUxKxK[s], (which, labels, p), 1)
    rng = np.random.default_rng(seed)
    # How often each subject is drawn: a draw of len(names) subjects with replacement.
    counts_BxU = rng.multinomial(len(names), np.full(len(names), 1 / len(names)), size=n)
    pooled_BxSxKxK = np.einsum("bu,sukl->bskl", counts_BxU, cm_SxUxKxK)
    values = _scores(pooled_BxSxKxK)[metric].mean(-1)
    lo, hi = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def majority_baseline(labels: np.ndarray) -> float:
    """Accuracy of always predicting the most frequent class (47.0% on MEGC 2018)."""
    labels = np.asarray(labels, int)
    return float(np.bincount(labels).max() / len(labels)) if len(labels) else float("nan")


def summarize(labels, preds, num_classes: int) -> dict:
    """accuracy, uf1, uar, n, majority baseline and the confusion matrix (as lists)."""
    return {
        "accuracy": accuracy(labels, preds),
        "uf1": uf1(labels, preds, num_classes),
        "uar": uar(labels, preds, num_classes),
        "n": int(len(labels)),
        "majority": majority_baseline(labels),
        "confusion": confusion_matrix(labels, preds, num_classes).tolist(),
    }


def by_group(labels, preds, groups: Sequence[str], num_classes: int) -> dict[str, dict]:
    """:func:`summarize` for each group (e.g. dataset) and for everything (``"all"``)."""
    labels, preds, groups = np.asarray(labels), np.asarray(preds), np.asarray(groups)
    out = {"all": summarize(labels, preds, num_classes)}
    for g in sorted(set(groups.tolist())):
        keep = groups == g
        out[g] = summarize(labels[keep], preds[keep], num_classes)
    return out


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value) over seeds."""
    v = np.asarray(values, float)
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def cosine_similarity(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """Pairwise cosine similarity of rows: ``[N, D] x [M, D] -> [N, M]``."""
    a = np.asarray(a, np.float64).reshape(len(a), -1)
    b = a if b is None else np.asarray(b, np.float64).reshape(len(b), -1)
    na = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    nb = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return na @ nb.T


def class_similarity(features: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """``[K, K]`` mean cosine similarity between samples of class i and class j (the paper's
    Tables 5-7); the diagonal leaves out each sample's similarity with itself."""
    labels = np.asarray(labels, int)
    sim = cosine_similarity(features)
    out = np.full((num_classes, num_classes), np.nan)
    for i in range(num_classes):
        for j in range(num_classes):
            block = sim[np.ix_(labels == i, labels == j)]
            if i == j:
                n = block.shape[0]
                out[i, j] = (block.sum() - np.trace(block)) / (n * (n - 1)) if n > 1 else np.nan
            elif block.size:
                out[i, j] = block.mean()
    return out


def best_test_epoch_predictions(
    eval_preds_ExN: np.ndarray,
    labels: np.ndarray,
    subjects: Sequence[Sequence[int]],
    num_classes: int,
    metric: str = "accuracy",
) -> tuple[np.ndarray, np.ndarray]:
    """NOT A VALID RESULT: for each held-out subject, its predictions at the evaluated epoch where
    that subject's own test samples scored best by ``metric`` ("accuracy", "uf1" or "uar"),
    pooled; and the epoch index chosen per subject.

    Picking an epoch per held-out subject by its test score selects on the test set. Several
    published micro-expression results were obtained that way; this computes what that practice
    would report, so that the inflation can be shown beside an honest fixed-epoch result.
    ``eval_preds_ExN`` holds the pooled held-out predictions at each evaluated epoch (-1 where a
    sample was in no fold), ``subjects`` the sample indices of each held-out subject. Ties go to
    the earliest epoch. By accuracy the pooled score can never fall below that of any one of the
    epochs (each subject's correct count is at least that epoch's); by UF1 or UAR, which pool
    counts over subjects, it usually lies above but need not."""
    if metric not in ("accuracy", "uf1", "uar"):
        raise ValueError(f"metric must be accuracy, uf1 or uar, not {metric!r}")
    score = {
        "accuracy": lambda y, p: accuracy(y, p),
        "uf1": lambda y, p: uf1(y, p, num_classes),
        "uar": lambda y, p: uar(y, p, num_classes),
    }[metric]
    eval_preds_ExN, labels = np.asarray(eval_preds_ExN), np.asarray(labels)
    out = np.full(labels.shape, -1, int)
    chosen = np.zeros(len(subjects), int)
    for f, idx in enumerate(subjects):
        idx = np.asarray(idx, int)
        if not len(idx):
            continue
        scores = [score(labels[idx], e[idx]) for e in eval_preds_ExN]
        chosen[f] = int(np.argmax(scores))
        out[idx] = eval_preds_ExN[chosen[f], idx]
    return out, chosen


def softmax(logits_NxK: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Probabilities ``[N, K]`` of logits divided by ``temperature`` (float64, stable)."""
    z = np.asarray(logits_NxK, np.float64) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def expected_calibration_error(probs_NxK: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """ECE: the sample-weighted mean, over equal-width confidence bins, of |accuracy - mean
    confidence| of the top class (Guo et al., 2017). 0 for a model whose confidence is its
    accuracy; a model that says 100% and is right 70% of the time scores 0.3."""
    probs, labels = np.asarray(probs_NxK, np.float64), np.asarray(labels, int)
    if not len(labels):
        return float("nan")
    conf, pred = probs.max(1), probs.argmax(1)
    which = np.minimum((conf * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            total += inside.sum() * abs(
                (pred[inside] == labels[inside]).mean() - conf[inside].mean()
            )
    return float(total / len(labels))


def fit_temperature(logits_NxK: np.ndarray, labels: np.ndarray) -> float:
    """Temperature scaling (Guo et al., 2017): the T > 0 that minimises the negative
    log-likelihood of ``softmax(logits / T)`` on held-out samples. One parameter, so it changes
    the confidence and never the predicted class. The NLL is convex in 1/T: a bracketed golden
    section search over log T in [1/100, 100] finds it without an optimiser's settings."""
    logits, labels = np.asarray(logits_NxK, np.float64), np.asarray(labels, int)
    if not len(labels):
        raise ValueError("fit_temperature needs held-out samples")
    rows = np.arange(len(labels))

    def nll(log_t: float) -> float:
        return float(-np.log(softmax(logits, np.exp(log_t))[rows, labels] + 1e-300).mean())

    lo, hi = np.log(1e-2), np.log(1e2)
    golden = (np.sqrt(5) - 1) / 2
    a, b = hi - golden * (hi - lo), lo + golden * (hi - lo)
    fa, fb = nll(a), nll(b)
    for _ in range(80):  # the bracket shrinks by 0.618 each step: far below float resolution
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - golden * (hi - lo)
            fa = nll(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + golden * (hi - lo)
            fb = nll(b)
    return float(np.exp((lo + hi) / 2))

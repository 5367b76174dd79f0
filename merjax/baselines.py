"""Simple reference classifiers that put network accuracies in context."""

from __future__ import annotations

import numpy as np


def majority_class(labels_train: np.ndarray, num_test: int) -> np.ndarray:
    """Predicts the most frequent training label for every test sample."""
    return np.full(num_test, np.bincount(labels_train).argmax())


def nearest_class_mean_loso(
    features: np.ndarray, labels: np.ndarray, subjects: np.ndarray, num_classes: int
) -> np.ndarray:
    """Leave-one-subject-out predictions of a nearest-class-mean classifier.

    ``features`` ``[N, D]`` are standardised with the training fold's statistics; each held-out
    subject's samples go to the class whose training mean is nearest (Euclidean). Classes absent
    from a fold's training set are never predicted.
    """
    features = np.asarray(features, np.float64).reshape(len(labels), -1)
    labels, subjects = np.asarray(labels), np.asarray(subjects)
    pred = np.empty(len(labels), int)
    for subject in np.unique(subjects):
        test = subjects == subject
        x, y = features[~test], labels[~test]
        mu, sd = x.mean(0), x.std(0) + 1e-8
        x = (x - mu) / sd
        means = np.stack(
            [
                x[y == c].mean(0) if (y == c).any() else np.full(x.shape[1], np.inf)
                for c in range(num_classes)
            ]
        )
        t = (features[test] - mu) / sd
        d = ((t[:, None, :] - means[None]) ** 2).sum(-1)
        pred[test] = d.argmin(1)
    return pred

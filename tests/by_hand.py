"""Reference computations written out in NumPy, for tests that check merjax against them.

Each is the documented rule, computed without merjax's code paths (no Flax modules, no optax):
a test that compares merjax with these fails when merjax computes something else.
"""

from __future__ import annotations

import numpy as np

BN_EPSILON = 1e-5  # MATLAB's batchNormalizationLayer Epsilon default


def conv_same(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """``[N, H, W, C] * [k, k, C, F]`` + bias, stride 1, SAME padding (k odd), looping over taps."""
    k = kernel.shape[0]
    p = k // 2
    xp = np.pad(np.asarray(x, np.float64), ((0, 0), (p, p), (p, p), (0, 0)))
    n, h, w, _ = x.shape
    out = np.zeros((n, h, w, kernel.shape[-1]))
    for dy in range(k):
        for dx in range(k):
            out += xp[:, dy : dy + h, dx : dx + w, :] @ np.asarray(kernel[dy, dx], np.float64)
    return out + np.asarray(bias, np.float64)


def batch_moments(y: np.ndarray, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and biased variance of ``[N, H, W, F]`` over the samples ``mask`` keeps."""
    if mask is not None:
        y = y[np.asarray(mask, bool)]
    flat = y.reshape(-1, y.shape[-1])
    return flat.mean(0), flat.var(0)


def toy_forward(
    params: dict, stats: dict, x: np.ndarray, normalise=None
) -> tuple[np.ndarray, np.ndarray]:
    """The tests' ToyCNN (tests/toy.py) in eval mode: conv 3x3 SAME -> BatchNorm with ``stats``
    -> ReLU -> spatial mean (the features) -> dense (the logits). Returns ``(logits, features)``."""
    if normalise is not None:
        x = normalise(x)
    c = params["conv1"]["conv"]
    y = conv_same(x, c["kernel"], c["bias"])
    bn, st = params["conv1"]["bn"], stats["conv1"]["bn"]
    y = (y - st["mean"]) / np.sqrt(np.asarray(st["var"], np.float64) + BN_EPSILON) * bn[
        "scale"
    ] + bn["bias"]
    feats = np.maximum(y, 0).mean(axis=(1, 2))
    return feats @ np.asarray(params["fc"]["kernel"], np.float64) + params["fc"]["bias"], feats

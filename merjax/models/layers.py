"""Building blocks shared by the networks: conv + BatchNorm (+ ReLU) with an optional sample mask.

The mask (``[N]`` booleans) marks which samples of a batch are real. BatchNorm statistics are
computed over the real samples only, so a static-shape batch padded with other folds' samples
(or with nothing) trains exactly as the real samples alone would.
"""

from __future__ import annotations

import flax.linen as nn
import jax

# MATLAB's batchNormalizationLayer defaults: epsilon 1e-5; running statistics decay 0.1.
BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9


class ConvBN(nn.Module):
    """Conv (with bias) -> BatchNorm (scale, offset) -> optional ReLU."""

    features: int
    kernel: int
    stride: int = 1
    padding: str | tuple[tuple[int, int], tuple[int, int]] = "SAME"
    relu: bool = True

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool, mask: jax.Array | None = None) -> jax.Array:
        x = nn.Conv(
            self.features,
            (self.kernel, self.kernel),
            strides=(self.stride, self.stride),
            padding=self.padding,
            use_bias=True,
            name="conv",
        )(x)
        bn_mask = None if mask is None else mask.reshape(mask.shape + (1,) * (x.ndim - mask.ndim))
        x = nn.BatchNorm(
            use_running_average=not train,
            momentum=BN_MOMENTUM,
            epsilon=BN_EPSILON,
            name="bn",
        )(x, mask=None if bn_mask is None else jax.numpy.broadcast_to(bn_mask, x.shape))
        return nn.relu(x) if self.relu else x


def check_input(x: jax.Array, in_channels: int, name: str) -> None:
    """Raises a clear error for an input that is not ``[N, H, W, in_channels]``."""
    if x.ndim != 4:
        raise ValueError(f"{name} expects inputs [N, H, W, C]; got shape {x.shape}")
    if x.shape[-1] != in_channels:
        raise ValueError(
            f"{name} was built for {in_channels} input channel(s) but got {x.shape[-1]} "
            f"(input shape {x.shape}); build it with in_channels={x.shape[-1]} or change the representation"
        )

"""The paper's future work: the shallow family built from lighter blocks.

Both keep :class:`~merjax.models.shallow.ShallowCNN`'s depth (1-4 layers), widths (16 filters
per input channel, doubling per layer), kernel sizes (5x5 first, then 3x3), pooling rule and
Dense head, so each cell compares with the paper's at the same input; only the blocks change:

- :class:`SeparableCNN` (MobileNet v1, Howard et al. 2017): each conv becomes a depthwise
  ``k x k`` conv + BatchNorm + ReLU, then a pointwise ``1 x 1`` conv + BatchNorm + ReLU.
- :class:`ShuffleCNN` (ShuffleNet v2, Ma et al. 2018): a plain first conv (a channel split needs
  channels to split), then per layer the unit ShuffleNet v2 uses where the width doubles: two
  branches of half the output width -- depthwise 3x3 + BN, pointwise + BN + ReLU; and pointwise
  + BN + ReLU, depthwise 3x3 + BN, pointwise + BN + ReLU -- concatenated, then a channel shuffle
  of two groups. (Without stride: the paper's family keeps the resolution until its one pool.)
  With ``groups`` > 1 (``vy-3cl-shuffle-g4``) the units' pointwise convs are ShuffleNet v1's
  (Zhang et al. 2018) pointwise group convolutions, each followed by a shuffle of that many
  groups; v2 dropped them for their memory traffic, which the search can now weigh.

The Dense head holds most parameters in every cell (filters x 32 x 32 inputs on 64x64 frames),
as in the paper's own networks.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import numpy as np

from merjax.models.layers import (
    ConvBN,
    DepthwiseConv,
    GroupPointwise,
    batch_norm,
    check_input,
    dense,
)


def channel_shuffle(x_NHWC: jax.Array, groups: int, *, as_gather: bool = False) -> jax.Array:
    """ShuffleNet's channel shuffle: channels seen as ``[groups, C / groups]``, transposed. A
    permutation; ``channel_shuffle(channel_shuffle(x, g), C // g)`` is ``x``. ``as_gather``: the
    same permutation as one gather of channels, which ONNX runtimes run faster than the
    reshape-transpose (and XLA:CPU slower)."""
    c = x_NHWC.shape[-1]
    if c % groups:
        raise ValueError(f"{c} channels do not split into {groups} groups")
    if as_gather:
        return jax.numpy.take(x_NHWC, np.arange(c).reshape(groups, c // groups).T.ravel(), axis=-1)
    x = x_NHWC.reshape(*x_NHWC.shape[:-1], groups, c // groups)
    return x.swapaxes(-1, -2).reshape(x_NHWC.shape)


class _DepthwiseBN(nn.Module):
    kernel_size: int
    relu: bool
    conv_impl: str
    weight_init: str

    @nn.compact
    def __call__(self, x, *, train: bool, mask=None):
        x = DepthwiseConv(self.kernel_size, 1, self.conv_impl, self.weight_init, name="conv")(
            x, train=train
        )
        x = batch_norm(x, mask, train=train, name="bn")
        return nn.relu(x) if self.relu else x


class _GroupPointwiseBN(nn.Module):
    features: int
    groups: int
    conv_impl: str
    weight_init: str

    @nn.compact
    def __call__(self, x, *, train: bool, mask=None):
        conv = GroupPointwise(
            self.features, self.groups, self.conv_impl, self.weight_init, name="conv"
        )
        x = conv(x, train=train)
        x = batch_norm(x, mask, train=train, name="bn")
        # ShuffleNet v1: a shuffle after each grouped conv, so the next one's groups each read
        # every group of this one.
        return channel_shuffle(nn.relu(x), self.groups, as_gather=self.conv_impl == "lax")


def _pointwise(features: int, conv_impl: str, weight_init: str, name: str, groups: int = 1):
    if groups > 1:
        return _GroupPointwiseBN(features, groups, conv_impl, weight_init, name=name)
    return ConvBN(features, 1, conv_impl=conv_impl, weight_init=weight_init, name=name)


class _Family(nn.Module):
    """What the families share with ShallowCNN: widths, kernel sizes, pooling, Dense."""

    num_layers: int
    in_channels: int
    num_classes: int = 5
    base_filters: int | None = None
    conv_impl: str = "auto"
    weight_init: str = "matlab"

    def layer(self, i: int, x, features: int, kernel_size: int, *, train: bool, mask):
        raise NotImplementedError

    @nn.compact
    def __call__(self, x, *, train: bool = False, mask=None, return_features: bool = False):
        """``x``: ``[N, H, W, C]`` flow maps; returns logits ``[N, K]`` and features ``[N, D]``."""
        check_input(x, self.in_channels, f"{type(self).__name__}({self.num_layers} CL)")
        base = self.base_filters or 16 * self.in_channels
        for i in range(self.num_layers):
            x = self.layer(i, x, base * 2**i, 5 if i == 0 else 3, train=train, mask=mask)
        window = (2, 2) if self.num_layers <= 2 else (3, 3)
        x = nn.max_pool(x, window_shape=window, strides=(2, 2), padding="VALID")
        features = x.reshape(x.shape[0], -1)
        logits = dense(self.num_classes, features.shape[-1], self.weight_init, "fc")(features)
        return (logits, features) if return_features else logits


class SeparableCNN(_Family):
    """1-4 depthwise-separable layers (MobileNet v1), one max-pool, Dense."""

    def layer(self, i, x, features, kernel_size, *, train, mask):
        x = _DepthwiseBN(kernel_size, True, self.conv_impl, self.weight_init, name=f"dw{i + 1}")(
            x, train=train, mask=mask
        )
        pw = _pointwise(features, self.conv_impl, self.weight_init, f"pw{i + 1}")
        return pw(x, train=train, mask=mask)


class ShuffleCNN(_Family):
    """A plain first conv, then ShuffleNet v2's width-doubling unit per layer; max-pool, Dense.
    ``groups`` > 1: the units' pointwise convs in that many groups, each followed by a channel
    shuffle of as many (ShuffleNet v1's pointwise group convolution)."""

    groups: int = 1

    def layer(self, i, x, features, kernel_size, *, train, mask):
        impl, init, g = self.conv_impl, self.weight_init, self.groups
        if i == 0:
            conv = ConvBN(features, kernel_size, conv_impl=impl, weight_init=init, name="conv1")
            return conv(x, train=train, mask=mask)
        half = features // 2
        a = _DepthwiseBN(3, False, impl, init, name=f"unit{i + 1}_a_dw")(x, train=train, mask=mask)
        a = _pointwise(half, impl, init, f"unit{i + 1}_a_pw", g)(a, train=train, mask=mask)
        b = _pointwise(half, impl, init, f"unit{i + 1}_b_pw1", g)(x, train=train, mask=mask)
        b = _DepthwiseBN(3, False, impl, init, name=f"unit{i + 1}_b_dw")(b, train=train, mask=mask)
        b = _pointwise(half, impl, init, f"unit{i + 1}_b_pw2", g)(b, train=train, mask=mask)
        # lax, the formulation ONNX export uses (edge), shuffles as a gather.
        return channel_shuffle(jax.numpy.concatenate([a, b], axis=-1), 2, as_gather=impl == "lax")


__all__ = ["SeparableCNN", "ShuffleCNN", "channel_shuffle"]

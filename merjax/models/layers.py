"""Building blocks shared by the networks: a convolution in two formulations, and conv +
BatchNorm (+ ReLU) with an optional sample mask.

The mask (``[N]`` booleans) marks which samples of a batch are real. BatchNorm statistics are
computed over the real samples only, so a static-shape batch padded with other folds' samples
(or with nothing) trains exactly as the real samples alone would.

:class:`Conv` holds exactly ``nn.Conv``'s parameters (``kernel`` ``[k, k, Cin, F]``, ``bias``
``[F]``, same initialisers, same names), so parameter counts, checkpoints and model folders do not
depend on how it computes:

- ``"lax"``: ``lax.conv_general_dilated``, as ``nn.Conv``;
- ``"im2col"``: pad, concatenate the k*k shifted (strided) slices along channels into
  ``[N, Ho, Wo, k*k*Cin]``, and one ``einsum`` with the kernel reshaped to ``[k*k*Cin, F]``.
  XLA:CPU runs ``lax.conv`` slowly when it is vmapped over per-run weights (a grouped conv) and
  when its weights are carried by a loop; one matrix product has neither problem
  (benchmarks/RESULTS.md). ``lax.conv_general_dilated_patches`` is not used: on CPU it is itself
  a convolution, and slower.
- ``"auto"``: chosen by measurement (:func:`resolve_conv_impl`): on CPU im2col when training (the
  gradient programs, where lax.conv is slow) and lax.conv for forward passes (prediction,
  inference: faster there); lax.conv on other backends until a GPU measurement says otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

CONV_IMPLS = ("auto", "lax", "im2col")
INITS = ("matlab", "pytorch")

# How weights and biases start. "matlab": MATLAB R2018a's convolution2dLayer and
# fullyConnectedLayer, which the paper trained with -- weights drawn from a normal distribution
# with mean 0 and standard deviation 0.01, biases zero. (R2019a changed the default to Glorot; its
# release notes name 'narrow-normal', "a normal distribution with zero mean and standard
# deviation 0.01", as the way to reproduce the earlier default; batchNormalizationLayer starts
# with Scale 1 and Offset 0 in every release.) "pytorch": torch.nn.Conv2d / nn.Linear, for
# baselines released in PyTorch (STSTNet) -- weights and biases uniform in +-1/sqrt(fan_in).
MATLAB_WEIGHT_STD = 0.01


def _pytorch_uniform(fan_in: int):
    bound = 1.0 / max(fan_in, 1) ** 0.5
    return lambda key, shape, dtype=jnp.float32: jax.random.uniform(
        key, shape, dtype, -bound, bound
    )


def initializers(init: str, fan_in: int):
    """``(kernel_init, bias_init)`` of a conv or dense layer with ``fan_in`` inputs per output."""
    if init == "matlab":
        return nn.initializers.normal(MATLAB_WEIGHT_STD), nn.initializers.zeros_init()
    if init == "pytorch":
        return _pytorch_uniform(fan_in), _pytorch_uniform(fan_in)
    raise ValueError(f"init must be one of {INITS}, got {init!r}")


def dense(features: int, fan_in: int, init: str, name: str) -> nn.Dense:
    """``nn.Dense`` (its parameters, its names) with the initialisers of ``init``; built inside a
    compact module's call."""
    kernel_init, bias_init = initializers(init, fan_in)
    return nn.Dense(features, kernel_init=kernel_init, bias_init=bias_init, name=name)


def resolve_conv_impl(
    conv_impl: str = "auto",
    backend: str | None = None,
    *,
    training: bool = True,
    grouped: bool = False,
) -> str:
    """The formulation ``conv_impl`` runs as on ``backend`` (default: jax's). ``"auto"`` is what
    was measured fastest (benchmarks/RESULTS.md): im2col for training on CPU, where lax.conv is
    slow in gradient programs; lax.conv for forward passes on CPU, where it is the faster, except
    for ``grouped`` convolutions (depthwise, pointwise group), whose lax.conv XLA:CPU runs several
    times slower than their im2col; lax.conv on other backends (benchmarks/gpu_suite.sh times both
    on a GPU)."""
    if conv_impl not in CONV_IMPLS:
        raise ValueError(f"conv_impl must be one of {CONV_IMPLS}, got {conv_impl!r}")
    if conv_impl != "auto":
        return conv_impl
    cpu = (backend or jax.default_backend()) == "cpu"
    return "im2col" if cpu and (training or grouped) else "lax"


def _same_pads(size: int, k: int, s: int) -> tuple[int, int]:
    """XLA's SAME padding of one spatial axis (more at the end when the total is odd)."""
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def im2col_conv(
    x: jax.Array, kernel: jax.Array, stride: int, pads: Sequence[tuple[int, int]]
) -> jax.Array:
    """``[N, H, W, Cin] * [k, k, Cin, F] -> [N, Ho, Wo, F]`` as one matrix product (no bias)."""
    k = kernel.shape[0]
    x = jnp.pad(x, ((0, 0), tuple(pads[0]), tuple(pads[1]), (0, 0)))
    ho = (x.shape[1] - k) // stride + 1
    wo = (x.shape[2] - k) // stride + 1
    if k == 1:
        cols = x[:, : stride * (ho - 1) + 1 : stride, : stride * (wo - 1) + 1 : stride, :]
    else:
        cols = jnp.concatenate(
            [
                x[
                    :,
                    dy : dy + stride * (ho - 1) + 1 : stride,
                    dx : dx + stride * (wo - 1) + 1 : stride,
                    :,
                ]
                for dy in range(k)
                for dx in range(k)
            ],
            axis=-1,
        )  # [N, Ho, Wo, k*k*Cin], channel index (dy * k + dx) * Cin + c, as kernel.reshape below
    return jnp.einsum("nhwp,pf->nhwf", cols, kernel.reshape(-1, kernel.shape[-1]))


class Conv(nn.Module):
    """A square convolution with bias: ``nn.Conv``'s parameters, either formulation."""

    features: int
    kernel_size: int
    stride: int = 1
    padding: str | tuple[tuple[int, int], tuple[int, int]] = "SAME"
    conv_impl: str = "auto"  # the formulation: auto, lax or im2col (resolve_conv_impl)
    weight_init: str = "matlab"  # initializers(): MATLAB R2018a's, or PyTorch's

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = True) -> jax.Array:
        """``train`` says whether this is a training pass: ``conv_impl="auto"`` formulates by
        it."""
        k, s = self.kernel_size, self.stride
        kernel_init, bias_init = initializers(self.weight_init, k * k * x.shape[-1])
        # float32 whatever jax's default (JAX_ENABLE_X64 makes initialisers float64).
        kernel = self.param("kernel", kernel_init, (k, k, x.shape[-1], self.features), jnp.float32)
        bias = self.param("bias", bias_init, (self.features,), jnp.float32)
        if self.padding == "SAME":
            pads = [_same_pads(x.shape[1], k, s), _same_pads(x.shape[2], k, s)]
        elif self.padding == "VALID":
            pads = [(0, 0), (0, 0)]
        else:
            pads = [tuple(p) for p in self.padding]
        if resolve_conv_impl(self.conv_impl, training=train) == "im2col":
            y = im2col_conv(x, kernel, s, pads)
        else:
            y = lax.conv_general_dilated(
                x, kernel, (s, s), pads, dimension_numbers=("NHWC", "HWIO", "NHWC")
            )
        return y + bias


def im2col_depthwise(
    x: jax.Array, kernel: jax.Array, stride: int, pads: Sequence[tuple[int, int]]
) -> jax.Array:
    """``[N, H, W, C] * [k, k, 1, C] -> [N, Ho, Wo, C]``, each channel with its own filter, as a
    sum of the k*k shifted (strided) slices times their weights (no bias)."""
    k = kernel.shape[0]
    x = jnp.pad(x, ((0, 0), tuple(pads[0]), tuple(pads[1]), (0, 0)))
    ho = (x.shape[1] - k) // stride + 1
    wo = (x.shape[2] - k) // stride + 1
    out = 0.0
    for dy in range(k):
        for dx in range(k):
            tap = x[
                :,
                dy : dy + stride * (ho - 1) + 1 : stride,
                dx : dx + stride * (wo - 1) + 1 : stride,
            ]
            out = out + tap * kernel[dy, dx, 0]
    return out


class DepthwiseConv(nn.Module):
    """A square depthwise convolution with bias (MobileNet v1): one ``k x k`` filter per input
    channel, ``kernel`` ``[k, k, 1, C]`` as ``nn.Conv(feature_group_count=C)`` holds it."""

    kernel_size: int
    stride: int = 1
    conv_impl: str = "auto"  # auto, lax or im2col (resolve_conv_impl)
    weight_init: str = "matlab"

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = True) -> jax.Array:
        k, s, c = self.kernel_size, self.stride, x.shape[-1]
        kernel_init, bias_init = initializers(self.weight_init, k * k)
        kernel = self.param("kernel", kernel_init, (k, k, 1, c), jnp.float32)
        bias = self.param("bias", bias_init, (c,), jnp.float32)
        pads = [_same_pads(x.shape[1], k, s), _same_pads(x.shape[2], k, s)]
        if resolve_conv_impl(self.conv_impl, training=train, grouped=True) == "im2col":
            y = im2col_depthwise(x, kernel, s, pads)
        else:
            y = lax.conv_general_dilated(
                x,
                kernel,
                (s, s),
                pads,
                dimension_numbers=("NHWC", "HWIO", "NHWC"),
                feature_group_count=c,
            )
        return y + bias


class GroupPointwise(nn.Module):
    """A ``1 x 1`` convolution with bias in ``groups`` groups (ShuffleNet v1's pointwise group
    convolution): each group of ``C / groups`` input channels feeds its own ``features / groups``
    outputs. ``kernel`` ``[1, 1, C / groups, features]`` as ``nn.Conv(feature_group_count=groups)``
    holds it; im2col computes it as one batched matrix product, lax as lax's grouped conv (an
    ONNX ``Conv`` with ``group``, which edge runtimes run fast)."""

    features: int
    groups: int
    conv_impl: str = "auto"
    weight_init: str = "matlab"

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = True) -> jax.Array:
        g, c = self.groups, x.shape[-1]
        if c % g or self.features % g:
            raise ValueError(
                f"{c} input and {self.features} output channels do not split into {g} groups"
            )
        kernel_init, bias_init = initializers(self.weight_init, c // g)
        kernel = self.param("kernel", kernel_init, (1, 1, c // g, self.features), jnp.float32)
        bias = self.param("bias", bias_init, (self.features,), jnp.float32)
        if resolve_conv_impl(self.conv_impl, training=train, grouped=True) == "lax":
            y = lax.conv_general_dilated(
                x,
                kernel,
                (1, 1),
                "VALID",
                dimension_numbers=("NHWC", "HWIO", "NHWC"),
                feature_group_count=g,
            )
            return y + bias
        # Output channel o belongs to group o // (features / g), as in lax's grouped conv.
        w_GxIxO = kernel[0, 0].reshape(c // g, g, self.features // g).transpose(1, 0, 2)
        x_groups = x.reshape(*x.shape[:-1], g, c // g)
        y = jnp.einsum("...gi,gio->...go", x_groups, w_GxIxO)
        return y.reshape(*x.shape[:-1], self.features) + bias


# MATLAB's batchNormalizationLayer epsilon 1e-5. Running averages move by 0.1 per step (Flax's
# momentum 0.9; PyTorch's momentum 0.1, and MATLAB's MeanDecay since R2021a); the paper's MATLAB
# R2018a predicted with the training set's statistics instead (TrainConfig.bn_stats, which
# replaces these after training).
BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9


class ConvBN(nn.Module):
    """Conv (with bias) -> BatchNorm (scale, offset) -> optional ReLU."""

    features: int
    kernel_size: int
    stride: int = 1
    padding: str | tuple[tuple[int, int], tuple[int, int]] = "SAME"
    relu: bool = True
    conv_impl: str = "auto"  # the convolution's formulation: auto, lax or im2col (Conv)
    weight_init: str = "matlab"  # the convolution's initialisers (initializers())

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool, mask: jax.Array | None = None) -> jax.Array:
        x = Conv(
            self.features,
            self.kernel_size,
            self.stride,
            self.padding,
            self.conv_impl,
            self.weight_init,
            name="conv",
        )(x, train=train)
        x = batch_norm(x, mask, train=train, name="bn")
        return nn.relu(x) if self.relu else x


def batch_norm(x: jax.Array, mask: jax.Array | None, *, train: bool, name: str) -> jax.Array:
    """BatchNorm (MATLAB's epsilon, BN_MOMENTUM) over the samples ``mask`` ``[N]`` marks real;
    called inside a compact module, which owns the layer as ``name``."""
    bn_mask = (
        None
        if mask is None
        else jnp.broadcast_to(mask.reshape(mask.shape + (1,) * (x.ndim - mask.ndim)), x.shape)
    )
    return nn.BatchNorm(
        use_running_average=not train, momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=name
    )(x, mask=bn_mask)


def max_pool(
    x: jax.Array,
    window: tuple[int, int],
    strides: tuple[int, int],
    padding: str | tuple[tuple[int, int], tuple[int, int]] = "VALID",
) -> jax.Array:
    """``nn.max_pool`` with its padding (explicit or "SAME") written as a -inf pad and a VALID
    pool: the same numbers (flax pads with -inf too), in a form ONNX exporters convert (jax2onnx
    drops explicit pooling pads)."""
    if padding == "SAME":
        padding = tuple(lax.padtype_to_pads(x.shape[-3:-1], window, strides, "SAME"))
    if padding != "VALID":
        pads = [(0, 0)] * (x.ndim - 3) + [tuple(padding[0]), tuple(padding[1]), (0, 0)]
        x = jnp.pad(x, pads, constant_values=-jnp.inf)
        padding = "VALID"
    return nn.max_pool(x, window_shape=window, strides=strides, padding=padding)


def check_input(x: jax.Array, in_channels: int, name: str) -> None:
    """Raises a clear error for an input that is not ``[N, H, W, in_channels]``."""
    if x.ndim != 4:
        raise ValueError(f"{name} expects inputs [N, H, W, C]; got shape {x.shape}")
    if x.shape[-1] != in_channels:
        raise ValueError(
            f"{name} was built for {in_channels} input channel(s) but got {x.shape[-1]} "
            f"(input shape {x.shape}); build it with in_channels={x.shape[-1]} or change the "
            "representation"
        )

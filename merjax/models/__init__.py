"""The paper's networks as Flax modules, and their parameter counts.

Why linen (not nnx): the LOSO trainer vmaps one network over a stack of per-fold variables and
shards and checkpoints that stack. Linen's ``model.apply(variables, x)`` is already a pure
function of a plain pytree of arrays, so ``jax.vmap(model.apply)`` over a leading fold axis, a
``NamedSharding`` on that axis and an orbax checkpoint all see the same dict structure, with no
split/merge of module state. (nnx would need ``nnx.split``/``nnx.vmap`` at every boundary.)

Contract::

    model = build("shallow", num_layers=3, in_channels=1)       # Vy-3CL
    model = build("resnet", num_layers=7, in_channels=3)        # ResNet8
    count_params(model, (64, 64, 1))                            # 331,301
    variables = init(model, key, (64, 64, 1))
    logits = model.apply(variables, x_NxHxWxC)                  # eval: running BN statistics
    (logits, feats), updates = model.apply(variables, x, train=True, return_features=True,
                                           mutable=["batch_stats"])

Networks also build by name (``by_name("vy-3cl")``, ``by_name("resnet8")``), which returns the
module and the flow representation it reads.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from merjax.flow import REPRESENTATIONS
from merjax.models import efficient, resnet, shallow
from merjax.models.layers import CONV_IMPLS, INITS, Conv, ConvBN, resolve_conv_impl
from merjax.models.resnet import ResNetDepth
from merjax.models.shallow import ShallowCNN
from merjax.models.ststnet import STSTNet

ARCHS = ("resnet", "shallow", "ststnet", "separable", "shuffle")
FAMILIES = {"sep": "separable", "shuffle": "shuffle"}
"""Name suffixes of the lighter shallow families: ``vy-3cl-sep``, ``vy-3cl-shuffle``."""


def build(
    arch: str,
    num_layers: int,
    in_channels: int,
    num_classes: int = 5,
    *,
    conv_impl: str = "auto",
    base_filters: int | None = None,
    groups: int = 1,
) -> nn.Module:
    """A network of the paper.

    Args:
      arch: ``"resnet"`` (ResNet18 depth variants, ``num_layers`` in 1, 3, ..., 17), ``"shallow"``
        (the 1-4 CL CNNs), ``"separable"`` / ``"shuffle"`` (the same family from
        depthwise-separable or ShuffleNet v2 blocks: :mod:`merjax.models.efficient`) or
        ``"ststnet"`` (``num_layers`` 1).
      num_layers: conv layers, as the paper counts them.
      in_channels: channels of the flow representation fed to it (1, 2 or 3).
      num_classes: 5 for the MEGC 2018 objective classes.
      conv_impl: how convolutions compute: ``"lax"`` (lax.conv), ``"im2col"`` (one matrix
        product) or ``"auto"`` (per backend, :func:`merjax.models.layers.resolve_conv_impl`); the
        parameters are the same either way.
      base_filters: the shallow families' width, the first conv's filters (doubling per layer);
        None is the paper's 16 per input channel.
      groups: ``"shuffle"`` only: the units' pointwise convs in this many groups (ShuffleNet v1's
        pointwise group convolution); 1 is ShuffleNet v2's plain pointwise convs.
    """
    resolve_conv_impl(conv_impl)  # a clear error for an unknown formulation
    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")
    if not isinstance(num_layers, (int, np.integer)) or isinstance(num_layers, bool):
        raise ValueError(f"num_layers must be an int, got {num_layers!r}")
    if not isinstance(in_channels, (int, np.integer)) or in_channels < 1:
        raise ValueError(f"in_channels must be a positive int, got {in_channels!r}")
    if not isinstance(num_classes, (int, np.integer)) or num_classes < 2:
        raise ValueError(f"num_classes must be an int >= 2, got {num_classes!r}")
    if arch == "resnet":
        if num_layers not in resnet.DEPTHS:
            raise ValueError(
                "a ResNet depth variant has an odd number of conv layers in 1..17 (stem + 2 per "
                "block), "
                f"got num_layers={num_layers}"
            )
        return ResNetDepth(int(num_layers), int(in_channels), int(num_classes), conv_impl=conv_impl)
    if arch == "ststnet":
        if num_layers != 1:
            raise ValueError(
                f"STSTNet has one layer of three parallel convolutions, got num_layers={num_layers}"
            )
        return STSTNet(int(in_channels), int(num_classes), conv_impl=conv_impl)
    if not 1 <= num_layers <= shallow.MAX_LAYERS:
        raise ValueError(
            f"the shallow CNNs have 1 to {shallow.MAX_LAYERS} conv layers, got "
            f"num_layers={num_layers}"
        )
    if base_filters is not None and (
        not isinstance(base_filters, (int, np.integer))
        or base_filters < 1
        or (arch == "shuffle" and base_filters % 2)
    ):
        raise ValueError(
            f"base_filters must be a positive int (even for shuffle: its units split the "
            f"channels in two), got {base_filters!r}"
        )
    if not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"groups must be a positive int, got {groups!r}")
    if groups > 1:
        base = base_filters or 16 * in_channels
        if arch != "shuffle":
            raise ValueError(f"groups sets the pointwise convs of the shuffle family, not {arch}")
        if base % groups:
            raise ValueError(f"{base} first-layer filters do not split into {groups} groups")
        return efficient.ShuffleCNN(
            int(num_layers),
            int(in_channels),
            int(num_classes),
            base_filters=None if base_filters is None else int(base_filters),
            conv_impl=conv_impl,
            groups=int(groups),
        )
    cls = {
        "shallow": ShallowCNN,
        "separable": efficient.SeparableCNN,
        "shuffle": efficient.ShuffleCNN,
    }[arch]
    width = None if base_filters is None else int(base_filters)
    return cls(
        int(num_layers), int(in_channels), int(num_classes), base_filters=width, conv_impl=conv_impl
    )


def by_name(name: str, num_classes: int = 5, *, conv_impl: str = "auto") -> tuple[nn.Module, str]:
    """``(module, representation)`` from a paper name.

    ``resnet2`` ... ``resnet18`` (ResNet(CL+1) on Vx-Vy-M, e.g. ``resnet8`` = 7 CL),
    ``{vx,vy,mag,vxvy,...}-{1..4}cl`` for the shallow CNNs (e.g. ``vy-3cl``, ``vxvy-3cl``), with
    ``-sep`` or ``-shuffle`` for their lighter families (``vy-3cl-sep``), ``-gN`` after
    ``-shuffle`` for pointwise group convs in N groups (``vy-3cl-shuffle-g4``) and ``-wN`` for a
    width other than the paper's (the first conv's filters: ``vy-3cl-sep-w8``), or
    ``ststnet`` (Liong et al. 2019, on Vx, Vy and optical strain).
    """
    key = name.lower().strip()
    arch = "shallow"
    width = None
    stem, _, suffix = key.rpartition("-")
    if stem and suffix[:1] == "w" and suffix[1:].isdigit():
        key, width = stem, int(suffix[1:])
        if key == "ststnet" or key.startswith("resnet"):
            raise ValueError(f"{name!r}: -w{width} sets the width of the shallow CNNs only")
    groups = 1
    stem, _, suffix = key.rpartition("-")
    if stem.endswith("-shuffle") and suffix[:1] == "g" and suffix[1:].isdigit():
        key, groups = stem, int(suffix[1:])
    elif suffix[:1] == "g" and suffix[1:].isdigit():
        raise ValueError(f"{name!r}: -{suffix} groups the pointwise convs of -shuffle only")
    stem, _, suffix = key.rpartition("-")
    if suffix in FAMILIES and stem:
        key, arch = stem, FAMILIES[suffix]
        if key == "ststnet" or key.startswith("resnet"):
            raise ValueError(
                f"{name!r}: the -{suffix} family is of the shallow CNNs (e.g. vy-3cl-{suffix})"
            )
    if key == "ststnet":  # Liong et al. 2019, on (Vx, Vy, strain); 3 classes in MEGC 2019
        return build("ststnet", 1, 3, num_classes, conv_impl=conv_impl), "ststnet"
    if key.startswith("resnet") and key[6:].isdigit():
        return build("resnet", int(key[6:]) - 1, 3, num_classes, conv_impl=conv_impl), "vxvym"
    rep, _, depth = key.rpartition("-")
    if rep in REPRESENTATIONS and depth.endswith("cl") and depth[:-2].isdigit():
        return build(
            arch,
            int(depth[:-2]),
            REPRESENTATIONS[rep],
            num_classes,
            conv_impl=conv_impl,
            base_filters=width,
            groups=groups,
        ), rep
    raise ValueError(
        f"unknown network name {name!r}; expected e.g. 'resnet8' (resnet2..resnet18, even) or "
        "'vy-3cl' "
        f"(representation in {sorted(REPRESENTATIONS)}, 1-4 cl)"
    )


def init(model: nn.Module, key: jax.Array, input_shape: Sequence[int]) -> dict:
    """Variables (``params`` and ``batch_stats``) for inputs of shape ``(H, W, C)``."""
    return model.init(key, jnp.zeros((1, *input_shape), jnp.float32), train=False)


def count_params(model: nn.Module, input_shape: Sequence[int]) -> int:
    """Learnable parameters (the ``params`` collection) for inputs ``(H, W, C)``; no compute."""
    shapes = jax.eval_shape(lambda k: init(model, k, input_shape), jax.random.key(0))
    return int(sum(np.prod(x.shape) for x in jax.tree.leaves(shapes["params"])))


def count_flops(model: nn.Module, input_shape: Sequence[int]) -> int:
    """Floating-point operations of one forward pass on one input ``(H, W, C)``, from XLA's cost
    analysis of the compiled program on this backend (a multiply-add counts 2; BatchNorm, ReLU
    and pooling count too). Comparable between networks: the same count for every one."""
    shapes = jax.eval_shape(lambda k: init(model, k, input_shape), jax.random.key(0))
    x = jax.ShapeDtypeStruct((1, *input_shape), jnp.float32)
    cost = jax.jit(lambda v, x: model.apply(v, x)).lower(shapes, x).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost  # a list per device in older jax
    return int(cost["flops"])


__all__ = [
    "ARCHS",
    "FAMILIES",
    "CONV_IMPLS",
    "INITS",
    "Conv",
    "ConvBN",
    "ResNetDepth",
    "STSTNet",
    "ShallowCNN",
    "build",
    "by_name",
    "resolve_conv_impl",
    "count_flops",
    "count_params",
    "efficient",
    "init",
    "resnet",
    "shallow",
]

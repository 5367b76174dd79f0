"""ResNet18 and its depth variants (Table 1, Figure 2): 17, 15, ..., 3, 1 conv layers.

Stem: 7x7/2 conv with 64 filters (+bias, BN, ReLU); a 3x3/2 max-pool when residual blocks
follow; basic blocks (two 3x3 convs with bias + BN) with 64, 64, 128, 128, 256, 256, 512, 512
filters, the first block of stages 2-4 striding by 2 with a 1x1 projection shortcut (+bias, BN);
a final 2x2/2 max-pool; Dense to the classes. Each step removes the last block (two conv layers),
so ``num_layers = 1 + 2 * blocks``; the paper names the network by its weighted layers,
ResNet(num_layers + 1): ResNet8 has 7 conv layers.

Parameter counts on 64x64x3 inputs, 5 classes, from this rule, against the paper's Table 1:

    CL      1       3        5        7        9        11         13         15         17
    rule    91,525  104,197  178,309  398,597  694,277  1,608,965  2,790,149  6,462,213  11,183,877
    paper   91,525  104,197  178,309  398,597  694,277  1,608,965  2,790,149  5,400,725  10,670,932

1-13 CL match exactly. The paper's 15 and 17 CL cells follow from no variant of the rule that
keeps 1-13 (the 512-filter blocks alone add 3.67 M and 4.72 M parameters); we build the rule.
"""

from __future__ import annotations

import flax.linen as nn
import jax

from merjax.models.layers import ConvBN, check_input, dense, max_pool

PAPER_PARAMS = {
    1: 91_525, 3: 104_197, 5: 178_309, 7: 398_597, 9: 694_277,
    11: 1_608_965, 13: 2_790_149, 15: 5_400_725, 17: 10_670_932,
}  # fmt: skip
"""Table 1 of the paper, by number of conv layers."""

RULE_PARAMS = {**PAPER_PARAMS, 15: 6_462_213, 17: 11_183_877}
"""What this module builds; differs from the paper at 15 and 17 CL."""

DEPTHS = tuple(range(1, 18, 2))
BLOCK_FILTERS = (64, 64, 128, 128, 256, 256, 512, 512)


class BasicBlock(nn.Module):
    """Two 3x3 conv + BN; a 1x1 projection (+BN) when the shape changes; ReLU after the sum."""

    features: int
    stride: int = 1
    conv_impl: str = "auto"
    weight_init: str = "matlab"

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool, mask: jax.Array | None = None) -> jax.Array:
        pad = ((1, 1), (1, 1))
        kw = dict(conv_impl=self.conv_impl, weight_init=self.weight_init)
        y = ConvBN(self.features, 3, self.stride, pad, name="conv1", **kw)(
            x, train=train, mask=mask
        )
        y = ConvBN(self.features, 3, 1, pad, relu=False, name="conv2", **kw)(
            y, train=train, mask=mask
        )
        if self.stride != 1 or x.shape[-1] != self.features:
            x = ConvBN(
                self.features, 1, self.stride, padding="VALID", relu=False, name="proj", **kw
            )(x, train=train, mask=mask)
        return nn.relu(x + y)


class ResNetDepth(nn.Module):
    """ResNet18 cut to ``num_layers`` conv layers (odd, 1-17); see the module docstring."""

    num_layers: int
    in_channels: int = 3
    num_classes: int = 5
    conv_impl: str = (
        "auto"  # how the convolutions compute (layers.Conv); same parameters either way
    )
    weight_init: str = (
        "matlab"  # MATLAB R2018a's initialisers, as the paper trained (layers.initializers)
    )

    @nn.compact
    def __call__(
        self,
        x: jax.Array,
        *,
        train: bool = False,
        mask: jax.Array | None = None,
        return_features: bool = False,
    ) -> jax.Array | tuple[jax.Array, jax.Array]:
        """``x``: ``[N, H, W, C]``. Returns logits ``[N, K]`` (and features ``[N, D]``)."""
        check_input(x, self.in_channels, f"ResNetDepth({self.num_layers} CL)")
        x = ConvBN(
            64,
            7,
            2,
            padding=((3, 3), (3, 3)),
            conv_impl=self.conv_impl,
            weight_init=self.weight_init,
            name="stem",
        )(x, train=train, mask=mask)
        num_blocks = (self.num_layers - 1) // 2
        if num_blocks:
            x = max_pool(x, (3, 3), (2, 2), ((1, 1), (1, 1)))
        for i in range(num_blocks):
            stride = 2 if i in (2, 4, 6) else 1
            x = BasicBlock(
                BLOCK_FILTERS[i], stride, self.conv_impl, self.weight_init, name=f"block{i + 1}"
            )(x, train=train, mask=mask)
        # SAME: identical to VALID on 64x64 inputs (every map before this pool has an even side),
        # and it lets inputs below 48x48 (the quick profile) reach the Dense layer with a 1x1 map.
        x = max_pool(x, (2, 2), (2, 2), "SAME")
        features = x.reshape(x.shape[0], -1)
        logits = dense(self.num_classes, features.shape[-1], self.weight_init, "fc")(features)
        return (logits, features) if return_features else logits

"""The paper's shallow CNNs (Table 2, Figure 5): 1-4 conv layers on Vx, Vy, M or Vx-Vy.

conv1 5x5, then 3x3 convs, each followed by BatchNorm + ReLU; one max-pool; Dense to the classes.
Filters double per layer from 16 per input channel: 16/32/64/128 on one channel, 32/64/128/256
on two (Table 9 lists their running sums: 16, 48, 112, 240 and 32, 96, 224, 480).

Pooling. Table 2's counts fix the Dense input at filters x 32 x 32 for 1-2 CL and filters x 31 x 31
for 3-4 CL on 64x64 inputs. With 'same' convolutions that is a 2x2/2 max-pool for 1-2 CL
(64 -> 32) and a 3x3/2 max-pool without padding for 3-4 CL (floor((64 - 3) / 2) + 1 = 31); no
single pooling gives both, and no conv padding scheme with one 2x2/2 pool gives 31 for both 3
and 4 CL (valid 3x3 convs give 31 for 3 CL but 30 for 4 CL). So the pool follows the depth.

Parameter counts (5 classes), from this rule:

    one channel:  82,373  168,997  331,301  712,933
    two channels: 165,541 348,005  709,477  1,620,197

All equal the paper's Table 2 / Table 9 except one-channel 3 CL, printed there as 333,121. No
architecture that reproduces the other seven cells gives 333,121 (the 3 CL and 4 CL cells share
the pooling, and 4 CL matches); we treat the paper's cell as a slip and build 331,301.
"""

from __future__ import annotations

import flax.linen as nn
import jax

from merjax.models.layers import ConvBN, check_input, dense

PAPER_PARAMS = {
    1: {1: 82_373, 2: 168_997, 3: 333_121, 4: 712_933},
    2: {1: 165_541, 2: 348_005, 3: 709_477, 4: 1_620_197},
}
"""Table 2 / Table 9 of the paper: PAPER_PARAMS[in_channels][num_layers]."""

RULE_PARAMS = {
    1: {1: 82_373, 2: 168_997, 3: 331_301, 4: 712_933},
    2: {1: 165_541, 2: 348_005, 3: 709_477, 4: 1_620_197},
}
"""What this module builds; differs from the paper in the one-channel 3 CL cell only."""

MAX_LAYERS = 4


class ShallowCNN(nn.Module):
    """1-4 conv layers, BatchNorm + ReLU after each, one max-pool, Dense.

    Attributes:
      num_layers: conv layers, 1-4.
      in_channels: input channels (1 for Vx/Vy/M, 2 for Vx-Vy); checked on every call.
      num_classes: outputs of the Dense layer.
      base_filters: filters of the first conv; ``None`` means the paper's 16 per input channel.
      conv_impl: how the convolutions compute (``auto``, ``lax``, ``im2col``: layers.Conv); the
        parameters are the same either way.
    """

    num_layers: int
    in_channels: int
    num_classes: int = 5
    base_filters: int | None = None
    conv_impl: str = "auto"
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
        """``x``: ``[N, H, W, C]`` flow maps; returns logits ``[N, K]`` and features ``[N, D]``."""
        check_input(x, self.in_channels, f"ShallowCNN({self.num_layers} CL)")
        base = self.base_filters or 16 * self.in_channels
        for i in range(self.num_layers):
            x = ConvBN(
                base * 2**i,
                kernel_size=5 if i == 0 else 3,
                conv_impl=self.conv_impl,
                weight_init=self.weight_init,
                name=f"conv{i + 1}",
            )(x, train=train, mask=mask)
        if self.num_layers <= 2:
            x = nn.max_pool(x, window_shape=(2, 2), strides=(2, 2), padding="VALID")
        else:
            x = nn.max_pool(x, window_shape=(3, 3), strides=(2, 2), padding="VALID")
        features = x.reshape(x.shape[0], -1)
        logits = dense(self.num_classes, features.shape[-1], self.weight_init, "fc")(features)
        return (logits, features) if return_features else logits

"""The tests' own network: small enough that a training compiles in a second.

It exists for the tests only, so it lives here, built from merjax's layers (so it trains through
the same masked BatchNorm and convolution formulations as the paper's networks).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import numpy as np

from merjax import train
from merjax.models.layers import ConvBN, check_input, dense


class ToyCNN(nn.Module):
    """One 3x3 conv (4 filters) + BatchNorm + ReLU, global average pool, Dense."""

    in_channels: int
    num_classes: int = 5
    conv_impl: str = "auto"
    weight_init: str = "matlab"

    @nn.compact
    def __call__(
        self,
        x: jax.Array,
        *,
        train: bool = False,
        mask: jax.Array | None = None,
        return_features: bool = False,
    ) -> jax.Array | tuple[jax.Array, jax.Array]:
        check_input(x, self.in_channels, "ToyCNN")
        conv = ConvBN(4, 3, conv_impl=self.conv_impl, weight_init=self.weight_init, name="conv1")
        x = conv(x, train=train, mask=mask)
        features_BxF = x.mean(axis=(1, 2))
        logits = dense(self.num_classes, features_BxF.shape[-1], self.weight_init, "fc")(
            features_BxF
        )
        return (logits, features_BxF) if return_features else logits


# A toy leave-one-subject-out task the fault tests train on: 24 random 8x8 maps of 3 classes
# from 4 subjects, a few epochs, one run per program (checkpoints every epoch where asked).
X = np.random.default_rng(0).normal(size=(24, 8, 8, 1)).astype(np.float32)
Y = np.random.default_rng(1).integers(0, 3, 24).astype(np.int32)
SUBJ = [f"s{i // 6}" for i in range(24)]
TOY = ToyCNN(1, num_classes=3)
LOOP = train.Execution(epochs_per_call=1, strategy="loop")
CKPT = train.TrainConfig(epochs=3, batch_size=8)
CKPT_EVERY_EPOCH = train.Execution(epochs_per_call=1, strategy="loop", checkpoint_every=1)

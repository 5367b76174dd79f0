"""STSTNet (Liong et al., FG 2019): the best-known small baseline on the MEGC 2019 composite.

"Shallow Triple Stream Three-dimensional CNN": three parallel 3x3 convolutions with 3, 5 and 8
filters over a 28x28 input of optical strain and the two TV-L1 flow components; each stream
ReLU, BatchNorm, a 3x3/3 max-pool and dropout; the streams concatenated (16 channels), a 2x2/2
average pool, and one dense layer to the 3 classes.

Built from the paper and the authors' released PyTorch code (github.com/christy1206/STSTNet,
``main.py``), whose choices the paper leaves open: the convolutions pad by 2 (28 -> 30), ReLU
comes before BatchNorm, the max-pool pads by 1 (30 -> 10), dropout 0.5 follows each stream, no
padding in the average pool (10 -> 5), so the dense layer reads 5 x 5 x 16 = 400 features.
Learnable parameters, as the released model counts them::

    convolutions (3x3x3 + 1) x (3 + 5 + 8) = 448
    BatchNorm    2 x 16                    =  32
    dense        400 x 3 + 3               = 1,203
    total                                    1,683

Training as the authors published it (their ``main.py``): Adam, learning rate 5e-5, batch 256,
800 epochs, the last epoch's model scored (``merjax.train.TrainConfig`` with
``optimizer="adam"``).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from merjax.models.layers import Conv, batch_norm, check_input, dense, max_pool

AUTHORS_PARAMS = 1_683
"""Learnable parameters of the authors' released STSTNet (3 classes)."""

STREAMS = (3, 5, 8)


class STSTNet(nn.Module):
    """Three 3x3 conv streams (3, 5, 8 filters) -> concat -> avg pool -> Dense (see the module)."""

    in_channels: int = 3
    num_classes: int = 3
    conv_impl: str = "auto"
    dropout: float = 0.5
    weight_init: str = "pytorch"  # the released model's (torch.nn defaults; layers.initializers)

    @nn.compact
    def __call__(
        self,
        x: jax.Array,
        *,
        train: bool = False,
        mask: jax.Array | None = None,
        return_features: bool = False,
    ) -> jax.Array | tuple[jax.Array, jax.Array]:
        check_input(x, self.in_channels, "STSTNet")
        streams = []
        for i, filters in enumerate(STREAMS):
            y = Conv(
                filters,
                3,
                1,
                ((2, 2), (2, 2)),
                self.conv_impl,
                self.weight_init,
                name=f"conv{i + 1}",
            )(x, train=train)
            y = nn.relu(y)
            y = batch_norm(y, mask, train=train, name=f"bn{i + 1}")
            y = max_pool(y, (3, 3), (3, 3), ((1, 1), (1, 1)))
            streams.append(nn.Dropout(self.dropout, deterministic=not train)(y))
        y = jnp.concatenate(streams, axis=-1)
        y = nn.avg_pool(y, window_shape=(2, 2), strides=(2, 2), padding="VALID")
        features = y.reshape(y.shape[0], -1)
        logits = dense(self.num_classes, features.shape[-1], self.weight_init, "fc")(features)
        return (logits, features) if return_features else logits

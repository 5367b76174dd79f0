"""merjax: micro-expression recognition in JAX.

Reproduces Belaiche et al. (2020), "Cost-Effective CNNs for Real-Time Micro-Expression
Recognition": Horn-Schunck optical flow (:mod:`merjax.flow`) feeding ResNet18 depth variants and
shallow CNNs (:mod:`merjax.models`).
"""

__version__ = "0.1.0"

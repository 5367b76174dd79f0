"""merjax: micro-expression recognition in JAX.

Reproduces Belaiche et al. (2020), "Cost-Effective CNNs for Real-Time Micro-Expression
Recognition" -- Horn-Schunck optical flow (:mod:`merjax.flow`) feeding ResNet18 depth variants and
shallow CNNs (:mod:`merjax.models`), trained leave-one-subject-out with every fold at once
(:mod:`merjax.train`) -- and goes beyond it: TV-L1 flow, STSTNet, the MEGC 2019 composite,
CAS(ME)^3 and cross-database protocols (:mod:`merjax.data`, ``experiments/``), spotting in long
videos and a real-time stream (:mod:`merjax.spotting`), and inference on new clips
(:mod:`merjax.inference`, ``python -m merjax.predict``). ``python -m merjax.main`` runs an
experiment.
"""

__version__ = "0.1.0"

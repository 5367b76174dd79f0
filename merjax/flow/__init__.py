"""Optical flow between two frames, batched and jitted, and the network inputs made from it.

Two methods, with the same conventions (frames ``[..., H, W]``, any leading axes a batch, uint8
scaled to [0, 1]; flow ``[..., H, W, 2]`` float32 ``(vx, vy)``, ``vx > 0`` right, ``vy > 0`` down):

- :func:`horn_schunck` -- the paper's flow: MATLAB's ``opticalFlowHS`` (``variant="matlab"``,
  the default) or Horn & Schunck (1981) as pyoptflow computes it (``"classic"``). One Jacobi
  stencil per sweep: fast, smooth, and with MATLAB's defaults heavily regularised.
- :func:`tvl1` -- the flow most micro-expression work since 2019 uses (STSTNet, Off-ApexNet,
  HTNet, the MEGC baselines): duality-based TV-L1 with a coarse-to-fine pyramid and warping, as
  IPOL 2013 specifies it. Sharper motion boundaries and larger displacements; more work per pair.

:func:`compute` picks either by name (``"horn_schunck"`` or ``"tvl1"``), as the flow cache, the
experiments and inference do; :class:`FlowSettings` records the method, its parameters, the
frame size and the crop as one value. :func:`representation` turns a flow into a network input;
:func:`input_maps` resizes it to the network first (training and inference both call it).
"""

from merjax.flow.dual_tvl1 import tvl1
from merjax.flow.hs import Variant, horn_schunck
from merjax.flow.inputs import check_values, intensities, to_intensity
from merjax.flow.representations import (
    REPRESENTATIONS,
    input_maps,
    optical_strain,
    representation,
    resize_flow,
)
from merjax.flow.settings import (
    METHODS,
    VARIANTS,
    FlowSettings,
    HornSchunckSettings,
    TVL1Settings,
)


def compute(frame0, frame1, method: str = "horn_schunck", **params):
    """The flow of ``method`` (``"horn_schunck"`` or ``"tvl1"``) with its keyword ``params``."""
    if method == "horn_schunck":
        return horn_schunck(frame0, frame1, **params)
    if method == "tvl1":
        return tvl1(frame0, frame1, **params)
    raise ValueError(f"flow method must be one of {METHODS}, got {method!r}")


__all__ = [
    "METHODS",
    "FlowSettings",
    "HornSchunckSettings",
    "TVL1Settings",
    "REPRESENTATIONS",
    "VARIANTS",
    "Variant",
    "check_values",
    "compute",
    "horn_schunck",
    "input_maps",
    "intensities",
    "optical_strain",
    "representation",
    "resize_flow",
    "to_intensity",
    "tvl1",
]

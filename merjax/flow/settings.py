"""How a flow is computed, as values: what the flow cache keys on, what an experiment's config and
a model folder record, so that inference computes the flow a network was trained on.

Both methods' parameters have the same shape: one frozen dataclass each
(:class:`HornSchunckSettings`, :class:`TVL1Settings`), nested in :class:`FlowSettings` beside the
method, the frame size and the crop. Their defaults are the functions' defaults
(:func:`merjax.flow.horn_schunck` and :func:`merjax.flow.tvl1` read them from here).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np

from merjax.faces.settings import OLD as FACES_BEFORE_LANDMARKS
from merjax.faces.settings import FaceSettings

METHODS: tuple[str, ...] = ("horn_schunck", "tvl1")
VARIANTS: tuple[str, ...] = ("matlab", "classic")

IPOL_LAMBDA = 0.15
"""IPOL's TV-L1 lambda, stated for intensities in 0-255."""

# 3: the face pipeline (``faces``); 2: the methods' parameters nested; 1 (older model folders):
# Horn-Schunck's flat.
_FORMAT = 3


MAX_ITER = 10_000
"""The most iterations a flow setting may ask for: far past where either method has converged
at the sizes merjax computes, and a bound on the work a model folder from elsewhere can ask."""
MAX_SIDE = 4096


def _bounded(name, value, low, high, *, integer: bool = False, low_open: bool = False) -> None:
    """The documented bounds of a flow parameter (checked when settings are made: from a config,
    a ``--set`` or a model folder's ``model.json``)."""
    kind = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    ok = isinstance(value, kind) and not isinstance(value, bool) and np.isfinite(value)
    ok = ok and (low < value if low_open else low <= value) and value <= high
    if not ok:
        span = f"{'(' if low_open else '['}{low:g}, {high:g}]"
        what = "an integer" if integer else "a number"
        raise ValueError(f"{name} must be {what} in {span}, got {value!r}")


@dataclasses.dataclass(frozen=True)
class HornSchunckSettings:
    """Horn-Schunck's parameters (:func:`merjax.flow.horn_schunck`). The defaults are MATLAB's
    ``opticalFlowHS`` (Smoothness 1, MaxIteration 10), which the paper used."""

    variant: str = "matlab"  # or "classic" (Horn & Schunck 1981, as pyoptflow)
    smoothness: float = 1.0  # MATLAB's Smoothness (not squared); alpha for "classic"
    num_iter: int = 10  # Jacobi sweeps (MATLAB's MaxIteration)

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise ValueError(f"flow variant must be one of {VARIANTS}, got {self.variant!r}")
        _bounded("horn_schunck.smoothness", self.smoothness, 0.0, 1e6, low_open=True)
        _bounded("horn_schunck.num_iter", self.num_iter, 0, MAX_ITER, integer=True)


@dataclasses.dataclass(frozen=True)
class TVL1Settings:
    """TV-L1's parameters (:func:`merjax.flow.tvl1`), with IPOL 2013's names and defaults, lambda
    restated for [0, 1] intensities, and a fixed count of 10 iterations per warp (scikit-image's;
    ``epsilon=0.01, num_iter=300`` is IPOL's stopping rule instead). Why 10 and not more: more
    iterations approach the TV-L1 minimum, whose piecewise-constant bias suits smooth facial motion
    less (end-point errors in benchmarks/RESULTS.md)."""

    tau: float = 0.25  # time step of the dual update (stable for tau <= 0.25)
    lambda_: float = 255 * IPOL_LAMBDA  # weight of the data term; smaller is smoother
    theta: float = 0.3  # coupling of the primal and auxiliary flows
    nscales: int = 100  # pyramid scales at most (the coarsest keeps sides >= 16 px)
    zfactor: float = 0.5  # zoom between scales
    nwarps: int = 5  # warps per scale
    num_iter: int = 10  # iterations per warp (with epsilon: at most)
    epsilon: float | None = None  # None: fixed iterations (differentiable); else IPOL's threshold

    def __post_init__(self):
        _bounded("tvl1.tau", self.tau, 0.0, 0.25, low_open=True)
        for name in ("lambda_", "theta"):
            _bounded(f"tvl1.{name}", getattr(self, name), 0.0, 1e6, low_open=True)
        _bounded("tvl1.zfactor", self.zfactor, 0.0, 0.99, low_open=True)
        _bounded("tvl1.nscales", self.nscales, 1, 1000, integer=True)
        _bounded("tvl1.nwarps", self.nwarps, 1, 1000, integer=True)
        _bounded("tvl1.num_iter", self.num_iter, 1, MAX_ITER, integer=True)
        if self.epsilon is not None:
            _bounded("tvl1.epsilon", self.epsilon, 0.0, 1.0, low_open=True)


@dataclasses.dataclass(frozen=True)
class FlowSettings:
    """Everything that determines a flow: the method and its parameters, the frame size it is
    computed at, and how frames become face crops (``crop``: the database's crops where it has
    them, else the face pipeline ``faces``; ``none``: whole frames)."""

    method: str = "horn_schunck"  # or "tvl1"
    size: tuple[int, int] = (64, 64)
    crop: str = "dataset"
    horn_schunck: HornSchunckSettings = HornSchunckSettings()
    tvl1: TVL1Settings = TVL1Settings()
    faces: FaceSettings = FaceSettings()

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"flow method must be one of {METHODS}, got {self.method!r}")
        if self.crop not in ("dataset", "none"):
            raise ValueError(f"crop must be 'dataset' or 'none', got {self.crop!r}")
        if len(self.size) != 2 or min(self.size) < 4 or max(self.size) > MAX_SIDE:
            raise ValueError(f"size must be (H, W) with sides 4..{MAX_SIDE}, got {self.size!r}")
        if self.method == "tvl1" and min(self.size) < 8:
            raise ValueError(f"TV-L1 needs frames of at least 8x8, got size {self.size!r}")
        object.__setattr__(self, "size", tuple(int(s) for s in self.size))

    def params(self) -> dict:
        """Keyword arguments of the method's function (:func:`merjax.flow.compute`)."""
        return dataclasses.asdict(getattr(self, self.method))

    def describe(self) -> str:
        """The flow in a few words, for reports."""
        if self.method == "tvl1":
            t = self.tvl1
            return (
                f"TV-L1 (lambda {t.lambda_:g} for [0, 1] frames, theta {t.theta:g}, tau {t.tau:g}, "
                f"{t.nwarps} warps x {t.num_iter} iterations per scale)"
            )
        h = self.horn_schunck
        return f"Horn-Schunck {h.variant}, {h.num_iter} iterations, smoothness {h.smoothness}"

    def to_json(self) -> dict:
        return {**dataclasses.asdict(self), "size": list(self.size), "format": _FORMAT}

    @classmethod
    def from_json(cls, d: dict) -> FlowSettings:
        """Settings from :meth:`to_json`, or from a model folder of an older merjax (format 1:
        Horn-Schunck's parameters at the top level; before TV-L1: no method; before format 3:
        no face pipeline, which was a Haar box on the first frame)."""
        d = {k: v for k, v in d.items() if k != "format"}
        flat = {k: d.pop(k) for k in ("variant", "smoothness", "num_iter") if k in d}
        hs = HornSchunckSettings(**d.pop("horn_schunck", flat))
        tvl1 = TVL1Settings(**d.pop("tvl1", {}))
        face = FaceSettings(**d.pop("faces", FACES_BEFORE_LANDMARKS))
        return cls(**d, horn_schunck=hs, tvl1=tvl1, faces=face)

    def digest(self) -> str:
        """A short hash of the settings (cache file names)."""
        text = json.dumps(self.to_json(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

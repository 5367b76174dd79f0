"""Flows of a list of samples, computed in batched jitted calls and cached on disk.

For each sample: the onset->apex flow (train and test) and the onset->apex+1 flow (the paper's
training augmentation; apex-1 where a clip ends at its apex). Frames are face-cropped
(:mod:`merjax.data.faces`) and resized to ``settings.size`` before the flow, so the flow is at the
network's input resolution.

One ``.npz`` per (dataset name, settings): the file also stores the settings, the samples'
identities and a hash of the frames' contents, and is reused only when all three match;
anything else (or an unreadable file) recomputes it.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from merjax import files
from merjax import flow as flow_lib
from merjax.data import faces
from merjax.data.sample import Sample

log = logging.getLogger(__name__)

_FORMAT = 1  # bump when what is stored changes


@dataclasses.dataclass(frozen=True)
class TVL1Settings:
    """TV-L1's parameters (:func:`merjax.flow.tvl1`; IPOL's names, lambda for [0, 1] frames)."""

    tau: float = flow_lib.tvl1_defaults["tau"]
    lambda_: float = flow_lib.tvl1_defaults["lambda_"]
    theta: float = flow_lib.tvl1_defaults["theta"]
    nscales: int = flow_lib.tvl1_defaults["nscales"]
    zfactor: float = flow_lib.tvl1_defaults["zfactor"]
    nwarps: int = flow_lib.tvl1_defaults["nwarps"]
    num_iter: int = flow_lib.tvl1_defaults["num_iter"]
    epsilon: float | None = flow_lib.tvl1_defaults["epsilon"]


@dataclasses.dataclass(frozen=True)
class FlowSettings:
    """Everything that determines a cached flow: the method and its parameters, the frame size
    the flow is computed at, and how frames are cropped."""

    variant: str = "matlab"  # Horn-Schunck's variant
    smoothness: float = 1.0  # Horn-Schunck
    num_iter: int = 10  # Horn-Schunck: MATLAB's default MaxIteration, as the paper used
    size: tuple[int, int] = (64, 64)
    crop: str = "dataset"  # the database's crops, else a Haar face box on the onset frame
    method: str = "horn_schunck"  # or "tvl1" (merjax.flow.METHODS)
    tvl1: TVL1Settings = TVL1Settings()

    def __post_init__(self):
        if self.method not in flow_lib.METHODS:
            raise ValueError(f"flow method must be one of {flow_lib.METHODS}, got {self.method!r}")
        if self.variant not in flow_lib.VARIANTS:
            raise ValueError(
                f"flow variant must be one of {flow_lib.VARIANTS}, got {self.variant!r}"
            )
        if self.crop not in ("dataset", "none"):
            raise ValueError(f"crop must be 'dataset' or 'none', got {self.crop!r}")
        if len(self.size) != 2 or min(self.size) < 4:
            raise ValueError(f"size must be (H, W) with sides >= 4, got {self.size!r}")
        if self.method == "tvl1" and min(self.size) < 8:
            raise ValueError(f"TV-L1 needs frames of at least 8x8, got size {self.size!r}")
        object.__setattr__(self, "size", tuple(int(s) for s in self.size))
        if isinstance(self.tvl1, dict):  # from JSON
            object.__setattr__(self, "tvl1", TVL1Settings(**self.tvl1))

    def params(self) -> dict:
        """Keyword arguments of the method's function (merjax.flow.compute)."""
        if self.method == "tvl1":
            return dataclasses.asdict(self.tvl1)
        return {"smoothness": self.smoothness, "num_iter": self.num_iter, "variant": self.variant}

    def describe(self) -> str:
        """The flow in a few words, for reports."""
        if self.method == "tvl1":
            t = self.tvl1
            return (
                f"TV-L1 (lambda {t.lambda_:g} for [0, 1] frames, theta {t.theta:g}, tau {t.tau:g}, "
                f"{t.nwarps} warps x {t.num_iter} iterations per scale)"
            )
        return (
            f"Horn-Schunck {self.variant}, {self.num_iter} iterations, smoothness {self.smoothness}"
        )

    def to_json(self) -> dict:
        return {**dataclasses.asdict(self), "size": list(self.size), "format": _FORMAT}

    @classmethod
    def from_json(cls, d: dict) -> FlowSettings:
        """Settings from :meth:`to_json` (model folders written before TV-L1 have no method)."""
        d = {k: v for k, v in d.items() if k != "format"}
        return cls(**d)

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_json(), sort_keys=True).encode()).hexdigest()[:12]


@dataclasses.dataclass(frozen=True)
class FlowSet:
    """Flows aligned with a sample list: ``apex`` and ``augment`` are ``[N, H, W, 2]``."""

    keys: tuple[str, ...]
    apex: np.ndarray
    augment: np.ndarray
    settings: FlowSettings
    notes: tuple[str, ...] = ()


def sample_frames(sample: Sample, settings: FlowSettings) -> tuple[np.ndarray, str]:
    """``([3, H, W] uint8, note)``: the onset, apex and augmentation frames of ``sample`` as the
    flows see them (cropped as ``settings.crop`` says, resized to ``settings.size``)."""
    box, note = (None, "") if settings.crop == "none" else faces.face_box(sample)
    numbers = [sample.onset, sample.apex, sample.augment_frame]
    return faces.load_frames(sample, numbers, settings.size, box), note


def compute(
    samples: Sequence[Sample],
    settings: FlowSettings = FlowSettings(),
    *,
    batch_size: int = 128,
    progress: Callable[[str], None] | None = log.info,
) -> FlowSet:
    """Reads, crops and resizes the frames, then computes the flows (``settings.method``) in
    batches of ``batch_size`` pairs (the last batch is padded, so there is one compilation)."""
    if not samples:
        raise ValueError("no samples to compute flows for")
    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:  # cv2 releases the GIL
        loaded = list(pool.map(lambda s: sample_frames(s, settings), samples))
    frames = np.stack([f for f, _ in loaded])  # [N, 3, H, W] uint8: onset, apex, augment
    notes = tuple(
        f"{s.source} ({s.clip}): {n}" for s, (_, n) in zip(samples, loaded, strict=True) if n
    )
    if progress:
        progress(f"read {len(samples)} clips in {time.perf_counter() - t0:.1f} s")
    first = np.concatenate([frames[:, 0], frames[:, 0]])
    second = np.concatenate([frames[:, 1], frames[:, 2]])
    n = len(first)
    batch = min(batch_size, n)
    out = np.empty((n, *settings.size, 2), np.float32)
    for start in range(0, n, batch):
        stop = min(start + batch, n)
        pad = batch - (stop - start)
        a = np.concatenate([first[start:stop], np.repeat(first[:1], pad, 0)])
        b = np.concatenate([second[start:stop], np.repeat(second[:1], pad, 0)])
        uv = flow_lib.compute(a, b, settings.method, **settings.params())
        out[start:stop] = np.asarray(uv)[: stop - start]
        if progress:
            progress(f"flow {stop}/{n} pairs, {time.perf_counter() - t0:.1f} s")
    half = len(samples)
    return FlowSet(tuple(s.key for s in samples), out[:half], out[half:], settings, notes)


def cache_path(cache_dir: str | Path, name: str, settings: FlowSettings) -> Path:
    return Path(cache_dir) / f"flows-{name}-{settings.digest()}.npz"


def frames_digest(samples: Sequence[Sample]) -> str:
    """A hash of the contents of every frame the flows are computed from (onset, apex and the
    second training frame of each sample): a re-exported or repaired image changes it.

    Contents, not sizes and times: a copy that keeps times (``cp -p``, rsync) or a same-size
    re-export would fool those. Reading the frames costs what reading them for the flows costs;
    measured on the full synthetic database (759 JPEGs, 2-core CPU): see benchmarks/RESULTS.md."""
    h = hashlib.sha256()
    for s in samples:
        for n in (s.onset, s.apex, s.augment_frame):
            h.update(f"{s.key}:{n}:".encode())
            try:
                h.update(hashlib.sha256(s.frame_path(n).read_bytes()).digest())
            except (OSError, KeyError) as e:
                h.update(f"unreadable {e}".encode())  # a miss now; compute() will name the file
    return h.hexdigest()[:16]


def load_or_compute(
    samples: Sequence[Sample],
    settings: FlowSettings,
    cache_dir: str | Path,
    name: str,
    *,
    progress: Callable[[str], None] | None = log.info,
    batch_size: int = 128,
) -> tuple[FlowSet, bool]:
    """``(flows, hit)``: the cached flows when the settings, the samples and the contents of
    their frames all match, else fresh ones (written to the cache, replacing the old file
    whole). An unreadable cache file is a miss, said so and replaced."""
    path = cache_path(cache_dir, name, settings)
    keys = [s.key for s in samples]
    digest = frames_digest(samples)
    say = progress or (lambda _: None)
    if path.is_file():
        reason = ""
        try:
            with np.load(path) as f:
                meta = json.loads(str(f["meta"]))
                if meta["settings"] != settings.to_json() or meta["keys"] != keys:
                    reason = "is for other samples or settings"
                elif "frames" not in meta:
                    reason = "records no hash of its frames (an older merjax wrote it)"
                elif meta["frames"] != digest:
                    reason = "was computed from frames that have changed since"
                else:
                    flows = FlowSet(
                        tuple(keys), f["apex"], f["augment"], settings, tuple(meta["notes"])
                    )
                    say(f"flows from cache {path}")
                    return flows, True
        except Exception as e:  # a truncated or damaged file: BadZipFile, CRC errors, EOF, ...
            reason = f"is unreadable ({type(e).__name__}: {e})"
        say(f"flow cache {path} {reason}; recomputing")
    flows = compute(samples, settings, progress=progress, batch_size=batch_size)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "settings": settings.to_json(),
        "keys": keys,
        "frames": digest,
        "notes": list(flows.notes),
    }
    files.savez(path, apex=flows.apex, augment=flows.augment, meta=json.dumps(meta))
    return flows, False

"""Flows of a list of samples, computed in batched jitted calls and cached on disk.

For each sample: the onset->apex flow (train and test) and the onset->apex+1 flow (the paper's
training augmentation; apex-1 where a clip ends at its apex). Frames are face-cropped
(:mod:`merjax.data.faces`) and resized to ``settings.size`` before the flow, so the flow is at the
network's input resolution.

One ``.npz`` per (dataset name, settings): the file also stores the settings and the samples'
identities, and is reused only when both match; anything else recomputes it.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from merjax import flow as flow_lib
from merjax.data import faces
from merjax.data.sample import Sample

log = logging.getLogger(__name__)

_FORMAT = 1  # bump when what is stored changes


@dataclasses.dataclass(frozen=True)
class FlowSettings:
    """Everything that determines a cached flow."""

    variant: str = "matlab"
    smoothness: float = 1.0
    num_iter: int = 10  # MATLAB's default MaxIteration, as the paper used
    size: tuple[int, int] = (64, 64)
    crop: str = "dataset"  # the database's crops, else a Haar face box on the onset frame

    def __post_init__(self):
        if self.variant not in flow_lib.VARIANTS:
            raise ValueError(f"flow variant must be one of {flow_lib.VARIANTS}, got {self.variant!r}")
        if self.crop not in ("dataset", "none"):
            raise ValueError(f"crop must be 'dataset' or 'none', got {self.crop!r}")
        if len(self.size) != 2 or min(self.size) < 4:
            raise ValueError(f"size must be (H, W) with sides >= 4, got {self.size!r}")
        object.__setattr__(self, "size", tuple(int(s) for s in self.size))

    def to_json(self) -> dict:
        return {**dataclasses.asdict(self), "size": list(self.size), "format": _FORMAT}

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
    """Reads, crops and resizes the frames, then runs Horn-Schunck in batches of ``batch_size``
    pairs (the last batch is padded, so there is one compilation)."""
    if not samples:
        raise ValueError("no samples to compute flows for")
    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:  # cv2 releases the GIL
        loaded = list(pool.map(lambda s: sample_frames(s, settings), samples))
    frames = np.stack([f for f, _ in loaded])  # [N, 3, H, W] uint8: onset, apex, augment
    notes = tuple(f"{s.source} ({s.clip}): {n}" for s, (_, n) in zip(samples, loaded) if n)
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
        uv = flow_lib.horn_schunck(
            a, b, smoothness=settings.smoothness, num_iter=settings.num_iter, variant=settings.variant
        )
        out[start:stop] = np.asarray(uv)[: stop - start]
        if progress:
            progress(f"flow {stop}/{n} pairs, {time.perf_counter() - t0:.1f} s")
    half = len(samples)
    return FlowSet(tuple(s.key for s in samples), out[:half], out[half:], settings, notes)


def cache_path(cache_dir: str | Path, name: str, settings: FlowSettings) -> Path:
    return Path(cache_dir) / f"flows-{name}-{settings.digest()}.npz"


def load_or_compute(
    samples: Sequence[Sample],
    settings: FlowSettings,
    cache_dir: str | Path,
    name: str,
    *,
    progress: Callable[[str], None] | None = log.info,
    batch_size: int = 128,
) -> tuple[FlowSet, bool]:
    """``(flows, hit)``: the cached flows when settings and samples match, else fresh ones
    (written to the cache, replacing a stale file)."""
    path = cache_path(cache_dir, name, settings)
    keys = [s.key for s in samples]
    if path.is_file():
        try:
            with np.load(path) as f:
                meta = json.loads(str(f["meta"]))
                if meta["settings"] == settings.to_json() and meta["keys"] == keys:
                    if progress:
                        progress(f"flows from cache {path}")
                    return FlowSet(tuple(keys), f["apex"], f["augment"], settings,
                                   tuple(meta["notes"])), True
        except (OSError, KeyError, ValueError) as e:
            log.warning("ignoring unreadable flow cache %s: %s", path, e)
        if progress:
            progress(f"flow cache {path} is for other samples or settings; recomputing")
    flows = compute(samples, settings, progress=progress, batch_size=batch_size)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"settings": settings.to_json(), "keys": keys, "notes": list(flows.notes)}
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, apex=flows.apex, augment=flows.augment, meta=json.dumps(meta))
    tmp.replace(path)
    return flows, False

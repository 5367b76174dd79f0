"""Flows of a list of samples, computed in batched jitted calls and cached on disk.

For each sample: the onset->apex flow (train and test) and the onset->apex+1 flow (the paper's
training augmentation; apex-1 where a clip ends at its apex). Frames are face crops
(:mod:`merjax.data.clips`: the database's, or aligned by :mod:`merjax.faces`) resized to
``settings.size`` before the flow, so the flow is at the network's input resolution.

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
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from merjax import batches, files
from merjax import flow as flow_lib
from merjax.data import clips
from merjax.data.sample import Sample
from merjax.errors import Interrupted
from merjax.faces import pipeline
from merjax.flow import FlowSettings

log = logging.getLogger(__name__)

_FORMAT = 3  # bump when what is stored changes (2: "augmented", nested flow settings; 3: TV-L1
# zooms with float64-exact resampling weights, flows differ from 2 by ~1e-5)


@dataclasses.dataclass(frozen=True)
class FlowSet:
    """Flows aligned with a sample list: onset->apex (``apex``) and onset->apex+1 (``augmented``,
    the paper's training augmentation), each ``[N, H, W, 2]``."""

    keys: tuple[str, ...]
    apex: np.ndarray
    augmented: np.ndarray
    settings: FlowSettings
    notes: tuple[str, ...] = ()

    def take(self, index: Sequence[int]) -> FlowSet:
        """The flows of the samples at ``index`` (a subset, in that order; ``notes`` kept)."""
        index = np.asarray(index, int)
        keys = tuple(self.keys[i] for i in index)
        return FlowSet(keys, self.apex[index], self.augmented[index], self.settings, self.notes)


def sample_frames(sample: Sample, settings: FlowSettings) -> tuple[np.ndarray, str]:
    """``([3, H, W] uint8, note)``: the onset, apex and augmentation frames of ``sample`` as the
    flows see them (cropped as ``settings.crop`` says, resized to ``settings.size``)."""
    return clips.clip_frames(sample, [sample.onset, sample.apex, sample.augment_frame], settings)


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
    loaded, said = [], t0
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:  # cv2 releases the GIL
        for i, got in enumerate(pool.map(lambda s: sample_frames(s, settings), samples), 1):
            loaded.append(got)
            # reading and face alignment can take minutes: a line every 5 s
            if progress and time.perf_counter() - said > 5 and i < len(samples):
                said = time.perf_counter()
                progress(f"reading clips {i}/{len(samples)}, {said - t0:.0f} s")
    frames = np.stack([f for f, _ in loaded])  # [N, 3, H, W] uint8: onset, apex, augment
    notes = _notes(
        [(f"{s.source} ({s.clip})", n) for s, (_, n) in zip(samples, loaded, strict=True)]
    )
    if progress:
        progress(f"read {len(samples)} clips in {time.perf_counter() - t0:.1f} s")
    first = np.concatenate([frames[:, 0], frames[:, 0]])
    second = np.concatenate([frames[:, 1], frames[:, 2]])
    n = len(first)
    out = np.empty((n, *settings.size, 2), np.float32)
    done = 0
    try:
        for b in batches.padded(np.arange(n), min(batch_size, n)):
            uv = flow_lib.compute(
                first[b.index], second[b.index], settings.method, **settings.params()
            )
            out[b.real] = np.asarray(uv)[: b.count]
            done = b.stop
            if progress:
                progress(f"flow {b.stop}/{n} pairs, {time.perf_counter() - t0:.1f} s")
    except KeyboardInterrupt:
        raise Interrupted(
            f"interrupted while computing the flows ({done} of {n} pairs; flows are cached only "
            "when all are done): rerun the same command to compute them again"
        ) from None
    half = len(samples)
    return FlowSet(tuple(s.key for s in samples), out[:half], out[half:], settings, notes)


def _notes(noted: list[tuple[str, str]]) -> tuple[str, ...]:
    """Each clip's note, except the Haar fallback of faces without landmarks (every drawn
    synthetic face), which is one line for all the clips it happened to."""
    unaligned = [w for w, n in noted if n.startswith(pipeline.UNALIGNED)]
    out = [f"{w}: {n}" for w, n in noted if n and not n.startswith(pipeline.UNALIGNED)]
    if unaligned:
        out.append(
            f"{len(unaligned)} clip(s) show no face with landmarks on their onset frame (drawn "
            f"faces, or faces dlib cannot fit): OpenCV's Haar box crops them, unaligned (e.g. "
            f"{unaligned[0]})"
        )
    return tuple(out)


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
            h.update(f"{s.key}:{n}:{s.bit_depth}:".encode())  # how the bytes become intensities
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
                if meta.get("format") != _FORMAT:
                    reason = "is in an older format"
                elif meta["settings"] != settings.to_json() or meta["keys"] != keys:
                    reason = "is for other samples or settings"
                elif meta["frames"] != digest:
                    reason = "was computed from frames that have changed since"
                else:
                    flows = FlowSet(
                        tuple(keys), f["apex"], f["augmented"], settings, tuple(meta["notes"])
                    )
                    say(f"flows from cache {path}")
                    return flows, True
        except Exception as e:  # a truncated or damaged file: BadZipFile, CRC errors, EOF, ...
            reason = f"is unreadable ({type(e).__name__}: {e})"
        say(f"flow cache {path} {reason}; recomputing")
    flows = compute(samples, settings, progress=progress, batch_size=batch_size)
    meta = {
        "format": _FORMAT,
        "settings": settings.to_json(),
        "keys": keys,
        "frames": digest,
        "notes": list(flows.notes),
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        files.savez(path, apex=flows.apex, augmented=flows.augmented, meta=json.dumps(meta))
    except OSError as e:  # a cache: the run goes on with the flows it has
        reason = os.strerror(e.errno).lower() if e.errno else str(e)
        warning = f"cannot write the flow cache {path} ({reason}); going on without it"
        say(f"warning: {warning}") if progress else log.warning(warning)
    return flows, False

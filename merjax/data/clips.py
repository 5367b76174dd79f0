"""A clip's frames as the flows see them: the database's face crops, or raw frames through the
face pipeline (:mod:`merjax.faces.pipeline`) by the flow settings, resized to their size."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from merjax.data.frames import read_gray
from merjax.data.sample import Sample
from merjax.errors import DataError
from merjax.faces import align, boxes, pipeline
from merjax.flow import FlowSettings

log = logging.getLogger(__name__)


def _read(sample: Sample, numbers: Sequence[int]) -> list[np.ndarray]:
    imgs = [read_gray(sample.frame_path(n), sample.bit_depth) for n in numbers]
    if len({i.shape for i in imgs}) > 1:
        raise DataError(
            f"{sample.source} ({sample.clip}): frames {list(numbers)} differ in size "
            f"{[i.shape for i in imgs]}"
        )
    return imgs


def clip_frames(
    sample: Sample, numbers: Sequence[int], settings: FlowSettings
) -> tuple[np.ndarray, str]:
    """``([N, H, W] uint8, note)``: frames ``numbers`` of ``sample`` (the first is its onset or
    the frame the face is looked for on), cropped as ``settings`` say and resized.

    ``smoothed`` alignment averages each frame's transform over its neighbours in the video
    (``settings.faces.smooth`` frames, those the clip has), so those frames are read too."""
    numbers = list(numbers)
    size = settings.size
    if settings.crop == "none" or sample.cropped:
        return np.stack([boxes.crop_resize(i, None, size) for i in _read(sample, numbers)]), ""
    face = settings.faces
    where = repr(str(sample.frame_path(numbers[0])))
    if face.mode != "smoothed":
        imgs = _read(sample, numbers)
        out, note = pipeline.prepare(imgs, size, face, where)
    else:
        have = dict(sample.frames)
        half = face.smooth // 2
        wanted = sorted(
            {m for n in numbers for m in range(n - half, n + half + 1) if m in have} | set(numbers)
        )
        wanted = [numbers[0]] + [m for m in wanted if m != numbers[0]]  # the face's frame first
        imgs = _read(sample, wanted)
        geometry = pipeline.fit(imgs, size, face, where, mode="frame")
        note = "; ".join(geometry.notes)
        pos = {m: i for i, m in enumerate(wanted)}
        if geometry.transforms is None:
            out = pipeline.crops([imgs[pos[n]] for n in numbers], size, geometry)
        else:
            Ms = geometry.transforms
            near = [[pos[m] for m in range(n - half, n + half + 1) if m in pos] for n in numbers]
            smoothed = np.stack([Ms[idx].mean(0) for idx in near])
            out = np.stack(
                [align.warp(imgs[pos[n]], M, size) for n, M in zip(numbers, smoothed, strict=True)]
            )
    if note:  # the Haar fallback is expected of drawn faces: the flow cache counts it once
        level = logging.DEBUG if note.startswith(pipeline.UNALIGNED) else logging.WARNING
        log.log(level, "%s (%s)", note, sample.source)
    return out, note

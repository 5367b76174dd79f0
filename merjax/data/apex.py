"""Finding an apex the annotation lacks: the frame of largest flow from the onset."""

from __future__ import annotations

import numpy as np

from merjax import flow as flow_lib
from merjax.data import clips
from merjax.data.sample import Sample
from merjax.errors import DataError
from merjax.flow import FlowSettings


def max_flow_apex(
    sample: Sample,
    *,
    size: tuple[int, int] = (64, 64),
    smoothness: float = 1.0,
    num_iter: int = 50,
    variant: str = "matlab",
) -> int:
    """The frame in (onset, offset) whose flow from the onset has the largest mean magnitude.

    Only frames whose successor exists are candidates (the apex+1 flow needs it). Frames are
    face-cropped as for training and flows come from one batched call.
    """
    have = dict(sample.frames)
    candidates = [n for n in range(sample.onset + 1, sample.offset) if n in have and n + 1 in have]
    if not candidates:
        raise DataError(f"{sample.source} ({sample.clip}): no frames between onset and offset")
    imgs, _ = clips.clip_frames(sample, [sample.onset, *candidates], FlowSettings(size=size))
    onset = np.broadcast_to(imgs[:1], imgs[1:].shape)
    uv = flow_lib.horn_schunck(
        onset, imgs[1:], smoothness=smoothness, num_iter=num_iter, variant=variant
    )
    magnitude = np.asarray(flow_lib.representation(uv, "mag")).reshape(len(candidates), -1)
    return candidates[int(magnitude.mean(axis=1).argmax())]

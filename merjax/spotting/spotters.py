"""Spotters as values: each is a :class:`Spotter`, a small NamedTuple of functions (fit on
training videos, score a video, intervals from its scores), as :mod:`merjax.train.strategies`
builds a training strategy and optax a gradient transformation. Callers loop over the spotters
a config names; none tests a name to decide what to do.

    spotter = build("learned", SpotSettings(), LearnedSettings())
    fitted, info = spotter.fit(prepared_videos, folds)    # folds: subject groups held out
    for video in prepared_videos:
        result = spotter.intervals(spotter.score(fitted, video), video)

A video reaches the spotters as a :class:`PreparedVideo`: its face crops, the training-free
signal and the flow maps the learned spotter reads, computed once for every spotter. ``fit``
trains leave-one-subject-out over the ``folds`` (all folds at once, with the vmapped trainer),
and ``score`` gives a video the scores of the run that never saw its subject, so no spotted
interval comes from a model that trained on that video.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from merjax.data import unlabelled
from merjax.data.intervals import KINDS
from merjax.data.longvideo import LongVideo
from merjax.spotting import learned as learned_lib
from merjax.spotting import signal
from merjax.train import Execution


@dataclasses.dataclass(frozen=True)
class PreparedVideo:
    """A long video as the spotters read it."""

    video: LongVideo
    frames_FxHxW: np.ndarray  # uint8 face crops at SpotSettings.size
    signals: dict[str, np.ndarray]  # per kind, the training-free signal [F]
    features_FxHxWxC: np.ndarray | None  # the learned spotter's maps, micro and macro k
    ks: dict[str, int]  # per kind, frames between the two frames of a flow
    note: str  # what reading it noticed (no face on its first frame, frames without a face)
    regions: str = signal.REGIONS_FROM[False]  # where its facial regions came from
    eyes: dict[str, np.ndarray] | None = None  # per kind, the eyes' motion [F] (blinks)


Scores = dict[str, np.ndarray]  # per kind, a score per frame [F]


class Spotter(NamedTuple):
    """A way to spot micro- and macro-expression intervals in long videos."""

    name: str
    feature_size: int  # side of the flow maps it reads per frame (0: none)
    # (videos, folds: groups of subjects, each held out by one run) -> (fitted, what fitting
    # did); fitted None: it cannot be fitted on these videos (the info says why)
    fit: Callable[[Sequence[PreparedVideo], Sequence[Sequence[str]]], tuple[Any, dict]]
    # (fitted, video) -> the video's scores, from a run that held its subject out
    score: Callable[[Any, PreparedVideo], Scores]
    # (scores, video) -> its intervals (frame numbers), signals, thresholds and peaks
    intervals: Callable[[Scores, PreparedVideo], signal.SpotResult]


def training_free(spot: signal.SpotSettings) -> Spotter:
    """Motion over facial regions, peaks above a threshold relative to the video's own signal
    and above its noise floor (:mod:`merjax.spotting.signal`); a macro peak that rises within
    the micro k is micro."""

    def fit(videos, folds):
        return (), {}

    def score(_, video: PreparedVideo) -> Scores:
        return video.signals

    def intervals(scores: Scores, video: PreparedVideo) -> signal.SpotResult:
        numbers = video.video.numbers
        return signal.intervals_from(
            scores,
            video.ks,
            spot.threshold,
            numbers,
            spot.micro_ratio,
            noise_margin=spot.noise_margin,
            min_motion=spot.least_motion(),
            eyes=video.eyes,
            blink_ratio=spot.blink_ratio,
        )

    return Spotter("training-free", 0, fit, score, intervals)


def learned(
    spot: signal.SpotSettings,
    settings: learned_lib.LearnedSettings = learned_lib.LearnedSettings(),
    execution: Execution = Execution(),
    *,
    progress: Callable[[str], None] | None = None,
) -> Spotter:
    """A SOFTNet-like network on the flow maps (:mod:`merjax.spotting.learned`), trained
    leave-one-subject-out; its class probabilities, peak-picked with the same threshold rule
    (the kinds as the network says, no rule between them), where the motion signal clears the
    video's noise floor."""

    def fit(videos, folds):
        subjects = {v.video.subject for v in videos}
        if any(subjects <= set(g) for g in folds):  # a run with nothing to train on
            return None, {"why": "not trained: leave-one-subject-out needs two subjects or more"}
        scores, summary = learned_lib.held_out_scores(
            [v.features_FxHxWxC for v in videos],
            [v.video.numbers for v in videos],
            [v.video.intervals for v in videos],
            [v.video.subject for v in videos],
            [v.ks for v in videos],
            folds,
            settings,
            execution,
            progress=progress,
        )
        return {_key(v): s for v, s in zip(videos, scores, strict=True)}, summary

    def score(fitted, video: PreparedVideo) -> Scores:
        return fitted[_key(video)]

    def intervals(scores: Scores, video: PreparedVideo) -> signal.SpotResult:
        # Its peaks need motion too: where the motion signal stays under the video's noise
        # floor, the network's score has nothing to have seen.
        return signal.intervals_from(
            scores,
            video.ks,
            settings.threshold,
            video.video.numbers,
            motion=video.signals,
            noise_margin=spot.noise_margin,
            min_motion=spot.least_motion(),
            eyes=video.eyes,
            blink_ratio=spot.blink_ratio,
        )

    return Spotter("learned", settings.feature_size, fit, score, intervals)


def _key(video: PreparedVideo) -> tuple[str, str]:
    return video.video.database, video.video.name


NAMES = ("training-free", "learned")
"""The spotters :func:`build` makes."""


def build(
    name: str,
    spot: signal.SpotSettings,
    settings: learned_lib.LearnedSettings = learned_lib.LearnedSettings(),
    execution: Execution = Execution(),
    *,
    progress: Callable[[str], None] | None = None,
) -> Spotter:
    """The spotter called ``name`` (:data:`NAMES`) with these settings (``progress``: where
    training says how far it is)."""
    if name == "training-free":
        return training_free(spot)
    if name == "learned":
        return learned(spot, settings, execution, progress=progress)
    raise ValueError(f"no spotter {name!r}; expected one of {list(NAMES)}")


def prepare(video: LongVideo, spot: signal.SpotSettings, feature_size: int) -> PreparedVideo:
    """Reads a video's face crops and computes, in one pass of jitted flows per kind, the
    training-free signal and (with ``feature_size``) the learned spotter's maps. Frames that show
    no face are left out of the video, as frames missing from it are (no interval spans them)."""
    images = unlabelled.file_frames(video.folder) if unlabelled.is_file_video(video) else None
    crops = signal.read_frames(
        video.paths(),
        spot.size,
        where=video.name,
        face=spot.flow.faces,
        fps=video.fps,
        images=images,
    )
    if len(crops.kept) < len(video.frames):  # frames without a face: skipped, as frames missing
        video = dataclasses.replace(video, frames=tuple(video.frames[i] for i in crops.kept))
    frames, note = crops.frames_FxHxW, crops.note
    ks = spot.ks(video.fps)
    signals, eyes, maps = {}, {}, []
    for kind in KINDS:
        motion, features = signal.motion(
            frames, ks[kind], spot, feature_size=feature_size, regions=crops.regions
        )
        signals[kind] = signal.signal(motion, spot, ks[kind])
        eyes[kind] = signal.eye_signal(motion, ks[kind])
        maps.append(features)
    features = np.concatenate(maps, -1) if feature_size else None
    regions = signal.REGIONS_FROM[crops.regions is not None]
    return PreparedVideo(video, frames, signals, features, ks, note, regions, eyes)

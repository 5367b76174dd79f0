"""One database's long videos through every configured spotter, then spot-then-recognise: what
the spotting experiment reports, as library code a notebook can call. Every step trains
(leave-one-subject-out), hence the name of its entry point.

    spot = SpotSettings()
    chosen = [spotters.build(n, spot, LearnedSettings()) for n in spotters.NAMES]
    runs, info = pipeline.train_and_spot(videos, chosen, spot, RecogniseSettings())
    metrics.scores([(r.spotted["learned"], r.video.intervals) for r in runs])
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence

from merjax.data.intervals import Interval
from merjax.data.longvideo import LongVideo
from merjax.spotting import signal, spot_then_recognise, spotters
from merjax.train import Execution


@dataclasses.dataclass
class VideoRun:
    """One video: by spotter, its spotting result and its spotted intervals with the recognised
    class of each micro one (a spotter that could not be fitted is absent)."""

    video: LongVideo
    results: dict[str, signal.SpotResult]
    spotted: dict[str, list[Interval]]
    note: str = ""
    regions: str = ""  # where its facial regions came from (landmarks, or fixed fractions)


def train_and_spot(
    videos: Sequence[LongVideo],
    chosen: Sequence[spotters.Spotter],
    spot: signal.SpotSettings,
    recognise: spot_then_recognise.RecogniseSettings,
    execution: Execution = Execution(),
    *,
    progress: Callable[[str], None] | None = None,
) -> tuple[list[VideoRun], dict]:
    """Every spotter of ``chosen`` on every video of one database, fitted leave-one-subject-out
    (one fold per subject), then spot-then-recognise on each spotter's micro intervals. Returns
    the runs and what each step did (``info[spotter name]``, ``info["recognition"]``)."""
    say = progress or (lambda _: None)
    t0 = time.perf_counter()
    feature_size = max((s.feature_size for s in chosen), default=0)
    prepared = []
    for i, v in enumerate(videos):
        prepared.append(spotters.prepare(v, spot, feature_size))
        say(f"{v.database}: video {i + 1}/{len(videos)} ({v.name}, {len(v.frames)} frames) read")
    info: dict = {"read_and_flow_s": round(time.perf_counter() - t0, 1)}
    folds = [[s] for s in sorted({v.subject for v in videos})]
    runs = [VideoRun(p.video, {}, {}, p.note, p.regions) for p in prepared]
    for spotter in chosen:
        fitted, what = spotter.fit(prepared, folds)
        if what:
            info[spotter.name] = what
        if fitted is None:
            continue
        for run, p in zip(runs, prepared, strict=True):
            run.results[spotter.name] = spotter.intervals(spotter.score(fitted, p), p)
    spotted, info["recognition"] = spot_then_recognise.recognise_spotted(
        [p.video for p in prepared],
        [p.frames_FxHxW for p in prepared],
        [{name: res.intervals for name, res in run.results.items()} for run in runs],
        recognise,
        execution,
        progress=progress,
    )
    for run, labelled in zip(runs, spotted, strict=True):
        run.spotted = labelled
    return runs, info

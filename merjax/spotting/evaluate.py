"""One database's long videos spotted both ways and their micro-expressions recognised: what
the spotting experiment reports, as library code a notebook can call.

    runs, info = evaluate.database(videos, SpotSettings(), LearnedSettings(), RecogniseSettings())
    metrics.scores([(r.spotted["learned"], r.video.intervals) for r in runs])
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Sequence

import numpy as np

from merjax import models
from merjax.data import emotions
from merjax.data.intervals import KINDS, Interval
from merjax.data.longvideo import LongVideo
from merjax.spotting import analysis, learned, signal
from merjax.train import Execution

SPOTTERS = ("training-free", "learned")


@dataclasses.dataclass
class VideoRun:
    """One video: its spotting results by spotter, and its spotted intervals with the
    recognised class of each micro one."""

    video: LongVideo
    results: dict[str, signal.SpotResult]
    spotted: dict[str, list[Interval]]
    note: str = ""


def prepare(video: LongVideo, spot: signal.SpotSettings, feature_size: int):
    """``(frames [T, S, S], learned features [T, f, f, 6], ks, note)`` of a video."""
    frames, _, note = signal.read_frames(video.paths(), spot.size, where=video.name)
    ks = {kind: spot.k(kind, video.fps) for kind in KINDS}
    motions, feats = {}, []
    for kind in KINDS:
        m, f = signal.motion(frames, ks[kind], spot, feature_size=feature_size)
        motions[kind] = signal.signal(m, spot, ks[kind])
        feats.append(f)
    return frames, motions, np.concatenate(feats, -1), ks, note


def database(
    videos: Sequence[LongVideo],
    spot: signal.SpotSettings,
    learn: learned.LearnedSettings,
    recognise: analysis.RecogniseSettings,
    execution: Execution = Execution(),
    *,
    progress: Callable[[str], None] | None = None,
) -> tuple[list[VideoRun], dict]:
    """Both spotters on every video of one database (the learned one leave-one-subject-out),
    then spot-then-recognize on each spotter's micro intervals. Returns the runs and what
    training did."""
    say = progress or (lambda _: None)
    t0 = time.perf_counter()
    prepared = []
    for i, v in enumerate(videos):
        prepared.append(prepare(v, spot, learn.feature_size))
        say(f"{v.database}: video {i + 1}/{len(videos)} ({v.name}, {len(v.frames)} frames) read")
    runs = []
    for v, (_, sig, _, ks, note) in zip(videos, prepared, strict=True):
        free = signal.intervals_from(sig, ks, spot.threshold, v.numbers, spot.micro_ratio)
        runs.append(VideoRun(v, {"training-free": free}, {}, note))
    info = {"read_and_flow_s": round(time.perf_counter() - t0, 1)}
    subjects = [v.subject for v in videos]
    if len(set(subjects)) >= 2:
        results, info["learned"] = learned.spot_loso(
            [p[2] for p in prepared],
            [v.numbers for v in videos],
            [v.intervals for v in videos],
            subjects,
            [p[3] for p in prepared],
            spot.threshold,
            learn,
            execution,
            progress=progress,
        )
        for run, res in zip(runs, results, strict=True):
            run.results["learned"] = res
    else:
        info["learned"] = "not trained: leave-one-subject-out needs two subjects or more"
    info["recognition"] = _recognise(runs, [p[0] for p in prepared], recognise, execution, say)
    return runs, info


def _recognise(runs, frames, settings, execution, say) -> dict:
    """Classifies every spotter's micro intervals with the runs that held their subject out
    (one training for both spotters)."""
    _, representation = models.by_name(settings.net)
    train_x, train_y, train_s = [], [], []
    test_x, test_s, owners = [], [], []
    for r, (run, fr) in enumerate(zip(runs, frames, strict=True)):
        pos = {n: i for i, n in enumerate(run.video.numbers)}
        classes_of = functools.partial(emotions.megc2019_class, run.video.database)
        micro = [
            g
            for g in run.video.intervals
            if g.kind == "micro" and classes_of(g.emotion) and g.onset in pos
        ]
        pairs = [(pos[g.onset], pos.get(g.apex, pos[g.onset])) for g in micro]
        train_x.append(analysis.inputs(fr, pairs, settings, representation))
        train_y += [analysis.CLASSES.index(classes_of(g.emotion)) for g in micro]
        train_s += [run.video.subject] * len(micro)
        for name, res in run.results.items():
            spotted = [i for i in res.intervals if i.kind == "micro"]
            pairs = [(pos[i.onset], pos[i.apex]) for i in spotted]
            test_x.append(analysis.inputs(fr, pairs, settings, representation))
            test_s += [run.video.subject] * len(spotted)
            owners.append((r, name, spotted))
    if len(set(train_s)) < 2 or len(set(train_y)) < 2:
        for run in runs:
            for name, res in run.results.items():
                run.spotted[name] = res.intervals
        return {"trained": False, "why": "fewer than two subjects or classes of labelled micro"}
    x = np.concatenate([a for a in train_x if len(a)])
    tx = np.concatenate([a for a in test_x if len(a)]) if test_s else x[:0]
    held, classes = analysis.recognise_loso(
        x, np.asarray(train_y), train_s, tx, test_s, settings, execution
    )
    start = 0
    for r, name, spotted in owners:
        named = analysis.label(spotted, classes[start : start + len(spotted)])
        start += len(spotted)
        others = [i for i in runs[r].results[name].intervals if i.kind != "micro"]
        runs[r].spotted[name] = sorted(named + others, key=lambda i: (i.onset, i.kind))
    say(f"recognition ({settings.net}) of the spotted micro intervals done")
    accuracy = float((held == np.asarray(train_y)).mean())
    return {"trained": True, "items": len(train_y), "held_out_accuracy_on_ground_truth": accuracy}

"""Spot-then-recognise: merjax's recognition networks run on spotted intervals, the apex at the
spotted peak, each subject's intervals classified by the run that never saw that subject.

The recognition network is trained leave-one-subject-out on the ground-truth micro-expressions
of the long videos (onset -> apex flow of the face crops, MEGC 2019's three classes,
:mod:`merjax.data.emotions`), keeping every run's state; a held-out subject's spotted micro
intervals are then classified with its run (:func:`merjax.train.predict_run`), never with one
that trained on that subject.

    spotted, info = recognise_spotted(videos, frames, spotted, RecogniseSettings())
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence

import jax
import numpy as np

from merjax import batches, models, train
from merjax import flow as flow_lib
from merjax.data import emotions
from merjax.data.intervals import Interval
from merjax.data.longvideo import LongVideo
from merjax.flow import FlowSettings
from merjax.train import Execution, TrainConfig

CLASSES = emotions.MEGC2019_CLASSES


@dataclasses.dataclass(frozen=True)
class RecogniseSettings:
    """The recognition network and its training (the paper's Vy-3CL by default)."""

    net: str = "vy-3cl"
    size: int = 16
    flow: FlowSettings = FlowSettings()
    train: TrainConfig = TrainConfig(epochs=20, batch_size=32, augment=False)

    def __post_init__(self):
        models.by_name(self.net, num_classes=len(emotions.MEGC2019_CLASSES))  # a known network
        if not isinstance(self.size, int) or self.size < 8:
            raise ValueError(f"size must be an integer >= 8, got {self.size!r}")


BATCH = 64  # pairs per flow call, the last padded: one compiled program for any count


def inputs(
    frames_FxHxW: np.ndarray,
    positions: Sequence[tuple[int, int]],
    settings: RecogniseSettings,
    representation: str,
) -> np.ndarray:
    """Network inputs ``[M, size, size, C]`` of the onset -> apex flows at frame positions
    ``(onset, apex)``, in padded batches of :data:`BATCH`."""
    channels = flow_lib.REPRESENTATIONS[representation]
    out = np.zeros((len(positions), settings.size, settings.size, channels), np.float32)
    pairs = np.asarray(positions, int).reshape(-1, 2)
    for b in batches.padded(pairs, BATCH):
        on, ap = b.index[:, 0], b.index[:, 1]
        uv = flow_lib.compute(
            frames_FxHxW[on], frames_FxHxW[ap], settings.flow.method, **settings.flow.params()
        )
        out[b.real] = np.asarray(flow_lib.input_maps(uv, settings.size, representation))[: b.count]
    return out


def recognise_loso(
    train_x: np.ndarray,
    train_labels: np.ndarray,
    train_subjects: Sequence[str],
    test_x: np.ndarray,
    test_subjects: Sequence[str],
    settings: RecogniseSettings,
    execution: Execution = Execution(),
    *,
    progress: Callable[[str], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(held-out predictions of the training items [N], predictions of the test items [M])``:
    one run per subject with labelled items; a test item is classified, averaged over seeds, by
    the runs that held its subject out (a subject with no labelled items: the runs trained on
    every labelled subject, which never saw it either)."""
    model, representation = models.by_name(settings.net, num_classes=len(CLASSES))
    subjects = sorted(set(train_subjects))
    # Test subjects without labelled items (unseen test videos) are classified by a run that
    # trained on every labelled subject.
    unseen = bool(set(test_subjects) - set(subjects))
    config = dataclasses.replace(settings.train, train_final=unseen)
    result = train.train_loso(
        model,
        train_x,
        None,
        np.asarray(train_labels),
        list(train_subjects),
        config,
        execution,
        groups=[[s] for s in subjects],
        keep_states=True,
        progress=progress,
    )
    plan = result.plan
    out = np.full(len(test_x), -1)
    test_x = np.asarray(test_x, np.float32)
    predict = jax.jit(functools.partial(train.predict_run, model=model))
    for s in sorted(set(test_subjects)):
        idx = np.flatnonzero(np.asarray(test_subjects) == s)
        runs = [r for r in range(plan.num_real) if plan.held_out[r] == (s,)] or [
            r for r in range(plan.num_real) if plan.held_out[r] == train.FINAL
        ]
        for b in batches.padded(idx, BATCH):  # one compiled program
            p = 0
            for r in runs:
                state = jax.tree.map(lambda a, r=r: a[r], result.states)
                logits = predict(state, test_x, b.index)
                p = p + jax.nn.softmax(np.asarray(logits), -1)
            out[idx[b.real]] = np.asarray(p)[: b.count].argmax(-1)
    return result.preds[0], out


def truth(intervals: Sequence[Interval], database: str) -> list[Interval]:
    """Ground-truth intervals of a ``database`` video with their emotion as MEGC 2019's class
    (``others`` when the word is none of the three), as spot-then-recognize compares them."""
    return [
        dataclasses.replace(i, emotion=emotions.megc2019_class(database, i.emotion) or "others")
        for i in intervals
    ]


def label(intervals: Sequence[Interval], classes: np.ndarray) -> list[Interval]:
    """``intervals`` with their ``emotion`` set to the predicted class names."""
    return [
        dataclasses.replace(i, emotion=CLASSES[int(c)] if c >= 0 else None)
        for i, c in zip(intervals, classes, strict=True)
    ]


def recognise_spotted(
    videos: Sequence[LongVideo],
    frames: Sequence[np.ndarray],
    spotted: Sequence[dict[str, list[Interval]]],
    settings: RecogniseSettings,
    execution: Execution = Execution(),
    *,
    progress: Callable[[str], None] | None = None,
) -> tuple[list[dict[str, list[Interval]]], dict]:
    """Classifies the spotted micro intervals of every video (``spotted[i]``: each spotter's
    intervals of video ``i``; ``frames[i]``: its face crops ``[F, H, W]``), training once for
    every spotter, leave-one-subject-out on the videos' ground-truth micro-expressions. Returns
    the intervals with each micro one's ``emotion`` set (the others as spotted), and what the
    training did. Fewer than two subjects or classes of labelled micro-expressions: nothing is
    classified, and the info says why."""
    say = progress or (lambda _: None)
    _, representation = models.by_name(settings.net)
    train_x, train_y, train_s = [], [], []
    test_x, test_s, owners = [], [], []
    for i, (video, frames_FxHxW) in enumerate(zip(videos, frames, strict=True)):
        pos = {n: t for t, n in enumerate(video.numbers)}
        classes = {g: emotions.megc2019_class(video.database, g.emotion) for g in video.intervals}
        micro = [g for g in video.intervals if g.kind == "micro" and classes[g] and g.onset in pos]
        pairs = [(pos[g.onset], pos.get(g.apex, pos[g.onset])) for g in micro]
        train_x.append(inputs(frames_FxHxW, pairs, settings, representation))
        train_y += [CLASSES.index(classes[g]) for g in micro]
        train_s += [video.subject] * len(micro)
        for name, found in spotted[i].items():
            micro_found = [x for x in found if x.kind == "micro"]
            pairs = [(pos[x.onset], pos[x.apex]) for x in micro_found]
            test_x.append(inputs(frames_FxHxW, pairs, settings, representation))
            test_s += [video.subject] * len(micro_found)
            owners.append((i, name, micro_found))
    out = [dict(s) for s in spotted]
    if len(set(train_s)) < 2 or len(set(train_y)) < 2:
        return out, {
            "trained": False,
            "why": "fewer than two subjects or classes of labelled micro",
        }
    x = np.concatenate([a for a in train_x if len(a)])
    tx = np.concatenate([a for a in test_x if len(a)]) if test_s else x[:0]
    held, predicted = recognise_loso(
        x, np.asarray(train_y), train_s, tx, test_s, settings, execution
    )
    start = 0
    for i, name, micro_found in owners:
        named = label(micro_found, predicted[start : start + len(micro_found)])
        start += len(micro_found)
        others = [x for x in spotted[i][name] if x.kind != "micro"]
        out[i][name] = sorted(named + others, key=lambda x: (x.onset, x.kind))
    say(f"recognition ({settings.net}) of the spotted micro intervals done")
    accuracy = float((held == np.asarray(train_y)).mean())
    return out, {
        "trained": True,
        "items": len(train_y),
        "held_out_accuracy_on_ground_truth": accuracy,
    }

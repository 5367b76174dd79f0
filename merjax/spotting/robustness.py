"""Spotting against what varies in real recordings: synthetic long videos whose generator
settings (:class:`merjax.data.synthetic_long.LongSpec`) are swept one at a time, both spotters
scored on each, the learned one trained once on a randomised mixture of settings (its own
videos and subjects), never on the setting it is scored on.

    sweep = Sweep()                                   # SWEEP's parameters and levels
    settings = sweep.settings()                       # [(name, {parameter: value}), ...]
    videos = load(cache_dir, base, settings, seed)    # {name: [LongVideo]}

A setting changes one parameter of the default (:data:`DEFAULT`); ``fps`` picks the layout
(30 fps: CAS(ME)^3 Part A's, 200 fps: SAMM Long Videos'). The no-expression settings
(:data:`NO_EXPRESSION`) hold no micro- or macro-expression at all: every spot in them is false.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np

from merjax import hosts
from merjax.data import longvideo, synthetic_long, unlabelled
from merjax.data.longvideo import LongVideo
from merjax.data.synthetic_long import LongSpec
from merjax.spotting import metrics

# Each parameter's levels; the default setting's value is among them (DEFAULT).
SWEEP: dict[str, tuple] = {
    "micro_amp": (0.5, 1.0, 2.0),
    "macro_amp": (0.5, 1.0, 2.0),
    "noise": (0.0, 2.0, 6.0),
    "drift": (0.0, 1.0, 4.0),
    "turn": (0.0, 3.0, 8.0),
    "blink_rate": (0.0, 1.0, 3.0),
    "density": (0.5, 1.0, 2.0),
    "fps": (30.0, 200.0),
    "flicker": (0.0, 0.02, 0.06),
    "faces": ("drawn", "photo"),
}
DEFAULT: dict = {
    "micro_amp": 1.0,
    "macro_amp": 1.0,
    "noise": 2.0,
    "drift": 1.0,
    "turn": 0.0,
    "blink_rate": 1.0,
    "density": 1.0,
    "fps": 30.0,
    "flicker": 0.0,
    "faces": "drawn",
}
# Videos with no expression: every spot in them is a false one.
_NONE = {"density": 0.0, "talk": False, "blink_rate": 0.0, "drift": 0.0, "noise": 0.0}
NO_EXPRESSION: dict[str, dict] = {
    "still": _NONE,
    "drift only": _NONE | {"drift": 1.0, "turn": 3.0},
    "blinks only": _NONE | {"blink_rate": 1.0},
    "noise only": _NONE | {"noise": 4.0},
}
FPS_LAYOUT = {30.0: "casme3", 200.0: "samm_lv"}


def _layout(fps: float) -> str:
    if fps not in FPS_LAYOUT:
        raise ValueError(f"fps must be one of {sorted(FPS_LAYOUT)}, got {fps!r}")
    return FPS_LAYOUT[fps]


def spec_of(base: LongSpec, setting: dict, seconds: float, subjects: int) -> tuple[LongSpec, str]:
    """``(spec, layout)`` of a setting: ``base`` with the setting's generator fields, videos of
    ``seconds`` (a fifth of it at 200 fps, which has 6.7 times the frames) and ``subjects``."""
    fields = {k: v for k, v in setting.items() if k != "fps"}
    db = _layout(float(setting.get("fps", 30.0)))
    length = seconds if db == "casme3" else seconds / 5
    spec = dataclasses.replace(base, subjects=subjects, seconds={db: length}, **fields)
    return spec, db


@dataclasses.dataclass(frozen=True)
class Sweep:
    """Which parameters are swept, and the mixture the learned spotter trains on."""

    parameters: tuple[str, ...] = tuple(SWEEP)
    seconds: float = 40.0  # per test video (at 200 fps, a fifth of it)
    subjects: int = 2  # test videos per setting, one subject each
    train_videos: int = 10  # the mixture: one subject each, settings drawn at random
    train_seconds: float = 40.0
    no_expression_seconds: float = 60.0

    def __post_init__(self):
        unknown = sorted(set(self.parameters) - set(SWEEP))
        if unknown or not self.parameters:
            raise ValueError(f"parameters: expected some of {list(SWEEP)}, got {unknown or '()'}")
        for name in ("seconds", "train_seconds", "no_expression_seconds"):
            if not getattr(self, name) >= 5.0:
                raise ValueError(f"{name} must be at least 5 s, got {getattr(self, name)!r}")
        if self.subjects < 1 or self.train_videos < 2:
            raise ValueError("subjects must be >= 1 and train_videos >= 2")

    def settings(self) -> list[tuple[str, dict]]:
        """``(name, setting)`` of every test setting: the default once, then each parameter's
        other levels."""
        out = [("default", dict(DEFAULT))]
        for p in self.parameters:
            for v in SWEEP[p]:
                if v != DEFAULT[p]:
                    out.append((f"{p}={v}", DEFAULT | {p: v}))
        return out

    def mixture(self, seed: int) -> list[tuple[str, dict]]:
        """The learned spotter's training videos: each its own setting, every parameter drawn
        at random over its swept range (numbers uniformly, categories by choice)."""
        rng = np.random.default_rng([seed, 41])
        out = []
        for i in range(self.train_videos):
            s = {}
            for p, levels in SWEEP.items():
                if isinstance(levels[0], str) or p == "fps":
                    s[p] = levels[int(rng.integers(len(levels)))]
                else:
                    s[p] = float(rng.uniform(min(levels), max(levels)))
            # Most of the mixture at 30 fps, the layouts' usual rate; every fifth at 200.
            s["fps"] = 200.0 if i % 5 == 4 else 30.0
            out.append((f"train{i}", s))
        return out


def load(
    cache_dir,
    base: LongSpec,
    settings: Sequence[tuple[str, dict]],
    *,
    seconds: float,
    subjects: int,
    seeds: Sequence[int],
    progress: Callable[[str], None] | None = None,
) -> dict[str, list[LongVideo]]:
    """Each setting's videos (written into ``cache_dir`` on first use; ``seeds[i]``: the
    generator's seed for setting i -- one seed for all test settings pairs them, the same faces
    and timelines with one thing changed), their subjects and names prefixed with the
    setting's name so that no two settings share a subject."""
    out = {}
    for i, (name, setting) in enumerate(settings):
        spec, db = spec_of(base, setting, seconds, subjects)
        roots = hosts.first(  # process 0 writes the videos, the others read them
            lambda: synthetic_long.ensure_spec(cache_dir, spec, seed=seeds[i], databases=(db,)),
            "writing the sweep's videos",
        )
        if spec.density:
            videos = longvideo.load(db, roots[db])
        else:  # no expression, so no annotation row names a video: every frame folder is one
            found, _ = unlabelled.find(roots[db], longvideo.FPS[db])
            videos = [dataclasses.replace(v, database=db) for v in found]
        out[name] = [
            dataclasses.replace(v, subject=f"{name}/{v.subject}", name=f"{name}/{v.name}")
            for v in videos
        ]
        if progress:
            progress(f"setting {i + 1}/{len(settings)} ({name}): {len(videos)} video(s)")
    return out


def scores(pairs: Sequence[tuple], minutes: float) -> dict:
    """Spotting scores of ``(spotted, truth)`` pairs, with false spots per minute of video."""
    s = metrics.scores(pairs)
    return s | {"false_per_minute": s["overall"]["fp"] / minutes if minutes else float("nan")}

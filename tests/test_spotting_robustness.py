"""Spotting that holds up on videos it was not tuned on: the head's motion taken off, blinks told
from expressions, lighting flicker matched, a floor that videos with no expression stay under,
and the robustness sweep end to end."""

from __future__ import annotations

import dataclasses
import json

import cv2
import jax.numpy as jnp
import numpy as np
import pytest

from merjax import runner
from merjax.data import render, synthetic_long
from merjax.spotting import robustness, signal, spotters

S = 24


def test_a_similarity_motion_of_the_head_is_taken_off_whole():
    yy, xx = np.mgrid[0:S, 0:S].astype(np.float32)
    dx, dy = xx - 9.0, yy - 14.0  # about a point that is not the face's centre
    head = np.stack([0.3 + 0.01 * dx - 0.02 * dy, -0.2 + 0.02 * dx + 0.01 * dy], -1)[None]
    support = jnp.asarray(signal.face_support(S))
    left = np.asarray(signal.take_off_head(jnp.asarray(head), support))
    assert np.abs(left).max() < 1e-4 < np.abs(head).max()
    # A local motion (a brow raised by 0.5 px) on top of it stays, and little spreads elsewhere.
    g = np.exp(-((xx - 0.3 * S) ** 2 + (yy - 0.28 * S) ** 2) / (2 * (0.08 * S) ** 2))
    brow = np.stack([0 * g, -0.5 * g], -1)[None]
    left = np.asarray(signal.take_off_head(jnp.asarray(head + brow), support))
    assert left[0, int(0.28 * S), int(0.3 * S), 1] < -0.4
    assert np.abs(left[0][g < 0.01]).max() < 0.05


def test_a_change_of_lighting_is_no_motion_once_brightness_is_matched():
    face = render.draw_face(np.random.default_rng(0), 64)
    first = cv2.resize(face, (S, S)).clip(0, 255).astype(np.uint8)
    brighter = np.clip(np.rint(first * 1.08), 0, 255).astype(np.uint8)
    moved = {}
    for match in (False, True):
        s = signal.SpotSettings(size=S, match_brightness=match)
        moved[match] = signal.motion_pairs(first[None], brighter[None], s)[0].max()
        assert signal.motion_pairs(first[None], first[None], s)[0].max() == 0.0
    assert moved[True] < 0.1 * moved[False]


def test_the_blink_rule_and_the_least_motion():
    assert signal.is_blink(0.9, 0.3, 2.0) and not signal.is_blink(0.5, 0.3, 2.0)
    assert not signal.is_blink(9.0, 0.3, None)
    still = np.zeros(300)
    assert signal.noise_floor(still, 6, 3.0) == 0.0  # no noise, no floor of its own
    assert signal.noise_floor(still, 6, 3.0, least=0.04) == 0.04
    assert signal.noise_floor(still, 6, None, least=0.04) == -np.inf
    assert signal.SpotSettings(size=32, min_motion=0.001).least_motion() == pytest.approx(0.032)
    for bad in ({"head": "ears"}, {"min_motion": 1.5}, {"blink_ratio": 0.0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            signal.SpotSettings(**bad)


@pytest.fixture(scope="module")
def quiet_videos(cache_dir):
    """The four videos with no expression, 20 s each at the tiny size."""
    return robustness.load(
        cache_dir,
        synthetic_long.SPECS["tiny"],
        list(robustness.NO_EXPRESSION.items()),
        seconds=20.0,
        subjects=1,
        seeds=[7] * len(robustness.NO_EXPRESSION),
    )


def _spots(video, spot) -> int:
    p = spotters.prepare(video, spot, 0)
    return len(spotters.training_free(spot).intervals(p.signals, p).intervals)


@pytest.mark.parametrize("name", list(robustness.NO_EXPRESSION))
def test_videos_with_no_expression_get_under_one_false_spot_a_minute(quiet_videos, name):
    (video,) = quiet_videos[name]
    assert not video.intervals
    minutes = len(video.frames) / video.fps / 60
    assert _spots(video, signal.SpotSettings()) / minutes < 1.0


@pytest.mark.parametrize(
    "name, without",
    [
        ("blinks only", {"blink_ratio": None}),
        ("drift only", {"head": "nose"}),
    ],
)
def test_the_rules_are_what_keeps_them_quiet(quiet_videos, name, without):
    """Without the blink rule blinks are spotted, and with the nose alone taken off a turning
    head is: the videos above test something."""
    (video,) = quiet_videos[name]
    assert _spots(video, dataclasses.replace(signal.SpotSettings(), **without)) > 0


def test_long_spec_parameters_are_checked_and_none_means_none(tmp_path):
    tiny = synthetic_long.SPECS["tiny"]
    for bad in ({"blink_rate": -1.0}, {"turn": 45.0}, {"flicker": float("nan")}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            dataclasses.replace(tiny, **bad)
    assert dataclasses.replace(tiny, faces="photo").max_turn() == 3.0 and tiny.max_turn() == 0.0
    with pytest.raises(ValueError, match="fps must be one of"):
        robustness.spec_of(tiny, {"fps": 60.0}, 10.0, 1)
    spec, db = robustness.spec_of(tiny, {"fps": 200.0, "noise": 4.0}, 10.0, 1)
    assert db == "samm_lv" and spec.seconds == {"samm_lv": 2.0} and spec.noise == 4.0
    sweep = robustness.Sweep(parameters=("noise", "fps"))
    names = [n for n, _ in sweep.settings()]
    assert names == ["default", "noise=0.0", "noise=6.0", "fps=200.0"]
    mix = sweep.mixture(0)
    assert mix == sweep.mixture(0) and len({json.dumps(s) for _, s in mix}) == len(mix)
    with pytest.raises(ValueError, match="parameters"):
        robustness.Sweep(parameters=("colour",))


@pytest.mark.slow
def test_the_robustness_experiment_end_to_end(tmp_path, cache_dir):
    out = tmp_path / "rb"
    summary = runner.run(
        "spotting_robustness", out, profile="tiny", cache_dir=cache_dir, progress=None
    )
    for spotter in spotters.NAMES:
        assert f"{spotter}/default" in summary["scores"]
        assert summary["no_expression_worst_per_minute"][spotter] < 1.0
    assert (out / "sweep_noise.png").stat().st_size > 10_000
    rows = (out / "robustness.csv").read_text().splitlines()
    assert rows[0].startswith("setting,spotter,f1_micro") and len(rows) == 1 + 3 * 2
    assert "no_expression" in (out / "report.md").read_text()

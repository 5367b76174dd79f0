"""The efficiency search: its declared space, the Pareto front, and one tiny run."""

from __future__ import annotations

import json

import pytest

from merjax import runner


@pytest.fixture(scope="module")
def efficiency():
    return runner.load(runner.experiments_dir() / "efficiency.py")


def test_the_space_is_declared_and_enumerated(efficiency):
    cands = efficiency.candidates(efficiency.SPACE)
    names = [c["net"] for c in cands]
    assert len(names) == len(set(names))  # no point twice (shuffle at depth 1 is the plain net)
    assert "vy-3cl" in names and "vxvystrain-4cl-shuffle-w24" in names
    assert not any("1cl-shuffle" in n for n in names)
    # Vy and strain (one channel each) share a program; Vx-Vy does not.
    programs = {c["net"]: c["program"] for c in cands}
    assert programs["vy-3cl-sep"] == programs["strain-3cl-sep"] != programs["vxvy-3cl-sep"]


def test_pareto_front_keeps_only_undominated_points(efficiency):
    points = [(1.0, 0.5), (2.0, 0.7), (2.0, 0.6), (3.0, 0.7), (0.5, 0.2)]
    assert efficiency.pareto(points) == [True, True, False, False, True]


@pytest.mark.slow
def test_tiny_search_writes_the_front_and_every_candidates_costs(tmp_path, cache_dir, tiny_db):
    workdir = tmp_path / "efficiency"
    runner.run("efficiency", workdir, profile="tiny", cache_dir=cache_dir, progress=None)
    summary = json.loads((workdir / "summary.json").read_text())
    assert (workdir / "pareto.png").stat().st_size > 0
    nets = {c["net"] for c in summary["candidates"]}
    assert {"vy-2cl", "strain-2cl-sep", "vy-3cl", "resnet8"} <= nets
    for c in summary["candidates"]:
        assert 0 <= c["uf1"] <= 1 and c["params"] > 0 and c["flops"] > 2 * 0
        assert c["latency_ms"] > 0 and c["latency_onnx_ms"] > 0
    assert any(c["front_params"] for c in summary["candidates"])
    assert summary["together"]["nets"] == ["vy-2cl", "strain-2cl"]
    assert summary["int8"]["n"] == summary["samples"]  # every clip held out once
    assert "No best network is named" in (workdir / "report.md").read_text()

"""The benchmark scripts: the GPU suite's code paths run on CPU in seconds (--smoke)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_suite_smoke_runs_every_part(tmp_path):
    """benchmarks/gpu_suite.sh --smoke runs the GPU suite's code paths on CPU with tiny shapes, so
    a lent GPU's time is not lost to a typo."""
    env = dict(os.environ, PYTHON=sys.executable, OUT_SMOKE=str(tmp_path / "smoke"))
    out = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_suite.sh"), "--smoke"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        cwd=tmp_path,
    )
    md = (tmp_path / "smoke" / "gpu_suite.md").read_text()
    assert out.returncode == 0, md + out.stderr
    for part in (
        "Horn-Schunck bandwidth",
        "Latency",
        "LOSO training programs",
        "Memory per run",
        "Spotting stream",
        "Several processes",
    ):
        assert f"## {part}" in md
    assert "FAILED" not in md and "% of copy" in md and "clips/s" in md and "fastest:" in md
    assert "paper protocol (2 epochs" in md and "GB per run" in md
    assert "spot+classify" in md and "frames/s" in md
    assert "2 processes x 1 device" in md and "ratio to 1 process" in md

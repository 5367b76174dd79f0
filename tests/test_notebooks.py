"""The Colab notebooks: committed without outputs, and they run end to end in the tiny profile."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "colab").glob("*.ipynb"))


def test_both_notebooks_are_there():
    assert {p.name for p in NOTEBOOKS} == {"quickstart.ipynb", "reproduce_paper.ipynb"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs_or_library_code(path):
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, (
                f"{path.name}: outputs not stripped"
            )
            src = "".join(cell["source"])
            assert "\ndef " not in f"\n{src}" and "\nclass " not in f"\n{src}", (
                f"{path.name}: library code in a cell"
            )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
@pytest.mark.slow
def test_runs_in_the_tiny_profile(path, tmp_path, monkeypatch, cache_dir, tiny_db):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    for k, v in {
        "MERJAX_PROFILE": "tiny",
        # One experiment of the paper (paper_run runs them all): the notebook's code is the same.
        "MERJAX_EXPERIMENT": "input_study",
        "MERJAX_WORKDIR": str(tmp_path / "runs"),
        "MERJAX_CACHE": str(cache_dir),  # the session's: its database and flows
        "MERJAX_ALLOW_SYNTHETIC": "1",
        "MERJAX_CASME2_ROOT": str(tmp_path / "no-casme2"),
        "MERJAX_SAMM_ROOT": str(tmp_path / "no-samm"),
        "MERJAX_SMIC_ROOT": str(tmp_path / "no-smic"),
        "MERJAX_CASME3_ROOT": str(tmp_path / "no-casme3"),
        "MERJAX_SAMM_LV_ROOT": str(tmp_path / "no-sammlv"),
        "MERJAX_CASME_SQ_ROOT": str(tmp_path / "no-casmesq"),
        "JAX_PLATFORMS": "cpu",
    }.items():
        monkeypatch.setenv(k, v)  # the kernel inherits this environment
    nb = nbformat.read(path, as_version=4)
    if path.stem == "quickstart":  # in a Jupyter kernel, as Colab runs it
        nbclient.NotebookClient(
            nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
        ).execute()
        text = "".join(
            o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs
        )
    else:  # every code cell in order in one namespace, in this process (see _run_cells)
        text = _run_cells(nb, tmp_path, monkeypatch)
    if path.stem == "quickstart":
        assert "Vy-3CL: accuracy" in text and "predicted:" in text
    else:
        assert "SYNTHETIC database" in text and "accuracy" in text
        assert (tmp_path / "runs" / "input_study-tiny" / "table4.md").is_file()
        assert (
            "STSTNet on TV-L1: UF1" in text
            and (tmp_path / "runs" / "megc2019-tiny" / "megc2019.md").is_file()
        )
        assert "3 classes: UF1" in text and "UAR CASME II -> SAMM" in text
        assert (tmp_path / "runs" / "holdout-tiny" / "lodo.md").is_file()
        assert "SYNTHETIC long videos" in text and "F1 overall" in text


def _run_cells(nb, folder, monkeypatch) -> str:
    """Runs a notebook's code cells top to bottom in one namespace, here, and returns what they
    printed. The reproduce notebook runs nine experiments in the tiny profile: in this process
    they reuse the programs the suite's own runs of them compiled, which a fresh kernel would
    compile again (about 25 s of the suite's 4 minutes). The notebooks use no IPython magic
    (ruff lints their cells as Python), so a kernel would run the same code; the quickstart
    notebook still runs in a real kernel."""
    import contextlib
    import io

    monkeypatch.chdir(folder)
    out = io.StringIO()
    namespace: dict = {"__name__": "__main__"}
    with contextlib.redirect_stdout(out):
        for i, cell in enumerate(nb.cells):
            if cell.cell_type == "code":
                exec(
                    compile(cell.source, f"{nb.metadata.get('name', 'notebook')} cell {i}", "exec"),
                    namespace,
                )  # noqa: S102
    return out.getvalue()

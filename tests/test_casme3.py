"""CAS(ME)^3 Part A as distributed, the composites built on it, and the casme3 and holdout
experiments (tiny profile)."""

from __future__ import annotations

import collections
import csv
import json
import re
import shutil
from pathlib import Path

import numpy as np
import openpyxl
import pytest

from merjax import runner
from merjax.data import casme3, composite, emotions, longvideo
from merjax.data.loading import Roots
from merjax.errors import DataError

from conftest import ANNOTATIONS

SHARED = ANNOTATIONS / "casme3"


def _rows(sheet) -> tuple[list[str], list[list]]:
    header = [c.value for c in sheet[1]]
    return header, [[c.value for c in r] for r in sheet.iter_rows(min_row=2)]


def test_synthetic_part_a_and_its_quirks(tiny_db):
    """The synthetic label file carries the official file's quirks: each is handled and said."""
    s = casme3.load(tiny_db / "CASME3")
    assert {x.dataset for x in s} == {"casme3"} and all(
        x.subject.startswith("casme3/spNO.") for x in s
    )
    assert len(s) + len(s.skipped) == s.rows["casme3"] == 10
    reasons = " ".join(p.reason for p in s.skipped)
    assert "offset 0" in reasons and "before onset" in reasons and "damaged" in reasons
    notes = " ".join(x.note for x in s)
    for said in ("is the folder", "frame apex+1", "set to the midpoint", "longer than a micro"):
        assert said in notes, said
    assert "bad quality" in notes
    # The emotion written 'Others' / 'Happy' is read as the lower-case emotion.
    assert {x.emotion for x in s} <= set(casme3.EMOTIONS)
    # Frame numbers were written as text in the label file; they are numbers here.
    assert all(isinstance(x.onset, int) and x.onset <= x.apex <= x.offset for x in s)


def test_class_sets_are_subsets_of_the_emotions(tiny_db):
    seven = composite.load("casme3-7", {"casme3": tiny_db / "CASME3"})
    four = composite.load("casme3-4", {"casme3": tiny_db / "CASME3"})
    three = composite.load("casme3-3", {"casme3": tiny_db / "CASME3"})
    assert len(four) == len(seven) and len(three) == sum(x.emotion != "others" for x in seven)
    for samples, k in ((seven, 7), (four, 4), (three, 3)):
        names = composite.class_labels(f"casme3-{k}")
        assert all(names[x.label] == x.class_name for x in samples)
        assert all(casme3.CLASS_SETS[k][x.emotion] == x.class_name for x in samples)
    with pytest.raises(ValueError, match="classes must be one of"):
        casme3.load(tiny_db / "CASME3", classes=5)


def test_three_class_composite_over_every_database(tiny_db):
    roots = {"smic": tiny_db / "SMIC", "casme2": tiny_db / "CASME2", "samm": tiny_db / "SAMM"}
    megc2019 = composite.megc2019(roots["smic"], roots["casme2"], roots["samm"])
    every = composite.three_class(roots | {"casme3": tiny_db / "CASME3"})
    assert [x.key for x in every][: len(megc2019)] == [x.key for x in megc2019]
    assert {x.dataset for x in every} == {"smic", "casme2", "samm", "casme3"}
    assert {x.class_name for x in every} == set(emotions.MEGC2019_CLASSES)
    with pytest.raises(ValueError, match="at least 2 of"):
        composite.load("three-class", {"casme2": tiny_db / "CASME2"})


def test_a_missing_onset_or_apex_frame_is_a_named_skip_or_an_error(db):
    s = casme3.load(db / "CASME3")
    victim = s[0]
    victim.apex_path.unlink()
    with pytest.raises(DataError, match=rf"{re.escape(victim.source)} .*apex frame"):
        casme3.load(db / "CASME3")
    skipped = casme3.load(db / "CASME3", on_error="skip")
    assert len(skipped) == len(s) - 1
    assert any(p.source == victim.source for p in skipped.skipped)


def test_bad_roots_and_label_files(db, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"no 'cas\(me\)3_part_A_ME_label_JpgIndex_v2.xlsx'"):
        casme3.load(tmp_path / "empty")
    path = db / "CASME3" / casme3.LABEL_FILE
    book = openpyxl.load_workbook(path)
    sheet = book[casme3.SHEET]
    sheet.delete_cols([c.value for c in sheet[1]].index("emotion") + 1)
    book.save(path)
    with pytest.raises(DataError, match=r"no column 'emotion' in the header row .*another version"):
        casme3.load(db / "CASME3")
    assert str(path) in _message(lambda: casme3.load(db / "CASME3"))
    shutil.rmtree(db / "CASME3" / "part_A")
    with pytest.raises(DataError, match="no frames in"):
        casme3.load(db / "CASME3")


def _message(call) -> str:
    try:
        call()
    except DataError as e:
        return str(e)
    raise AssertionError("no error")


def test_a_database_given_twice_and_roots_an_experiment_does_not_read(tmp_path):
    with pytest.raises(ValueError, match="--casme2_root and --casme3_root are the same folder"):
        Roots(casme2=tmp_path, casme3=tmp_path / ".")
    holdout = (composite.spec("megc2018"), composite.spec("three-class"))
    with pytest.raises(ValueError, match="--smic_root is not read"):
        Roots(casme2="/a", samm="/b", smic="/c").check(holdout[:1])
    Roots(casme2="/a", samm="/b", smic="/c").check(holdout)
    with pytest.raises(ValueError, match=r"needs --casme2_root and --samm_root"):
        Roots(casme3="/c").check(holdout)
    with pytest.raises(ValueError, match=r"--casme2_root is not read .*long videos"):
        Roots(casme2="/a", casme3="/c").check((longvideo.LONG_VIDEOS,))


def _fake_part_a(root: Path) -> None:
    """The official label file with an empty frame tree: the onset, apex, apex+1, offset and
    midpoint frames of every row, in lower-case video folders."""
    shutil.copy(SHARED / casme3.LABEL_FILE, root / casme3.LABEL_FILE)
    for row in casme3.read_labels(root / casme3.LABEL_FILE):
        folder = root / casme3.FRAMES / row.subject / row.video.lower() / "color"
        folder.mkdir(parents=True, exist_ok=True)
        mid = (row.onset + row.offset) // 2  # where an apex outside the interval goes
        for n in {row.onset, row.apex, row.apex + 1, row.offset, mid, mid + 1}:
            (folder / f"{n}.jpg").touch()


@pytest.mark.skipif(not SHARED.is_dir(), reason="MERJAX_ANNOTATIONS has no casme3/ folder")
def test_official_label_file(tmp_path):
    """The real file's 860 rows and emotions; every row loads or is a listed skip of a known
    error (an offset of 0 or before the onset)."""
    rows = casme3.read_labels(SHARED / casme3.LABEL_FILE)
    counts = collections.Counter(r.emotion for r in rows)
    assert counts == {
        "disgust": 250,
        "surprise": 187,
        "others": 161,
        "fear": 86,
        "anger": 64,
        "sad": 57,
        "happy": 55,
    }
    assert len({r.subject for r in rows}) == 94  # subjects with a micro-expression
    _fake_part_a(tmp_path)
    s = casme3.load(tmp_path, check=False)
    assert len(s) + len(s.skipped) == 860
    assert len(s.skipped) == 3 and all(
        "offset 0" in p.reason or "before onset" in p.reason for p in s.skipped
    )
    (apex_first,) = [x for x in s if x.clip.startswith("spNO.149/d/") and "midpoint" in x.note]
    assert apex_first.onset <= apex_first.apex <= apex_first.offset
    assert any("is the folder 'j'" in x.note for x in s)
    four = collections.Counter(
        x.class_name for x in composite.relabel(s, casme3.CLASS_SETS[4], casme3.CLASS_NAMES[4])
    )
    assert sum(four.values()) == len(s) and set(four) == set(casme3.CLASS_NAMES[4])
    three = composite.relabel(s, casme3.CLASS_SETS[3], casme3.CLASS_NAMES[3])
    assert len(three) == len(s) - four["others"]


@pytest.fixture(scope="module")
def casme3_run(tmp_path_factory, cache_dir, tiny_db) -> tuple[Path, dict]:
    workdir = tmp_path_factory.mktemp("casme3")
    summary = runner.run("casme3", workdir, profile="tiny", cache_dir=cache_dir, progress=None)
    return workdir, summary


@pytest.mark.slow
def test_casme3_experiment_end_to_end(casme3_run):
    """Every class set and configuration trains; summary.json has each class set's scores of the
    headline, and they are those of its pooled predictions."""
    w, s = casme3_run
    assert "uf1_4class" not in s  # the tiny profile runs two class sets
    for k in (3, 7):
        for key in ("uf1", "uar", "samples", "uf1_ci"):
            assert f"{key}_{k}class" in s
        row = s["configs"][f"vy-3cl-horn_schunck-{k}class"]
        assert s[f"uf1_{k}class"] == row["uf1"] and s[f"samples_{k}class"] == row["n"]
        assert 0 <= row["uf1_ci"][0] <= row["uf1_ci"][1] <= 1
    assert s["samples_7class"] >= s["samples_3class"]
    lines = [
        json.loads(x) for x in (w / "runs" / "vy-3cl-horn_schunck-3class" / "metrics.jsonl").open()
    ]
    pooled = [x for x in lines if x["kind"] == "pooled"]
    assert pooled[0]["all"]["uf1"] == pytest.approx(s["uf1_3class"])
    table = list(csv.DictReader(open(w / "casme3.csv")))
    assert len(table) == 2 and {r["classes"] for r in table} == {"3", "7"}
    report = (w / "report.md").read_text()
    assert "**The NOT VALID column is not a valid result.**" in report
    assert "Micron-BERT" in report and "no 3-class results there" in report
    # each published number in its own metric's column: 3 classes has only an accuracy
    md = (w / "casme3.md").read_text().splitlines()
    head = [c.strip() for c in md[2].strip("|").split("|")]
    three = next(
        [c.strip() for c in r.strip("|").split("|")] for r in md[4:] if r.startswith("| 3 ")
    )
    cells = dict(zip(head, three, strict=True))
    assert cells["Micron-BERT UF1 (published)"] == ""
    assert cells["Micron-BERT 'test accuracy' as listed (published; not a UF1)"] == "0.6125"
    published = list(csv.DictReader(open(w / "casme3_published.csv")))
    assert {r["classes"] for r in published} == {"7"}  # the run's sets that the source has
    assert any(r["method"].startswith("AlexNet (Li et al.)") for r in published)
    assert (w / "uf1_by_class_set.png").stat().st_size > 1000


@pytest.mark.slow
def test_holdout_experiment_end_to_end(tmp_path, cache_dir, tiny_db):
    """Trained on one database and tested on the other: each direction's scores are those of the
    samples of the tested database only; the matrix covers every pair but the diagonal."""
    s = runner.run("holdout", tmp_path, profile="tiny", cache_dir=cache_dir, progress=None)
    for a, b in (("casme2", "samm"), ("samm", "casme2")):
        assert s[f"uar_{a}_to_{b}"] == s["configs"][s["headline"]]["per_dataset"][b]["uar"]
        assert f"uf1_{a}_to_{b}" in s
    lines = [json.loads(x) for x in (tmp_path / "runs" / s["headline"] / "metrics.jsonl").open()]
    folds = [x for x in lines if x["kind"] == "fold"]
    assert len(folds) == 2 and {len(f["held_out"]) for f in folds} == {3}  # tiny: 3 + 3 subjects
    assert all(len({h.split("/")[0] for h in f["held_out"]}) == 1 for f in folds)
    matrix = s["lodo"]
    names = ["smic", "casme2", "samm", "casme3"]
    assert set(matrix) == set(names) | {"all others"}
    for src in names:
        assert set(matrix[src]) == set(names) - {src}
    assert set(matrix["all others"]) == set(names)
    report = (tmp_path / "report.md").read_text()
    assert "0.6988" in report and "training samples only" in report
    assert "| majority class of the training database |" in report
    assert "leave-one-database-out: " in report.split("Data: ", 1)[1].split("\n", 1)[0]
    uar = s["uar_casme2_to_samm"]
    assert s["line"].startswith(f"UAR CASME II → SAMM {uar:.3f}, UAR SAMM → CASME II")
    assert (tmp_path / "lodo_uf1.png").stat().st_size > 1000
    rows = list(csv.DictReader(open(tmp_path / "lodo.csv")))
    assert len(rows) == 4 * 3 + 4
    assert np.isfinite([float(r["uf1"]) for r in rows]).all()


def test_a_run_lists_the_skipped_rows_once_over_its_class_sets(tmp_path, cache_dir, tiny_db):
    """Before: reading CAS(ME)^3 for 3 and 7 classes printed each skipped row four times (the
    loader's warning and the summary's list, per class set); a note new to a class set stays."""
    import logging

    from merjax import context

    seen: list[str] = []
    cfg = runner.make_config("casme3", "tiny")
    ctx = context.Context(
        cfg, tmp_path, options=context.RunOptions(cache_dir=cache_dir), progress=seen.append
    )
    handler = logging.Handler()
    handler.emit = lambda r: seen.append(r.getMessage())
    logging.getLogger("merjax").addHandler(handler)
    try:
        for k in (3, 7):
            ctx.derive(composite=f"casme3-{k}").data()
    finally:
        logging.getLogger("merjax").removeHandler(handler)
    lines = "\n".join(seen).splitlines()
    skipped = [x for x in lines if "row 8 (c)" in x]
    assert len(skipped) == 1, skipped
    assert sum("samples, 3 subjects" in x and x.startswith("casme3:") for x in lines) == 2
    assert any("row 6 (spNO.194/b/913)" in x for x in lines)  # only in the 7-class set

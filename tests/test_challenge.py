"""The MEGC challenge's unseen-test protocol: test videos as handed out, the submission files,
and the scorer that reads them back."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from merjax import runner
from merjax.data import submission, synthetic_long, unlabelled
from merjax.data.intervals import Interval
from merjax.errors import DataError
from merjax.spotting import score


def _frames(folder, names, side=32):
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        cv2.imwrite(str(folder / n), np.full((side, side), 128, np.uint8))


def _avi(path, fps, n=5):
    path.parent.mkdir(parents=True, exist_ok=True)
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (32, 32))
    for _ in range(n):
        w.write(np.full((32, 32, 3), 100, np.uint8))
    w.release()


def test_test_videos_are_found_as_the_challenge_hands_them_out(tmp_path):
    _frames(tmp_path / "cas/spNO.1/a/color", [f"{i}.jpg" for i in range(4)])
    _frames(tmp_path / "cas/spNO.1/a/depth", [f"{i}.png" for i in range(4)])  # not a video
    _frames(tmp_path / "samm/007_6", [f"007_6_{i:05d}.jpg" for i in (3, 4, 5, 9, 10)])
    _avi(tmp_path / "clips/x.avi", 30.0)
    videos, notes = unlabelled.find(tmp_path, 30.0)
    by = {v.name: v for v in videos}
    assert sorted(by) == ["cas/spNO.1/a", "clips/x", "samm/007_6"]
    assert by["samm/007_6"].numbers == [3, 4, 5, 9, 10]  # numbers as the files carry them
    assert by["cas/spNO.1/a"].numbers == [0, 1, 2, 3]
    assert by["clips/x"].numbers == list(range(5)) and unlabelled.is_file_video(by["clips/x"])
    assert len(list(unlabelled.file_frames(by["clips/x"].folder))) == 5
    assert any("samm/007_6: 1 gap" in n for n in notes)
    assert all(v.fps == 30.0 and not v.intervals for v in videos)
    assert len({v.subject for v in videos}) == 3


def test_bad_test_roots_are_one_line_each(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no video"):
        unlabelled.find(tmp_path / "empty")
    _avi(tmp_path / "rates/a.avi", 30.0)
    _avi(tmp_path / "rates/b.avi", 200.0)
    with pytest.raises(DataError, match=r"frame rates \[30.0, 200.0\].*give --test_fps"):
        unlabelled.find(tmp_path / "rates")
    videos, notes = unlabelled.find(tmp_path / "rates", 200.0)
    assert {v.fps for v in videos} == {200.0} and "a: 30" in notes[0]
    shutil.rmtree(tmp_path / "rates")
    _frames(tmp_path / "folder/v", ["1.jpg", "2.jpg"])
    with pytest.raises(DataError, match="carry no frame rate: give --test_fps"):
        unlabelled.find(tmp_path / "folder")
    _avi(tmp_path / "one/a.avi", 30.0)
    assert unlabelled.find(tmp_path / "one")[0][0].fps == 30.0  # a file states its rate


def test_submission_files_round_trip_and_bad_truth_is_refused(tmp_path):
    videos = {
        "s1/a": [Interval(5, 9, "micro", 7, "positive"), Interval(20, 60, "macro", 30)],
        "s2": [Interval(1, 3, "micro", 2, "surprise")],
    }
    path = submission.write(tmp_path / "str.csv", videos, emotion=True)
    text = path.read_text().splitlines()
    assert text[0] == "vid,pred_onset,pred_offset,type,emotion"
    assert text[1:3] == ["s1/a,5,9,me,positive", "s1/a,20,60,mae,"]
    back = submission.read(path)
    assert [(i.onset, i.offset, i.kind, i.emotion) for i in back["s1/a"]] == [
        (5, 9, "micro", "positive"),
        (20, 60, "macro", None),
    ]
    truth = submission.write(tmp_path / "truth.csv", videos, truth=True)
    assert truth.read_text().startswith("vid,onset,offset,type\n")
    assert set(submission.read(truth)) == {"s1/a", "s2"}
    (tmp_path / "other.csv").write_text("video,start,end,label\nv,1,2,me\n")
    with pytest.raises(DataError, match=r"other.csv'.*columns video,start,end,label; expected"):
        submission.read(tmp_path / "other.csv")
    (tmp_path / "type.csv").write_text("vid,pred_onset,pred_offset,type\nv,1,2,micro\n")
    with pytest.raises(DataError, match="row 2: type 'micro'"):
        submission.read(tmp_path / "type.csv")
    (tmp_path / "back.csv").write_text("vid,onset,offset,type\nv,9,2,me\n")
    with pytest.raises(DataError, match="row 2: offset 2 is before onset 9"):
        submission.read(tmp_path / "back.csv")


def test_the_scorer_lists_unknown_vids_as_false_positives_and_scores_each_rule(tmp_path, capsys):
    truth = {"v1": [Interval(0, 9, "micro"), Interval(8, 17, "micro")]}
    pred = {"v1": [Interval(0, 17, "micro")], "ghost": [Interval(0, 5, "macro")]}
    submission.write(tmp_path / "t.csv", truth, truth=True)
    submission.write(tmp_path / "p.csv", pred)
    assert score.main([f"--truth={tmp_path / 't.csv'}", f"--pred={tmp_path / 'p.csv'}"]) == 0
    out = capsys.readouterr().out
    assert "1 vid(s) of the prediction are not in the truth" in out and "ghost" in out
    r = score.score(truth, pred)
    assert (r["micro"]["tp"], r["micro"]["fp"], r["micro"]["fn"]) == (1, 0, 1)  # one to one
    assert r["macro"]["fp"] == 1 and r["unknown"] == ["ghost"]
    # The STRS script counts every pair above 0.5 (the one spot matches both truths at IoU
    # 10/18) and skips videos without truth (the ghost's false spot is not counted).
    s = score.score(truth, pred, "strs-script")
    assert s["micro"]["tp"] == 2 and s["macro"]["fp"] == 0
    (tmp_path / "bad.csv").write_text("vid,start,stop,type\n")
    assert score.main([f"--truth={tmp_path / 'bad.csv'}", f"--pred={tmp_path / 'p.csv'}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "bad.csv" in err[0]


def test_flags_of_the_challenge_are_refused_elsewhere(tmp_path):
    with pytest.raises(ValueError, match="--test_root is read only by .*challenge"):
        runner.run("spotting", tmp_path / "w", profile="tiny", test_root=tmp_path)
    with pytest.raises(ValueError, match="--test_fps without --test_root"):
        runner.run("challenge", tmp_path / "w", profile="tiny", test_fps=30.0)


@pytest.mark.slow
def test_challenge_writes_a_submission_the_scorer_scores_as_the_experiment_did(
    tmp_path, cache_dir, long_db, capsys
):
    s = runner.run("challenge", tmp_path, profile="tiny", cache_dir=cache_dir, progress=None)
    folder = tmp_path / "submission"
    spotting, strs = folder / "spotting.csv", folder / "str.csv"
    assert spotting.read_text().startswith("vid,pred_onset,pred_offset,type\n")
    assert strs.read_text().startswith("vid,pred_onset,pred_offset,type,emotion\n")
    assert "Trained on the synthetic long videos" in (folder / "README.md").read_text()
    rows = submission.read(strs)
    assert sum(len(v) for v in rows.values()) == sum(s["spots"].values())
    assert {i.emotion for v in rows.values() for i in v if i.kind == "micro"} <= {
        "negative",
        "positive",
        "surprise",
    }
    held = synthetic_long.ensure_unlabelled(cache_dir, size="tiny")
    truth = held / synthetic_long.TRUTH_FILES["str"]
    assert score.main([f"--truth={truth}", f"--pred={strs}", "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    for kind in ("micro", "macro", "overall"):
        assert again[kind]["f1"] == pytest.approx(s["scores"]["merjax"][kind]["f1"])
    assert (again["strs"] is None) == (s["scores"]["merjax"]["strs"] is None)

"""Loaders, the composites, the synthetic writer and the flow cache."""

from __future__ import annotations

import collections
import hashlib
import shutil
from pathlib import Path

import cv2
import numpy as np
import openpyxl
import pytest

from merjax import baselines, flow, runner
from merjax.data import (
    cache,
    casme2,
    casme3,
    clips,
    composite,
    emotions,
    frames,
    samm,
    smic,
    synthetic,
)
from merjax.data.sample import SampleList
from merjax.errors import DataError
from merjax.faces import FaceSettings, pipeline
from merjax.flow import FlowSettings, HornSchunckSettings, TVL1Settings

from conftest import ANNOTATIONS, edit_cell, needs_annotations

TINY = synthetic.SPECS["tiny"]


_edit = edit_cell


# --------------------------------------------------------------------------- synthetic round trip


def test_synthetic_round_trip_counts(tiny_db):
    s = composite.megc2018(tiny_db / "CASME2", tiny_db / "SAMM")
    by = collections.Counter((x.dataset, x.label) for x in s)
    for c in range(5):
        assert by[("casme2", c)] == TINY.casme2_counts[c]
        assert by[("samm", c)] == TINY.samm_counts[c]
    assert len({x.subject for x in s if x.dataset == "casme2"}) == TINY.casme2_subjects
    assert len({x.subject for x in s if x.dataset == "samm"}) == TINY.samm_subjects
    assert all(x.subject.startswith(x.dataset + "/") for x in s)
    assert {x.class_name for x in s} == {"I", "II", "III", "IV", "V"}
    assert not s.skipped
    notes = " ".join(x.note for x in s)
    assert "apex '/'" in notes and "apex == offset" in notes
    # Classes VI/VII are in the spreadsheets but not in the composite.
    assert any(x.label >= 5 for x in casme2.load(tiny_db / "CASME2"))


def test_synthetic_frames_and_layouts(tiny_db):
    c = casme2.load(tiny_db / "CASME2")
    assert all(x.cropped for x in c)
    assert all(Path(p).name.startswith("reg_img") for x in c for _, p in x.frames)
    s = samm.load(tiny_db / "SAMM")
    assert not any(x.cropped for x in s)
    pads = {len(Path(p).stem.split("_")[1]) for x in s for _, p in x.frames}
    assert pads == {4, 5}, "the synthetic SAMM must vary its zero padding like the real one"
    img = frames.read_gray(s[0].onset_path)
    assert img.shape == TINY.samm_frame


def test_synthetic_is_deterministic(tmp_path):
    def digest(root: Path) -> str:
        h = hashlib.sha256()
        for p in sorted(root.rglob("*.jpg")):
            h.update(p.relative_to(root).as_posix().encode() + p.read_bytes())
        for p in sorted(root.rglob("*.xlsx")):
            for ws in openpyxl.load_workbook(p).worksheets:
                h.update(repr(list(ws.iter_rows(values_only=True))).encode())
        return h.hexdigest()

    synthetic.write(tmp_path / "a", size="tiny", seed=3)
    synthetic.write(tmp_path / "b", size="tiny", seed=3)
    synthetic.write(tmp_path / "c", size="tiny", seed=4)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert digest(tmp_path / "a") != digest(tmp_path / "c")


def test_synthetic_refuses_nonempty_out(tiny_db, capsys):
    with pytest.raises(FileExistsError):
        synthetic.write(tiny_db, size="tiny")
    with pytest.raises(SystemExit):
        synthetic._main(["--out", str(tiny_db), "--size", "tiny"])
    assert "exists" in capsys.readouterr().err


def test_synthetic_ensure_reuses(tmp_path):
    a = synthetic.ensure(tmp_path, size="tiny", seed=0)
    stamp = a["casme2"].parent / "synthetic.json"
    mtime = stamp.stat().st_mtime_ns
    b = synthetic.ensure(tmp_path, size="tiny", seed=0)
    assert a == b and stamp.stat().st_mtime_ns == mtime


def test_synthetic_is_learnable_not_trivial(tiny_db, tmp_path):
    # The full-size figures (about 70% against 47%) are in the README; here: the tiny set is
    # above the majority class and below perfect.
    r = synthetic.baseline(
        {"casme2": tiny_db / "CASME2", "samm": tiny_db / "SAMM"}, tmp_path, kind="vxvy"
    )
    assert r["majority"] < r["nearest_class_mean"] < 1.0


# --------------------------------------------------------------------------- quirks and policies


def test_frame_numbers_ignore_padding():
    assert frames.frame_number("006_05562.jpg") == 5562
    assert frames.frame_number("006_5562.jpg") == 5562
    assert frames.frame_number("reg_img46.jpg") == 46
    assert frames.frame_number("image0100231.bmp") == 100231
    assert frames.frame_number("notes.jpg") is None


def test_duplicate_frame_numbers_are_an_error(tmp_path):
    for name in ("img5.jpg", "img05.jpg"):
        (tmp_path / name).write_bytes(b"")
    with pytest.raises(DataError, match="share number 5"):
        frames.index_frames(tmp_path)


def test_apex_policies(tiny_db):
    mid = casme2.load(tiny_db / "CASME2", apex_policy="midpoint")
    mx = casme2.load(tiny_db / "CASME2", apex_policy="max_flow")
    (a,) = [x for x in mid if "apex '/'" in x.note]
    (b,) = [x for x in mx if "apex '/'" in x.note]
    assert a.clip == b.clip and a.apex == (a.onset + a.offset) // 2
    assert a.onset < b.apex < b.offset and "largest mean flow" in b.note
    # max_flow is what it says: no other candidate has a larger mean flow magnitude.
    cands = [n for n in range(b.onset + 1, b.offset) if n + 1 in dict(b.frames)]
    imgs, _ = clips.clip_frames(b, [b.onset, *cands], FlowSettings(size=(64, 64)))
    uv = flow.horn_schunck(np.broadcast_to(imgs[:1], imgs[1:].shape), imgs[1:], num_iter=50)
    mags = np.asarray(flow.representation(uv, "mag")).reshape(len(cands), -1).mean(1)
    assert cands[int(mags.argmax())] == b.apex
    with pytest.raises(ValueError, match="apex_policy"):
        casme2.load(tiny_db / "CASME2", apex_policy="first")


def test_samm_frames_directly_under_root(db):
    before = samm.load(db / "SAMM")
    for p in (db / "SAMM" / "SAMM").iterdir():
        p.rename(db / "SAMM" / p.name)
    (db / "SAMM" / "SAMM").rmdir()
    after = samm.load(db / "SAMM")
    assert [x.key for x in after] == [x.key for x in before]


def test_casme2_raw_frames_use_face_detection(db):
    """Raw 640x480-style frames: the face is found on the onset frame; a frame with no face
    falls back to the whole frame and says so."""
    cropped = db / "CASME2" / "Cropped"
    raw = db / "CASME2" / "CASME2_RAW_selected"
    for p in cropped.rglob("reg_img*.jpg"):
        face = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
        big = np.full((face.shape[0] * 2, face.shape[1] * 2), 40, np.uint8)
        big[10 : 10 + face.shape[0], 20 : 20 + face.shape[1]] = face
        out = raw / p.relative_to(cropped).parent / p.name.replace("reg_", "")
        out.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(out), big)
    shutil.rmtree(cropped)
    s = casme2.load(db / "CASME2")
    assert s and not any(x.cropped for x in s)
    onset = frames.read_gray(s[0].onset_path)
    fit = pipeline.fit([onset], (64, 64), FaceSettings(), repr(str(s[0].onset_path)))
    assert fit.box is not None and "no face found" not in " ".join(fit.notes)
    x, y, w, h = fit.box
    assert abs(x - 20) < 0.3 * w and abs(y - 10) < 0.3 * h
    blank = np.full((96, 96), 128, np.uint8)
    cv2.imwrite(str(s[0].onset_path), blank)
    _, msg = clips.clip_frames(s[0], [s[0].onset, s[0].apex], FlowSettings(size=(32, 32)))
    assert "no face found" in msg and str(s[0].onset_path) in msg


def test_explicit_frames_choice(db):
    with pytest.raises(DataError, match="CASME2_RAW_selected"):
        casme2.load(db / "CASME2", frames="raw")
    with pytest.raises(ValueError, match="frames must be"):
        casme2.load(db / "CASME2", frames="both")


# --------------------------------------------------------------------------- bad input


def test_missing_spreadsheet_names_what_was_looked_for(db, tmp_path):
    (db / "CASME2" / casme2.OBJECTIVE).unlink()
    with pytest.raises(DataError, match="CASME2-ObjectiveClasses.xlsx"):
        composite.megc2018(db / "CASME2", db / "SAMM")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no 'SAMM_Micro_FACS_Codes_v2.xlsx' in .*empty"):
        samm.load(tmp_path / "empty")
    with pytest.raises(DataError, match="not a folder"):
        samm.load(tmp_path / "nowhere")


def _first(db, loader, **kw):
    return loader(db, **kw)[0]


def test_missing_apex_frame(db):
    s = casme2.load(db / "CASME2")[0]
    s.apex_path.unlink()
    with pytest.raises(DataError, match=rf"row \d+ \({s.clip}\): apex frame {s.apex}"):
        casme2.load(db / "CASME2")
    kept = casme2.load(db / "CASME2", on_error="skip")
    assert s.clip not in [x.clip for x in kept]
    assert [p.clip for p in kept.skipped] == [s.clip]
    assert f"apex frame {s.apex}" in kept.summary()


def test_unreadable_image(db):
    s = samm.load(db / "SAMM")[1]
    s.onset_path.write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match=f"cannot decode image .*{s.onset_path.name}"):
        samm.load(db / "SAMM")
    assert (
        len(samm.load(db / "SAMM", check=False)) == len(samm.load(db / "SAMM", on_error="skip")) + 1
    )


def test_frames_of_different_sizes(db):
    s = casme2.load(db / "CASME2")[0]
    cv2.imwrite(str(s.apex_path), np.zeros((7, 9), np.uint8))
    with pytest.raises(DataError, match="differ in size"):
        casme2.load(db / "CASME2")


@pytest.mark.parametrize(
    "column, value, message",
    [
        ("ApexFrame", 10_000, "need onset <= apex <= offset"),
        ("OnsetFrame", "abc", "OnsetFrame is 'abc', not a frame number"),
        ("ApexFrame", None, "ApexFrame is None"),
    ],
)
def test_bad_casme2_cells(db, column, value, message):
    clip = casme2.load(db / "CASME2")[2].clip
    row = _edit(db / "CASME2" / casme2.CODING, clip, column, value)
    with pytest.raises(DataError, match=rf"{casme2.CODING} row {row}.*{message}"):
        casme2.load(db / "CASME2")
    kept = casme2.load(db / "CASME2", on_error="skip")
    assert [p.source for p in kept.skipped] == [f"{casme2.CODING} row {row}"]


def test_bad_samm_cells(db):
    clip = samm.load(db / "SAMM")[0].clip
    row = _edit(db / "SAMM" / samm.CODES, clip, "Objective Classes", 9)
    with pytest.raises(DataError, match=rf"row {row}: objective class 9 is not 1-7"):
        samm.load(db / "SAMM")
    row = _edit(db / "SAMM" / samm.CODES, clip, "Objective Classes", 1)
    row = _edit(db / "SAMM" / samm.CODES, clip, "Apex Frame", 1)
    with pytest.raises(DataError, match=rf"row {row}.*need onset <= apex"):
        samm.load(db / "SAMM")


def test_missing_clip_folder_and_class(db):
    s = casme2.load(db / "CASME2")[0]
    shutil.rmtree(s.onset_path.parent)
    with pytest.raises(DataError, match="clip folder .* does not exist"):
        casme2.load(db / "CASME2")
    _edit(db / "CASME2" / casme2.OBJECTIVE, s.clip, "Filename", "renamed")
    with pytest.raises(DataError, match=f"{s.clip} is not in {casme2.OBJECTIVE}"):
        casme2.load(db / "CASME2")


def test_spreadsheet_without_header(tmp_path):
    book = openpyxl.Workbook()
    book.active.append(("a", "b"))
    book.save(tmp_path / samm.CODES)
    with pytest.raises(DataError, match="no header row"):
        samm.load(tmp_path)
    (tmp_path / samm.CODES).write_bytes(b"garbage")
    with pytest.raises(DataError, match="cannot read spreadsheet"):
        samm.load(tmp_path)


def test_on_error_is_checked(tiny_db):
    with pytest.raises(ValueError, match="on_error"):
        casme2.load(tiny_db / "CASME2", on_error="ignore")


def test_sample_list_keeps_skips_through_filter_and_add():
    a = SampleList([], ["x"])
    b = SampleList([], ["y"])
    assert (a + b).skipped == ["x", "y"] and (a + b).filter(lambda s: True).skipped == ["x", "y"]


# --------------------------------------------------------------------------- real spreadsheets


def _fake_tree(root: Path) -> None:
    """The official spreadsheets with empty frame files where the frames would be."""
    (root / "CASME2").mkdir(parents=True)
    (root / "SAMM").mkdir()
    (root / "SMIC").mkdir()
    for name in (casme2.CODING, casme2.OBJECTIVE):
        shutil.copy(ANNOTATIONS / name, root / "CASME2")
    shutil.copy(ANNOTATIONS / samm.CODES, root / "SAMM")
    shutil.copy(ANNOTATIONS / smic.ANNOTATION, root / "SMIC")
    for row in list(
        openpyxl.load_workbook(ANNOTATIONS / casme2.CODING)
        .worksheets[0]
        .iter_rows(values_only=True)
    )[1:]:
        d = root / "CASME2" / "Cropped" / f"sub{row[0]}" / row[1]
        d.mkdir(parents=True, exist_ok=True)
        for f in range(row[3], row[5] + 1):
            (d / f"reg_img{f}.jpg").touch()
    ws = openpyxl.load_workbook(ANNOTATIONS / samm.CODES).worksheets[0]
    for row in list(ws.iter_rows(values_only=True))[14:]:
        d = root / "SAMM" / "SAMM" / row[0] / row[1]
        d.mkdir(parents=True, exist_ok=True)
        for f in (row[3], row[4], row[4] + 1):
            (d / f"{row[0]}_{f:05d}.jpg").touch()
    for row in list(
        openpyxl.load_workbook(ANNOTATIONS / smic.ANNOTATION)["HS"].iter_rows(values_only=True)
    )[1:]:
        if row[0] is None:
            continue
        d = root / "SMIC" / "HS" / f"s{row[0]}" / "micro" / row[16] / row[1]
        d.mkdir(parents=True, exist_ok=True)
        for f in range(row[3], row[3] + row[12]):
            (d / f"image{f:07d}.bmp").touch()


@needs_annotations
def test_official_spreadsheets(tmp_path):
    _fake_tree(tmp_path)
    s = composite.megc2018(tmp_path / "CASME2", tmp_path / "SAMM", check=False)
    assert len(s) == 253 and len({x.subject for x in s}) == 47
    counts = collections.Counter((x.dataset, x.class_name) for x in s)
    assert [counts[("casme2", c)] for c in composite.MEGC2018_CLASSES] == [25, 15, 99, 26, 20]
    assert [counts[("samm", c)] for c in composite.MEGC2018_CLASSES] == [24, 13, 20, 8, 3]
    assert len({x.subject for x in s if x.dataset == "casme2"}) == 26
    (slash,) = [x for x in s if "apex '/'" in x.note]
    assert (slash.subject, slash.clip, slash.apex) == ("casme2/sub04", "EP12_01f", 291)
    assert majority_share(s) == pytest.approx(0.470, abs=5e-4)

    m = composite.megc2019(tmp_path / "SMIC", tmp_path / "CASME2", tmp_path / "SAMM", check=False)
    per = collections.Counter(x.dataset for x in m)
    assert (per["smic"], per["casme2"], per["samm"]) == (157, 147, 133)
    assert len({x.subject for x in m}) == 68
    smic_sample = next(x for x in m if x.clip == "s20_ne_01")
    assert (smic_sample.onset, smic_sample.offset) == (17581039, 17581039 + 17 - 1)


def majority_share(samples) -> float:
    labels = np.array([x.label for x in samples])
    return float((labels == np.bincount(labels).argmax()).mean())


# --------------------------------------------------------------------------- flow cache


def test_cache_hit_and_miss(tiny_db, tmp_path):
    s = composite.megc2018(tiny_db / "CASME2", tiny_db / "SAMM")
    settings = FlowSettings(size=(24, 24), horn_schunck=HornSchunckSettings(num_iter=5))
    seen = []
    a, hit = cache.load_or_compute(
        s, settings, tmp_path, "tiny", progress=seen.append, batch_size=8
    )
    assert not hit and a.apex.shape == (len(s), 24, 24, 2) and a.augmented.shape == a.apex.shape
    assert any("flow" in m and "pairs" in m for m in seen)
    b, hit = cache.load_or_compute(s, settings, tmp_path, "tiny")
    assert hit and np.array_equal(a.apex, b.apex) and np.array_equal(a.augmented, b.augmented)
    _, hit = cache.load_or_compute(
        s,
        FlowSettings(size=(24, 24), horn_schunck=HornSchunckSettings(num_iter=6)),
        tmp_path,
        "tiny",
    )
    assert not hit
    _, hit = cache.load_or_compute(s[1:], settings, tmp_path, "tiny")
    assert not hit, "another sample list must not reuse the file"
    cache.cache_path(tmp_path, "tiny", settings).write_bytes(b"corrupt")
    c, hit = cache.load_or_compute(s, settings, tmp_path, "tiny")
    assert not hit and np.array_equal(c.apex, a.apex)


def test_cache_matches_direct_flow(tiny_db):
    s = samm.load(tiny_db / "SAMM")[:3]
    settings = FlowSettings(
        size=(32, 32),
        horn_schunck=HornSchunckSettings(num_iter=7, variant="classic", smoothness=0.5),
    )
    got = cache.compute(s, settings, progress=None, batch_size=2)
    for i, x in enumerate(s):
        f, _ = clips.clip_frames(x, [x.onset, x.apex, x.augment_frame], settings)
        want = flow.horn_schunck(f[0], f[1], smoothness=0.5, num_iter=7, variant="classic")
        np.testing.assert_allclose(got.apex[i], want, atol=1e-6)
        want = flow.horn_schunck(f[0], f[2], smoothness=0.5, num_iter=7, variant="classic")
        np.testing.assert_allclose(got.augmented[i], want, atol=1e-6)


def test_flow_settings_are_checked():
    with pytest.raises(ValueError, match="variant"):
        HornSchunckSettings(variant="farneback")
    with pytest.raises(ValueError, match="size"):
        FlowSettings(size=(2, 64))


def test_nearest_class_mean_baseline():
    """Held-out subjects never enter the class means. Subject A's one sample (x=10, class 0) is
    far from class 0's other sample (x=0): honestly it is nearer class 1's mean (3.93) and
    predicted 1; a version that leaks A into the means puts class 0's mean at 5 and predicts 0.
    1-D, so standardisation cannot change which mean is nearest."""
    x = np.array([[10.0], [0.0], [4.0], [4.0], [3.8]])
    y = np.array([0, 0, 1, 1, 1])
    subjects = np.array(["A", "B", "B", "C", "C"])
    np.testing.assert_array_equal(
        baselines.nearest_class_mean_loso(x, y, subjects, 2), [1, 1, 1, 1, 1]
    )
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 8)
    x = np.eye(3)[y] * 5 + rng.normal(0, 0.1, (24, 3))
    subjects = np.tile(np.arange(4), 6)
    assert (baselines.nearest_class_mean_loso(x, y, subjects, 3) == y).all()
    assert (baselines.majority_class(np.array([0, 2, 2]), 2) == 2).all()


def test_tvl1_flows_in_the_cache(tiny_db, tmp_path):
    """FlowSettings carry the method and its parameters; the cache keys on them."""
    s = composite.megc2018(tiny_db / "CASME2", tiny_db / "SAMM")[:4]
    tv = FlowSettings(size=(16, 16), method="tvl1")
    hs = FlowSettings(size=(16, 16))
    assert (
        tv.digest()
        != hs.digest()
        != FlowSettings(size=(16, 16), method="tvl1", tvl1=TVL1Settings(num_iter=5)).digest()
    )
    a, hit = cache.load_or_compute(s, tv, tmp_path, "tiny", progress=None)
    frames0, _ = cache.sample_frames(s[0], tv)
    np.testing.assert_allclose(a.apex[0], flow.tvl1(frames0[0], frames0[1]), atol=1e-4)
    b, _ = cache.load_or_compute(s, hs, tmp_path, "tiny", progress=None)
    assert not np.allclose(a.apex, b.apex)
    assert FlowSettings.from_json(tv.to_json()) == tv
    with pytest.raises(ValueError, match="flow method"):
        FlowSettings(method="farneback")


def test_flow_settings_of_older_model_folders():
    """Model folders of merjax before the methods' parameters were nested (format 1: Horn-Schunck's
    at the top level), before TV-L1 (no method) and before the face pipeline (format 2: a Haar box
    on the first frame) read as the settings they were."""
    old = {"variant": "classic", "smoothness": 0.5, "num_iter": 7, "size": [32, 32], "format": 1}
    got = FlowSettings.from_json(old | {"crop": "none"})
    assert got == FlowSettings(
        size=(32, 32),
        crop="none",
        horn_schunck=HornSchunckSettings(variant="classic", smoothness=0.5, num_iter=7),
        faces=FaceSettings(detector="haar", align="box"),
    )
    two = {k: v for k, v in FlowSettings().to_json().items() if k != "faces"} | {"format": 2}
    assert FlowSettings.from_json(two).faces.mode == "box"
    assert FlowSettings.from_json(two).faces.detector == "haar"
    tv = FlowSettings(method="tvl1", tvl1=TVL1Settings(num_iter=5))
    assert FlowSettings.from_json(tv.to_json()) == tv and tv.params()["num_iter"] == 5


def test_emotion_words_have_one_megc2019_class_each():
    """The one table of emotion words: a word in two classes of a database (a copy edited in
    one place only), CASME II's fear counted as negative (MEGC 2019 leaves it out) or a case
    mismatch ('Contempt' in SAMM's file) would each relabel samples wrongly."""
    for database, classes in emotions.WORDS.items():
        words = [w for ws in classes.values() for w in ws]
        assert len(words) == len(set(words)), database
        assert set(classes) == set(emotions.MEGC2019_CLASSES)
    assert emotions.megc2019_class("samm", "Contempt") == "negative"
    assert emotions.megc2019_class("casme2", "fear") is None
    assert emotions.megc2019_class("casme3", "others") is None
    assert casme3.CLASS_SETS[3] == emotions.megc2019("casme3")


def _clips_csv(tmp_path: Path, tiny_db: Path) -> tuple[Path, list]:
    """The tiny MEGC 2018 clips written as one's own CSV: CASME II's folders relative to the
    CSV (through a link), SAMM's absolute."""
    samples = composite.megc2018(tiny_db / "CASME2", tiny_db / "SAMM")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "casme2").symlink_to(tiny_db / "CASME2" / "Cropped")
    lines = ["Subject,Clip,Onset,Apex,Offset,Label,Cropped,Dataset"]
    for s in samples:
        folder = Path(s.folder)
        clip = f"casme2/{folder.parent.name}/{folder.name}" if s.dataset == "casme2" else folder
        lines.append(
            f"{s.subject.split('/')[1]},{clip},{s.onset},{s.apex},{s.offset},"
            f"{s.class_name},{int(s.cropped)},{s.dataset}"
        )
    path = tmp_path / "mine" / "clips.csv"
    path.write_text("\n".join(lines) + "\n")
    return path, samples


def test_ones_own_clips_load_from_a_csv_as_the_databases_do(tmp_path, tiny_db):
    """A CSV of (subject, clip, onset, apex, offset, label) gives the clips the official
    spreadsheets give, in any folder layout; bad rows are errors naming the file and row."""
    from merjax.data import clip_table

    path, official = _clips_csv(tmp_path, tiny_db)
    mine = composite.load("csv", {"csv": path.parent})  # a folder holding clips.csv
    assert [(s.subject, s.onset, s.apex, s.offset, s.class_name) for s in mine] == [
        (s.subject, s.onset, s.apex, s.offset, s.class_name) for s in official
    ]

    def frames(samples):
        return [[(n, Path(p).resolve()) for n, p in s.frames] for s in samples]

    assert frames(mine) == frames(official)  # the same files, through the link
    assert clip_table.class_names(mine) == tuple(sorted({s.class_name for s in official}))
    text = path.read_text().splitlines()
    for bad, message in [
        (["Subject,Clip,Onset,Apex,Label"] + text[1:], r"clips.csv': no column offset"),
        ([text[0], text[1].replace(",casme2/", ",nowhere/", 1)], r"clips.csv row 2: clip folder"),
        (
            [text[0], ",".join(text[1].split(",")[:2] + ["x"] + text[1].split(",")[3:])],
            "row 2: onset is 'x'",
        ),
        ([text[0], text[1].replace(",1,casme2", ",maybe,casme2")], "row 2: cropped is 'maybe'"),
    ]:
        path.write_text("\n".join(bad) + "\n")
        with pytest.raises(DataError, match=message):
            clip_table.load(path)
    path.write_text("\n".join(text) + "\n")
    with pytest.raises(DataError, match=r"row 2: label '\w+' is not one of the classes \['z'\]"):
        clip_table.load(path, classes=["z"])
    with pytest.raises(DataError, match="holds no clips.csv"):
        clip_table.load(tmp_path)


def test_an_experiment_runs_on_ones_own_csv(tmp_path, tiny_db, cache_dir):
    """--csv_root with --set=composite=csv: the experiment trains on the CSV's clips, with its
    labels as the classes; without the root, one line says what to give."""
    path, official = _clips_csv(tmp_path, tiny_db)
    s = runner.run(
        "class_average_flow",
        tmp_path / "w",
        profile="tiny",
        overrides=["composite=csv"],
        csv_root=path,
        cache_dir=cache_dir,
        progress=None,
    )
    assert s["samples"] == len(official) and str(path.parent) in s["data"]
    with pytest.raises(ValueError, match="give --csv_root"):
        runner.run(
            "class_average_flow",
            tmp_path / "w2",
            profile="tiny",
            overrides=["composite=csv"],
            cache_dir=cache_dir,
            progress=None,
        )

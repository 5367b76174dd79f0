"""Long videos as distributed, the two spotters, the stream and its command line."""

from __future__ import annotations

import collections
import csv
import json

import cv2
import numpy as np
import pytest

from merjax import predict, runner
from merjax.data import longvideo, synthetic_long
from merjax.data.intervals import Interval
from merjax.errors import DataError
from merjax.flow import FlowSettings
from merjax.spotting import learned, pipeline, signal, spot_then_recognise, spotters, stream
from merjax.train import TrainConfig

from conftest import ANNOTATIONS

SHARED = ANNOTATIONS / "casme3"


# --------------------------------------------------------------------------- long videos


def test_synthetic_long_videos_in_the_three_layouts(long_db):
    spec = synthetic_long.SPECS["tiny"]
    for db in longvideo.LOADERS:
        videos = longvideo.load(db, long_db[db])
        assert len(videos) == spec.subjects and not videos.missing
        for v in videos:
            assert v.fps == longvideo.FPS[db]
            assert len(v.frames) == int(spec.seconds[db] * v.fps)
            assert {i.kind for i in v.intervals} <= {"micro", "macro"}
            assert all(v.numbers[0] <= i.onset <= i.apex <= i.offset for i in v.intervals)
            assert all(i.emotion for i in v.intervals if i.kind == "micro"), (db, v.name)
        assert any(i.kind == "micro" for v in videos for i in v.intervals), db
    casme3 = longvideo.load("casme3", long_db["casme3"])
    assert all(v.blinks for v in casme3)
    assert any("video 'J' is folder 'j'" in n for v in casme3 for n in v.notes)
    notes = " ".join(n for v in longvideo.load("samm_lv", long_db["samm_lv"]) for n in v.notes)
    assert "onset 0: left out" in notes and "apex -1 outside" in notes
    notes = " ".join(n for v in longvideo.load("casme_sq", long_db["casme_sq"]) for n in v.notes)
    assert "offset 0: the apex" in notes


def test_annotated_videos_without_frames_are_listed(long_db, tmp_path):
    import shutil

    root = tmp_path / "CASME_sq"
    shutil.copytree(long_db["casme_sq"], root)
    gone = sorted((root / "rawpic").iterdir())[0]
    shutil.rmtree(gone)
    videos = longvideo.load("casme_sq", root)
    assert len(videos) == synthetic_long.SPECS["tiny"].subjects - 1
    assert videos.missing == [f"{gone.name}/0101"]
    with pytest.raises(DataError, match=r"no 'CAS\(ME\)\^2code_final.xlsx' in"):
        longvideo.load("casme_sq", root / "rawpic")


@pytest.mark.skipif(not SHARED.is_dir(), reason="MERJAX_ANNOTATIONS has no casme3/ folder")
def test_official_casme3_long_video_annotation():
    """The old-format .xls: 3,346 macro and 860 micro intervals of 98 subjects, 841 blinks."""
    intervals, blinks, notes = longvideo.read_casme3(SHARED / longvideo.CASME3_FILE)
    kinds = collections.Counter(i.kind for v in intervals.values() for i in v)
    assert kinds == {"macro": 3346, "micro": 860}
    assert len({s for s, _ in intervals}) == 98
    assert sum(len(b) for b in blinks.values()) == 841
    assert sum("video 'J' is folder 'j'" in n for v in notes.values() for n in v) == 5


# --------------------------------------------------------------------------- training-free


def test_k_threshold_and_peaks_by_hand():
    s = signal.SpotSettings()
    assert (s.k("micro", 30), s.k("macro", 30)) == (6, 18)
    assert (s.k("micro", 200), s.k("macro", 200)) == (40, 120)
    x = np.array([0, 0, 1, 3, 1, 0, 2, 2, 0, 5, 0, 0], float)
    # From k = 1 on: mean 14/11, max 5; p = 0.5: level 14/22 + 2.5.
    assert signal.threshold(x, 1, 0.5) == pytest.approx(14 / 11 + 0.5 * (5 - 14 / 11))
    # k = 1: local maxima 3 (t=3), 2 (t=6: the first of the two equal 2s), 5 (t=9).
    assert signal.peaks(x, 1, 0.0) == [3, 6, 9]
    # k = 3: the signal starts at t=3 (earlier frames have no flow), so its 3 there is an edge,
    # not a peak; 5 at t=9 merges the 2s at t=6, 7.
    assert signal.peaks(x, 3, 0.0) == [9]
    assert signal.peaks(x, 3, 4.0) == [9]
    # An edge is no peak at either end, nor is a flat signal.
    assert signal.peaks(np.array([0, 5, 4, 3, 2, 1.0]), 1, 0.0) == []
    assert signal.peaks(np.array([0, 1, 2, 3, 4, 5.0]), 1, 0.0) == []
    assert signal.peaks(np.zeros(12), 1, signal.threshold(np.zeros(12), 1, 0.3)) == []
    w = signal.region_weights(20, s.regions())
    np.testing.assert_allclose(w.sum(1), 1.0, rtol=1e-6)


def _textured(size: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.uniform(0, 255, (size, size)).astype(np.float32), (0, 0), 2.0)
    return cv2.normalize(img, None, 30, 220, cv2.NORM_MINMAX)


def _shifted(img, dx, dy, mask=None):
    h, w = img.shape
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    moved = cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REFLECT)
    if mask is None:
        return moved
    return np.where(mask, moved, img)


def test_head_translation_is_removed_and_local_motion_is_not():
    """A whole-face shift of 1 px moves every region alike: after the nose's flow is taken off,
    almost nothing is left. The same shift of the mouth alone stands out several times over."""
    s = signal.SpotSettings(size=48, batch=16)  # TV-L1, which measures displacements
    base = _textured(48)
    mouth = np.zeros((48, 48), bool)
    mouth[30:40, 12:36] = True
    head = np.stack([base, _shifted(base, 1.0, 0.5)]).astype(np.uint8)
    local = np.stack([base, _shifted(base, 0.0, 1.0, mouth)]).astype(np.uint8)
    sig_head = signal.signal(signal.motion(head, 1, s)[0], s)[1]
    sig_local = signal.signal(signal.motion(local, 1, s)[0], s)[1]
    assert sig_local > 3 * sig_head


@pytest.mark.slow
def test_spots_a_clear_expression_and_nothing_else():
    """A still face with sensor noise and one 8-frame mouth movement at frames 60-67 (30 fps):
    the micro pass finds one interval around it, and nothing elsewhere."""
    rng = np.random.default_rng(0)
    base = _textured(48, 1)
    mouth = np.zeros((48, 48), bool)
    mouth[30:40, 12:36] = True
    frames = []
    for t in range(150):
        a = np.clip((t - 60) / 4, 0, 1) if t < 64 else np.clip((67 - t) / 4, 0, 1)
        img = _shifted(base, 0.0, 1.5 * a, mouth) if 60 <= t <= 67 else base
        frames.append(np.clip(img + rng.normal(0, 1.0, img.shape), 0, 255).astype(np.uint8))
    res = signal.spot(
        np.stack(frames), 30.0, list(range(150)), signal.SpotSettings(size=48, batch=16)
    )
    micro = [i for i in res.intervals if i.kind == "micro"]
    assert len(micro) >= 1 and all(55 <= i.apex <= 75 for i in res.intervals)


def test_too_short_for_k_is_one_clear_error():
    with pytest.raises(DataError, match="too short for k = 6"):
        signal.motion(np.zeros((5, 48, 48), np.uint8), 6, signal.SpotSettings())


# --------------------------------------------------------------------------- learned


def test_pseudo_labels_are_the_frames_that_would_spot_the_interval():
    """k = 2, a micro ground truth 10..14: [t - 2, t + 2] has IoU >= 0.5 with it for t = 11,
    12, 13 (4 of 6 frames), not 10 or 14 (3 of 7). k = 6, a macro 20..32 (13 frames, as the
    window): IoU >= 0.5 needs an overlap of 9 (9 / 17), so t = 22..30."""
    labels = learned.labels_of(30, range(30), [Interval(10, 14, "micro")], {"micro": 2, "macro": 6})
    assert np.flatnonzero(labels).tolist() == [11, 12, 13] and set(labels[[11, 12, 13]]) == {1}
    labels = learned.labels_of(60, range(60), [Interval(20, 32, "macro")], {"micro": 2, "macro": 6})
    assert np.flatnonzero(labels).tolist() == list(range(22, 31))
    assert set(labels[labels > 0]) == {2}


# --------------------------------------------------------------------------- stream


def _frames(long_db, db="casme_sq"):
    from merjax.data.frames import read_gray

    v = longvideo.load(db, long_db[db])[0]
    return v, [read_gray(p) for p in v.paths()]


@pytest.mark.slow
def test_the_stream_measures_what_whole_video_spotting_measures(long_db):
    """Same crops, same flows: the stream's signal equals the whole-video one; its buffers stay
    bounded however long it runs; a macro interval is out k_macro frames after its offset, a
    micro one 3 k_macro - k_micro frames after it (each plus at most one chunk)."""
    v, grays = _frames(long_db)
    # The stream's chunk as the batch: one compiled program for both; Horn-Schunck, whose
    # program compiles in a fraction of TV-L1's time (what is tested is the same either way);
    # its motion is not a displacement, so no least motion in pixels.
    s = signal.SpotSettings(batch=16, flow=FlowSettings(), min_motion=0.0)
    spotter = stream.StreamSpotter(v.fps, s, chunk=16, window_s=30.0)
    emitted = []
    for g in grays:
        emitted += [(d, spotter.frames_seen) for d in spotter.push(g)]
    emitted += [(d, None) for d in spotter.flush()]
    frames = signal.read_frames(v.paths(), s.size, where=v.name).frames_FxHxW
    offline = signal.spot(frames, v.fps, list(range(len(frames))), s)
    for kind in ("micro", "macro"):
        np.testing.assert_allclose(
            np.asarray(spotter._values[kind]), offline.signals[kind], atol=1e-5
        )
    big, small = spotter.ks["macro"], spotter.ks["micro"]
    assert emitted and spotter.detections == len(emitted)
    for d, seen in emitted:
        if seen is not None:
            wait = big if d.kind == "macro" else 3 * big - small
            assert seen <= d.offset + 1 + wait + 16, (d, seen)
    more = stream.StreamSpotter(v.fps, s, chunk=16, window_s=5.0)
    for g in grays * 2:  # longer than every buffer
        more.push(g)
    bound = 4 * big + 2 * 16 + 2
    assert len(more._small) <= bound and all(len(m) <= bound for m in more._motion.values())
    assert all(len(x) <= 5 * v.fps for x in more._values.values())


@pytest.mark.slow
def test_predict_spot_writes_a_row_per_interval(stream_files, tmp_path, command_in_process):
    video, model = stream_files
    out = tmp_path / "spotted.csv"
    code, stdout, err = command_in_process(
        predict.main, f"--model={model}", f"--video={video}", "--spot", f"--out={out}"
    )
    assert code == 0, err
    rows = list(csv.DictReader(open(out)))
    assert rows and {r["kind"] for r in rows} <= {"micro", "macro"}
    assert all(int(r["onset"]) <= int(r["apex"]) <= int(r["offset"]) for r in rows)
    probs = np.array(
        [[float(r[f"p_{c}"]) for c in ("negative", "positive", "surprise")] for r in rows]
    )
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-3)
    assert "intervals in" in stdout and not (tmp_path / "spotted.csv.partial").exists()


@pytest.mark.slow
def test_spotting_experiment_end_to_end(tmp_path, cache_dir, long_db):
    s = runner.run("spotting", tmp_path, profile="tiny", cache_dir=cache_dir, progress=None)
    for key in ("f1_overall", "f1_micro", "f1_macro", "strs"):
        assert 0.0 <= s[key] <= 1.0
    scores = s["scores"]
    assert set(scores) == {
        f"{sp}/{db}" for sp in ("training-free", "learned") for db in ("casme3", "all")
    }
    for v in scores.values():
        o = v["overall"]
        assert o["tp"] == v["micro"]["tp"] + v["macro"]["tp"]
        assert o["f1"] == pytest.approx(
            2 * o["tp"] / (2 * o["tp"] + o["fp"] + o["fn"]) if o["tp"] else 0.0
        )
        for k in ("micro", "macro", "overall"):  # an interval by resampling videos
            low, high = v[k]["f1_ci"]
            assert 0 <= low <= high <= 1
    spotted = list(csv.DictReader(open(tmp_path / "spotted.csv")))
    assert {r["spotter"] for r in spotted} == {"training-free", "learned"}
    pngs = sorted(tmp_path.glob("video_*.png"))
    assert len(pngs) == synthetic_long.SPECS["tiny"].subjects  # tiny: one layout
    assert all(p.stat().st_size > 5000 for p in pngs)
    report = (tmp_path / "report.md").read_text()
    assert "STRS" in report and "MEGC 2022 unseen test set" in report and "noise floor" in report
    assert "{'" not in report  # no Python dict pasted into the prose
    assert "ours here are merjax's synthetic long videos" in report
    assert "(n = " in report  # the analysis scores say how many pairs they are over
    floors = list(csv.DictReader(open(tmp_path / "noise_floor.csv")))
    assert {r["kind"] for r in floors} == {"micro", "macro"}
    assert all(float(r["floor"]) > 0 for r in floors)
    published = list(csv.DictReader(open(tmp_path / "published.csv")))
    softnet = [r for r in published if r["method"] == "SOFTNet" and r["database"] == "samm_lv"]
    assert softnet[0]["f1_overall"] == "0.1881"  # as its authors' table writes it
    assert json.loads((tmp_path / "summary.json").read_text())["line"].startswith("F1 overall")


def test_spotters_are_values_the_pipeline_loops_over(long_db):
    """A spotter is a value. The training-free one, through the pipeline, spots what
    signal.spot spots on the same frames (the same rules on the same signal); a spotter of the
    user's own (one that never fires) runs beside it with no name tested anywhere; the learned
    one cannot be fitted on one subject, so it is left out and says why, and the pipeline goes
    on."""
    video = longvideo.load("casme3", long_db["casme3"])[0]
    spot = signal.SpotSettings(size=24, batch=64)

    def never(scores, v):
        return signal.SpotResult([], scores, {}, v.ks, {})

    quiet = spotters.Spotter("quiet", 0, lambda videos, folds: ((), {}), lambda _, v: {}, never)
    chosen = [spotters.build("training-free", spot), quiet, spotters.build("learned", spot)]
    recognise = spot_then_recognise.RecogniseSettings(size=8, train=TrainConfig(epochs=1))
    (run,), info = pipeline.train_and_spot([video], chosen, spot, recognise)
    assert list(run.results) == ["training-free", "quiet"] and run.spotted["quiet"] == []
    assert "two subjects" in info["learned"]["why"] and not info["recognition"]["trained"]
    frames = signal.read_frames(video.paths(), spot.size, where=video.name).frames_FxHxW
    alone = signal.spot(frames, video.fps, video.numbers, spot)
    assert run.results["training-free"].intervals == alone.intervals
    assert run.spotted["training-free"] == alone.intervals  # not recognised: as spotted


def test_long_video_motion_is_cached_and_recomputed_when_it_changes(tmp_path):
    """Before: a long video's flows were computed again by every run. Within cached_motion the
    second call reads the file back (the same arrays); other frames, another k or a file that
    does not read back are computed again."""
    from merjax.spotting import signal

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (12, 32, 32), np.uint8)
    settings = signal.SpotSettings()
    with signal.cached_motion(tmp_path):
        m1, _ = signal.motion(frames, 2, settings)
        (path,) = tmp_path.glob("motion-*.npz")
        m2, _ = signal.motion(frames, 2, settings)
        assert np.array_equal(m1, m2)
        signal.motion(frames, 3, settings)
        signal.motion(frames[::-1].copy(), 2, settings)
        assert len(list(tmp_path.glob("motion-*.npz"))) == 3
        path.write_bytes(b"not an npz")
        m3, _ = signal.motion(frames, 2, settings)
        assert np.allclose(m3, m1, atol=1e-6) and np.load(path)["motion"].shape == m1.shape
    signal.motion(frames, 2, settings)  # outside: nothing cached, nothing written
    assert len(list(tmp_path.glob("motion-*.npz"))) == 3

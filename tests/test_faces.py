"""Faces on a real photograph: landmarks, alignment, regions, tracking, and what bad input gets.

The face is ``skimage.data.astronaut()`` (a public-domain NASA portrait): its landmarks under known
similarity transforms, a known brow raise under a head motion, a face that leaves the frame.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest
from skimage import data as skdata

from merjax import faces, flow, inference, runner
from merjax.errors import DataError
from merjax.faces import align, models, regions, tracking
from merjax.faces.settings import FaceSettings
from merjax.spotting import signal, stream

SIZE = (112, 112)  # the astronaut's face spans about 1.8 x 60 px: crops at about 1:1


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2GRAY)


@pytest.fixture(scope="module")
def points(astronaut) -> np.ndarray:
    p = faces.landmarks(astronaut)
    assert p is not None and p.shape == (68, 2) and p.dtype == np.float32
    return p


def _similar(img, angle, scale, shift, centre=(225.0, 130.0)):
    M = cv2.getRotationMatrix2D(centre, angle, scale)
    M[:, 2] += shift
    out = cv2.warpAffine(img, M, img.shape[::-1], flags=cv2.INTER_CUBIC,
                         borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
    return out, M


def test_similarity_recovers_a_known_transform_and_never_reflects():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (9, 2))
    a = np.radians(12.0)
    M = np.array([[1.1 * np.cos(a), -1.1 * np.sin(a), 5.0], [1.1 * np.sin(a), 1.1 * np.cos(a), -3]])
    np.testing.assert_allclose(faces.similarity(src, align.apply(M, src)), M, atol=1e-9)
    mirrored = src * [-1, 1]  # a reflection is no similarity: the best one has det > 0
    assert np.linalg.det(faces.similarity(src, mirrored)[:, :2]) > 0
    with pytest.raises(ValueError, match="not all at one place"):
        faces.similarity(np.ones((4, 2)), src[:4])


def test_landmarks_follow_a_similarity_transform(astronaut, points):
    """Under rotations up to 15 degrees, scales 0.8-1.25 and shifts, the landmarks found on the
    moved photograph are the moved landmarks, within 3 px on average; the aligned crops of the
    moved photographs are the same face."""
    base = faces.align_clip(astronaut[None], SIZE)[0].astype(np.float32)
    for angle, scale, shift in [(15, 1.0, (8, -5)), (-15, 0.8, (-12, 6)), (6, 1.25, (3, 10)),
                                (-8, 0.9, (20, 0))]:  # fmt: skip
        moved, M = _similar(astronaut, angle, scale, shift)
        found = faces.landmarks(moved)
        err = np.linalg.norm(found - align.apply(M, points), axis=1)
        assert err.mean() < 3.0, (angle, scale, err.mean())
        crop = faces.align_clip(moved[None], SIZE)[0].astype(np.float32)
        unaligned = cv2.resize(moved, SIZE[::-1], interpolation=cv2.INTER_AREA).astype(np.float32)
        same = np.corrcoef(base.ravel(), crop.ravel())[0, 1]
        assert same > 0.9 and same > np.corrcoef(base.ravel(), unaligned.ravel())[0, 1] + 0.2


@pytest.fixture(scope="module")
def brow_clip(astronaut, points):
    """Onset: the photograph; apex: its brows raised 1.5 px (a smooth local displacement around
    landmarks 17-26), then the head moved 5 px and turned 3 degrees."""
    img = astronaut.astype(np.float32)
    h, w = img.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    d = np.linalg.norm(points[45] - points[36])
    bump = np.zeros((h, w), np.float32)
    for x, y in points[17:27]:
        bump = np.maximum(bump, np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * (0.12 * d) ** 2)))
    raised = cv2.remap(img, xx, yy + 1.5 * bump, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    apex, _ = _similar(raised, 3.0, 1.0, (5 * np.cos(0.5), 5 * np.sin(0.5)))
    return astronaut, np.clip(np.rint(apex), 0, 255).astype(np.uint8)


def _brow_mask(points):
    inside = align.apply(align.transform_of(points, SIZE), points)
    boxes = regions.boxes(inside, SIZE)
    mask = np.zeros(SIZE, bool)
    for name in ("brow_left", "brow_right"):
        x0, y0, x1, y1 = boxes[name]
        mask[
            int(y0 * SIZE[0]) : int(y1 * SIZE[0]) + 1, int(x0 * SIZE[1]) : int(x1 * SIZE[1]) + 1
        ] = 1
    inner = np.zeros(SIZE, bool)
    inner[8:-8, 8:-8] = True  # the crop's edge repeats border pixels: no flow is defined there
    return mask, inner & ~mask


def test_alignment_removes_the_head_motion_and_keeps_the_brow_raise(brow_clip, points):
    """After alignment the flow outside the brows is under 0.3 px and the brows move up; with the
    onset's transform for both frames (the head's motion kept) the head motion dominates."""
    brows, elsewhere = _brow_mask(points)
    out = {}
    for mode in ("frame", "onset"):
        crops = faces.align_clip(np.stack(brow_clip), SIZE, align=mode)
        uv = np.asarray(flow.compute(crops[:1], crops[1:], "tvl1"))[0]
        out[mode] = (np.linalg.norm(uv, axis=-1)[elsewhere].mean(), uv[brows, 1].mean())
    still, raise_ = out["frame"]
    assert still < 0.3 and raise_ < -0.4, out  # image y points down: a raise is negative
    assert out["onset"][0] > 2.0 and out["onset"][0] > 10 * still, out


def test_five_points_are_enough_to_align(brow_clip, points):
    """The 5-point model (free for commercial use) aligns too, less precisely than the 68: the
    head's 5 px and 3 degrees shrink to under a pixel, and the brows still move up."""
    brows, elsewhere = _brow_mask(points)
    crops = faces.align_clip(np.stack(brow_clip), SIZE, points=5)
    uv = np.asarray(flow.compute(crops[:1], crops[1:], "tvl1"))[0]
    assert np.linalg.norm(uv, axis=-1)[elsewhere].mean() < 1.0 and uv[brows, 1].mean() < -0.1


def test_regions_lie_where_their_landmarks_are(points):
    inside = align.apply(align.transform_of(points, SIZE), points)
    boxes = regions.boxes(inside, SIZE)
    assert set(boxes) == set(regions.NAMES)
    centre_y = {n: (b[1] + b[3]) / 2 for n, b in boxes.items()}
    assert centre_y["brow_left"] < centre_y["eye_left"] < centre_y["nose"] < centre_y["mouth_left"]
    assert centre_y["mouth_left"] < centre_y["chin"]
    for name, idx in (("brow_left", range(17, 22)), ("eye_right", range(42, 48)),
                      ("mouth_left", [48, 59, 60])):  # fmt: skip
        x0, y0, x1, y1 = boxes[name]
        u = inside[list(idx)] / [SIZE[1], SIZE[0]]
        assert ((u[:, 0] >= x0) & (u[:, 0] <= x1) & (u[:, 1] >= y0) & (u[:, 1] <= y1)).all()
    # The template's brows and chin are inside the crop: nothing of the face is cut.
    t = faces.template.TEMPLATE_68
    assert t[17:27, 1].min() > 0.08 and t[8, 1] < 0.97 and t[:, 0].min() > 0.05


def test_tracking_names_the_frames_without_a_face_and_realigns_only_when_the_head_moves(
    astronaut,
):
    """A still head keeps one transform; a head that drifts is followed; frames where the face has
    left are named, given no crop, and the face is found again when it is back."""
    small = cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(0)
    video = []
    for i in range(36):
        shift = (0.0, 0.0) if i < 12 else (0.4 * (i - 12), 0.0)
        frame, _ = _similar(small, 0.0, 1.0, shift, centre=(112, 65))
        frame = np.clip(frame + rng.normal(0, 1.0, frame.shape), 0, 255).astype(np.uint8)
        if 20 <= i < 26:
            frame = np.full_like(frame, 90)  # the face has left
        video.append(frame)
    tracker = faces.Tracker(FaceSettings(redetect_s=0.1), (64, 64), 30.0, "video.mp4")
    crops = [tracker.step(f) for f in video]
    assert [i for i, c in enumerate(crops) if c is None] == list(range(20, 26))
    assert tracker.faceless_runs == [[20, 25]] and tracker.faceless == 6
    assert any("frames 20-25" in n and "video.mp4" in n for n in tracker.summary())
    assert all(c is not None and c.shape == (64, 64) for c in crops[26:])
    still = sum(1 for _ in range(1))  # the first fit
    assert tracker.realigned >= still + 3  # the drift of 0.4 px a frame passes 1 px again
    settled = faces.Tracker(FaceSettings(), (64, 64), 30.0, "still")
    for f in video[:12]:
        settled.step(f)
    assert settled.realigned <= 3  # noise alone moves the stable points by less than 1 px


def test_bad_faces_get_one_clear_line(astronaut, tmp_path, caplog, monkeypatch):
    blank = np.full((240, 320), 120, np.uint8)
    assert faces.landmarks(blank) is None
    with pytest.raises(DataError, match="no face found on frame 0"):
        faces.align_clip(np.stack([blank, blank]), SIZE)
    # Two faces: the larger is used, and the note says so.
    smaller = cv2.resize(astronaut, (480, 480), interpolation=cv2.INTER_AREA)
    two = np.full((512, 1000), 100, np.uint8)
    two[:, :512] = astronaut
    two[16:496, 516:996] = smaller
    crops, note = faces.pipeline.prepare([two, two], SIZE, FaceSettings(), "onset.png")
    assert "2 faces on onset.png: the largest is used" in note and crops.shape == (2, *SIZE)
    # A face cut by the frame border is noted.
    cut = np.ascontiguousarray(astronaut[60:, 190:])
    _, note = faces.pipeline.prepare([cut, cut], SIZE, FaceSettings(), "onset.png")
    assert "cut by the frame border" in note
    # Colour is read as grey; 16-bit and tiny frames are refused naming what to do.
    colour = cv2.cvtColor(astronaut, cv2.COLOR_GRAY2BGR)
    np.testing.assert_allclose(faces.landmarks(colour), faces.landmarks(astronaut), atol=1.0)
    with pytest.raises(DataError, match="8-bit pixels, got uint16"):
        faces.landmarks(astronaut.astype(np.uint16) * 256)
    with pytest.raises(DataError, match="too small to find a face"):
        faces.landmarks(astronaut[:12, :12])
    # A model file missing or corrupt: named, with the way out.
    with pytest.raises(DataError, match="5-point model .*missing.*merjax\\[faces\\]"):
        models.dlib_model(5, tmp_path).detect(astronaut)
    (tmp_path / models.MODEL_FILES[5]).write_bytes(b"not a model")
    with pytest.raises(DataError, match="cannot be read.*reinstall"):
        models.dlib_model(5, tmp_path).detect(astronaut)
    # Without the extra: Haar boxes, said once with how to install dlib.
    real = models.importlib.util.find_spec
    monkeypatch.setattr(
        models.importlib.util, "find_spec", lambda n: None if n == "dlib" else real(n)
    )
    monkeypatch.setattr(models, "_told", set())
    with caplog.at_level(logging.WARNING, logger="merjax.faces.models"):
        a, b = FaceSettings(), FaceSettings()
    assert a.detector == b.detector == "haar" and a.mode == "box"
    said = [r.message for r in caplog.records if "pip install 'merjax[faces]'" in r.message]
    assert len(said) == 1
    with pytest.raises(DataError, match="dlib is not installed: pip install 'merjax\\[faces\\]'"):
        models.dlib_model(68)
    with pytest.raises(ValueError, match="needs landmarks"):
        FaceSettings(detector="haar", align="frame")


def test_stable_points_ignore_the_expression():
    """The transform is fitted to the eye corners and the nose only: moving brows and mouth
    points does not move it."""
    t = align.template_points(SIZE)
    moved = t.copy()
    moved[17:27, 1] -= 4.0  # brows up
    moved[48:68, 1] += 5.0  # jaw drops
    np.testing.assert_allclose(align.transform_of(moved, SIZE), align.transform_of(t, SIZE))
    assert tracking.fit_residual(t, align.transform_of(t, SIZE), SIZE) < 1e-6


@pytest.mark.slow
def test_spotting_runs_on_real_face_long_videos(tmp_path, cache_dir):
    """The photo mode of the synthetic long videos (the astronaut, warped per frame: expressions,
    blinks, head drift and a slow roll) goes through detection, landmarks, tracking, alignment
    and landmark regions, and the report says where the regions came from."""
    s = runner.run(
        "spotting",
        tmp_path,
        profile="tiny",
        cache_dir=cache_dir,
        overrides=["faces=photo"],
        progress=None,
    )
    assert s["regions"] == {"landmarks": 2}  # both videos of the tiny CAS(ME)^3 layout
    report = (tmp_path / "report.md").read_text()
    assert "video(s) with regions from landmarks" in report
    assert "photo faces" in s["data"] and "dlib HOG + 68-point landmarks" in report
    for key in ("f1_overall", "f1_micro", "f1_macro", "strs"):
        assert 0.0 <= s[key] <= 1.0


def test_the_face_pipeline_is_saved_with_the_flow_and_new_frames_follow_it(astronaut):
    """FaceSettings travel in FlowSettings' JSON (the flow cache's key and model.json), and
    prepare_frames crops new frames by the settings a model was trained with."""
    aligned = flow.FlowSettings(faces=FaceSettings(points=5, align="onset"))
    assert flow.FlowSettings.from_json(aligned.to_json()) == aligned
    assert aligned.digest() != flow.FlowSettings().digest()
    haar = flow.FlowSettings(faces=FaceSettings(detector="haar"))
    assert haar.digest() != flow.FlowSettings().digest()
    moved, _ = _similar(astronaut, 8.0, 1.0, (6, 4))
    frames = [astronaut, moved]
    by_dlib, box, note = inference.prepare_frames(frames, SIZE, face=FaceSettings())
    by_haar, _, _ = inference.prepare_frames(frames, SIZE, face=FaceSettings(detector="haar"))
    assert box is not None and not note

    # Aligned, the moved frame's crop matches the first; one Haar box keeps the head's motion.
    def diff(c):
        return np.abs(c[0].astype(np.float32) - c[1]).mean()

    assert diff(by_dlib) < 0.5 * diff(by_haar)


def test_a_stream_tracks_and_aligns_the_face_for_its_model(astronaut):
    """The stream's model crops follow the tracker's alignment, at the model's size, and frames
    without a face are named in its notes."""
    small = cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA)
    model = inference.untrained("vy-1cl", 16, class_names=("a", "b", "c"))
    aligned = flow.FlowSettings(method="tvl1", faces=FaceSettings(align="frame"))
    spot = signal.SpotSettings(size=24, flow=aligned)
    spotter = stream.StreamSpotter(30.0, spot, model=model, chunk=8)
    for i in range(40):
        frame, _ = _similar(small, 0.1 * i, 1.0, (0.3 * i, 0.0), centre=(112, 65))
        spotter.push(np.full_like(frame, 90) if 30 <= i < 33 else frame)
    spotter.flush()
    assert spotter.tracker.aligns and spotter.tracker.regions is not None
    assert spotter._model[-1].shape == tuple(model.spec.frame_size)
    assert any("frames 30-32" in n for n in spotter.notes), spotter.notes

"""The face pipeline's cost per frame, and the stream's frames per second with tracking.

    python benchmarks/face_benchmark.py            # this machine
    python benchmarks/face_benchmark.py --seconds 20 --database samm_lv

Part 1, per frame (median of ``--repeats``), at 640x480 (CASME II's raw frames) and 2040x1088
(SAMM's), on the astronaut photograph scaled so its face fills about 40% of the frame's height:
dlib's detection, its 68-point landmarks (one fit, and the nine-box median alignment uses),
the alignment warp to 64x64, and OpenCV's Haar cascade -- the baseline, measured in the same run.

Part 2, the stream (``predict --spot``) on a synthetic long video with the photograph's face
(merjax.data.synthetic_long, faces="photo"), frames per second after a warm-up pass: with the
dlib tracker (detection every ``redetect_s``, landmarks every frame, alignment) against the Haar
box of merjax before landmarks, in the same run. Results also go to ``<out>/face_benchmark.json``.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import tempfile
import time

import cv2
import numpy as np
from absl import app, flags
from skimage import data as skdata

from merjax import faces
from merjax.data import longvideo, synthetic_long
from merjax.data.frames import index_frames
from merjax.faces import align, models, tracking
from merjax.spotting import signal, stream

FLAGS = flags.FLAGS
flags.DEFINE_string("database", "casme3", "Synthetic layout: casme3 (30 fps) or samm_lv (200 fps).")
flags.DEFINE_float("seconds", 20.0, "Length of the synthetic video of part 2.")
flags.DEFINE_integer("repeats", 15, "Timings per step in part 1 (the median is reported).")
flags.DEFINE_string("out", "bench_out", "Folder for face_benchmark.json.")


def _frame(height: int, width: int) -> np.ndarray:
    photo = cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2GRAY)
    scale = 0.4 * height / 90.0  # the photograph's face box is about 90 px
    M = np.array([[scale, 0, width / 2 - scale * 222], [0, scale, height / 2 - scale * 125]])
    return cv2.warpAffine(photo, M, (width, height), flags=cv2.INTER_AREA,
                          borderMode=cv2.BORDER_REFLECT)  # fmt: skip


def _median_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def _per_frame() -> dict:
    dlib = models.get("dlib", 68)
    haar = models.haar_model()
    out = {}
    for name, (h, w) in (("640x480", (480, 640)), ("2040x1088", (1088, 2040))):
        gray = _frame(h, w)
        box, _ = tracking.find_face(dlib, gray, (64, 64))
        M = align.transform_of(dlib.landmarks(gray, box), (64, 64))
        out[name] = {
            "haar detection (baseline)": _median_ms(lambda: haar.detect(gray), FLAGS.repeats),
            "dlib detection": _median_ms(lambda: dlib.detect(gray), FLAGS.repeats),
            "landmarks, one fit": _median_ms(lambda: dlib.landmarks(gray, box), FLAGS.repeats),
            "landmarks, nine-box median": _median_ms(
                lambda: align.precise_landmarks(dlib, gray, box), FLAGS.repeats
            ),
            "alignment warp to 64x64": _median_ms(
                lambda: align.warp(gray, M, (64, 64)), FLAGS.repeats
            ),
        }
    return out


def _video(folder: pathlib.Path) -> tuple[pathlib.Path, float]:
    spec = dataclasses.replace(
        synthetic_long.SPECS["tiny"],
        subjects=1,
        seconds={d: FLAGS.seconds for d in synthetic_long.FOLDERS},
        faces="photo",
        frame=(240, 320),
        face=(150, 160),
    )
    roots = synthetic_long.write(folder / "long", spec=spec, seed=0)
    frames = sorted(roots[FLAGS.database].rglob("*.jpg"))
    fps = longvideo.FPS[FLAGS.database]
    paths = [str(p) for _, p in index_frames(frames[0].parent)]
    return synthetic_long.write_video(paths, folder / "long.avi", fps), fps


def _stream(path, fps, face: faces.FaceSettings) -> tuple[int, int]:
    settings = signal.SpotSettings(flow=dataclasses.replace(signal.SpotSettings().flow, faces=face))
    spotter = stream.StreamSpotter(fps, settings)
    for gray in stream.open_source(video=path).frames:
        spotter.push(gray)
    spotter.flush()
    return spotter.frames_seen, spotter.tracker.faceless


def main(argv):
    del argv
    out = pathlib.Path(FLAGS.out)
    out.mkdir(parents=True, exist_ok=True)
    costs = _per_frame()
    print("per frame, ms (median):")
    for size, rows in costs.items():
        for step, ms in rows.items():
            print(f"  {size:10s} {step:28s} {ms:8.2f}")
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        path, fps = _video(pathlib.Path(tmp))
        for name, face in (
            ("haar box (baseline)", faces.FaceSettings(detector="haar")),
            ("dlib tracking + alignment", faces.FaceSettings(detector="dlib")),
        ):
            _stream(path, fps, face)  # warm-up: compiles, fills the file cache
            t0 = time.perf_counter()
            frames, faceless = _stream(path, fps, face)
            seconds = time.perf_counter() - t0
            rows[name] = {"frames": frames, "fps": frames / seconds, "faceless": faceless}
    base = rows["haar box (baseline)"]["fps"]
    print(f"stream, {FLAGS.database} layout at {fps:.0f} fps, photo faces, 320x240 frames:")
    for name, r in rows.items():
        print(
            f"  {name:28s} {r['fps']:7.0f} frames/s ({r['fps'] / base:.2f}x the Haar box), "
            f"{r['fps'] / 200:.1f}x SAMM's 200 fps, {r['faceless']} frames without a face"
        )
    (out / "face_benchmark.json").write_text(
        json.dumps({"per_frame_ms": costs, "stream": rows, "database": FLAGS.database}, indent=1)
    )


if __name__ == "__main__":
    app.run(main)

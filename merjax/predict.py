"""Micro-expression classes for new clips, from a model that training saved.

    python -m merjax.predict --model=runs/input_study-quick/models/vy-3cl --onset=a.jpg --apex=b.jpg
    python -m merjax.predict --model=M --clip=CASME2/Cropped/sub01/EP02_01f \\
        --onset_frame=46 --apex_frame=59
    python -m merjax.predict --model=M --video=face.mp4 --window=10 --out=probs.csv
    python -m merjax.predict --model=M --export=vy-3cl.jaxexport  # serialized, runs without merjax
    python -m merjax.predict --model=M --export=vy-3cl.onnx       # ONNX Runtime, no JAX needed
    python -m merjax.predict --model=M --video=long.mp4 --spot --out=spotted.csv  # a stream
    python -m merjax.predict --model=M --camera=0 --spot                          # live

Frames are cropped as the datasets are, by the face pipeline the model was trained with (its
``flow.faces``: with dlib every frame aligned to the template on its stable landmarks, with
OpenCV's Haar cascade one box found on the first frame; ``--crop=none`` for frames that are
already face crops), then resized to the model's frame size; a first frame without a face is used
whole, and a note says so (merjax.faces.pipeline states the rule). A video is classified with a
sliding window: each frame against the frame ``--window`` frames earlier, in batches. Errors a
user can make end with one line (``MERJAX_TRACEBACK=1`` shows the traceback).

``--spot`` reads a video (or ``--camera``) as a stream: frames are read as they arrive, each
micro- or macro-expression interval is spotted once it has ended
(:class:`merjax.spotting.stream.StreamSpotter`), classified, and written as a CSV row (onset,
apex, offset, kind, class, probabilities, latency) -- flushed row by row, so Ctrl-C keeps what
was spotted. Memory stays bounded over an hours-long video.

The functions here are the library behind the command (notebooks import them).
"""

from __future__ import annotations

import contextlib
import csv
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from absl import app, flags

from merjax import batches, console, environment, faces, files, inference
from merjax.data.frames import (
    BIT_DEPTHS,
    index_frames,
    open_video,
    read_gray,
    shortfall_note,
    stated_frame_count,
)
from merjax.errors import DataError

# --------------------------------------------------------------------------- library


def predict_pair(
    model: inference.Model,
    onset: np.ndarray,
    apex: np.ndarray,
    *,
    crop: str = "face",
    names: tuple[str, str] = ("onset", "apex"),
) -> dict:
    """Class probabilities for one clip given its onset and apex images (grey or BGR)."""
    t0 = time.perf_counter()
    frames, box, note = inference.prepare_frames(
        [onset, apex], model.spec.frame_size, crop=crop, names=names, face=model.spec.flow.faces
    )
    t1 = time.perf_counter()
    probs = model.classify(frames[:1], frames[1:])[0]  # first call compiles
    t2 = time.perf_counter()
    probs = model.classify(frames[:1], frames[1:])[0]
    t3 = time.perf_counter()
    k = int(np.argmax(probs))
    return {
        "class": model.spec.class_names[k],
        "index": k,
        "probabilities": probs.tolist(),
        "outside_training": model.outside_training(frames[:1], frames[1:])[0],
        "face_box": box,
        "note": note,
        "prepare_ms": 1e3 * (t1 - t0),
        "first_call_s": t2 - t1,
        "classify_ms": 1e3 * (t3 - t2),
    }


def calibration_line(spec: inference.ModelSpec) -> str:
    """What the probabilities a model prints are: calibrated or not, and how well."""
    c = spec.calibration
    if not c:
        return "probabilities: not calibrated (a model saved before merjax calibrated them)"
    return (
        f"probabilities: calibrated by temperature {spec.temperature:.2f} on {c['clips']} "
        f"held-out clips (expected calibration error {c['ece_before']:.3f} -> "
        f"{c['ece_after']:.3f} there)"
    )


def read_clip(
    folder: str | Path, onset: int, apex: int, bit_depth: int | None = None
) -> tuple[np.ndarray, np.ndarray, tuple[str, str]]:
    """The onset and apex frames of a clip folder, found by the numbers in their file names
    (as the datasets name them: ``reg_img46.jpg``, ``006_05562.jpg``, ``img46.jpg``); 16-bit
    frames scaled by ``bit_depth`` (:func:`merjax.data.frames.to_uint8`)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"--clip {str(folder)!r} is not a folder")
    frames = dict(index_frames(folder))
    if not frames:
        raise DataError(f"no numbered image files in {str(folder)!r}")
    missing = [n for n in (onset, apex) if n not in frames]
    if missing:
        raise DataError(
            f"{str(folder)!r} has no frame numbered {', '.join(map(str, missing))} "
            f"(it holds frames {min(frames)}..{max(frames)})"
        )
    if apex <= onset:
        raise DataError(f"the apex frame ({apex}) must come after the onset frame ({onset})")
    pair = (frames[onset], frames[apex])
    return read_gray(pair[0], bit_depth), read_gray(pair[1], bit_depth), pair


def predict_video(
    model: inference.Model,
    path: str | Path,
    *,
    window: int = 0,
    crop: str = "face",
    batch: int = 64,
    progress=None,
) -> dict:
    """Per-frame class probabilities of a video: frame ``t`` against frame ``t - window``.

    ``window=0`` picks ``round(0.15 s x fps)`` (at least 1), about the onset-to-apex time of a
    micro-expression. The face box is found on the first frame and kept (a still camera and
    head, as in the databases). Frames are cropped and resized as they are read, so a long video
    costs little memory. Returns ``frames`` (indices t), ``seconds`` (t / fps), ``probabilities``
    ``[T, K]``, the window, fps and timings.
    """
    import cv2

    if window < 0:
        raise DataError(f"window must be >= 0 (0: 0.15 s of video), got {window}")
    path = Path(path)
    cap = open_video(path)
    fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
    t0 = time.perf_counter()
    small, size, kept = [], None, []
    where = f"{str(path)!r}"
    tracker = None
    if crop == "face":
        tracker = faces.Tracker(model.spec.flow.faces, model.spec.frame_size, fps or 30.0, where)
    elif crop != "none":
        raise ValueError(f"crop must be 'face' or 'none', got {crop!r}")
    index = -1
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        index += 1
        gray = inference.to_gray(frame, f"{path} frame {index}")
        if size is None:
            size = gray.shape
        elif gray.shape != size:
            raise DataError(f"{str(path)!r}: frame {index} is {gray.shape}, frame 0 was {size}")
        crop_ = (
            faces.crop_resize(gray, None, model.spec.frame_size)
            if tracker is None
            else tracker.step(gray)
        )
        if crop_ is not None:  # frames without a face are skipped (and named in the note)
            small.append(crop_)
            kept.append(index)
    box = tracker.box if tracker is not None else None
    note = "; ".join(tracker.summary()) if tracker is not None else ""
    truncated = shortfall_note(repr(str(path)), index + 1, stated_frame_count(cap))
    cap.release()
    if not small:
        raise DataError(f"cannot read any frame of {str(path)!r} (empty or unreadable video)")
    if truncated and kept and kept[-1] == index:
        small.pop()
        kept.pop()
        if not small:
            raise DataError(f"cannot read any whole frame of {str(path)!r} ({truncated})")
    if window == 0:
        window = max(1, round(0.15 * fps)) if fps > 0 else 1
    if len(small) <= window:
        raise DataError(f"{str(path)!r} has {len(small)} frames; a window of {window} needs more")
    frames = np.stack(small)
    t1 = time.perf_counter()
    targets = np.arange(window, len(frames))
    probs = np.empty((len(targets), len(model.spec.class_names)), np.float32)
    size = min(batch, len(targets))
    outside = 0  # pairs whose flow exceeds the training clips' range
    for i, b in enumerate(batches.padded(targets, size)):
        got, beyond = model.classify_checked(frames[b.index - window], frames[b.index])
        probs[b.real] = got[: b.count]
        outside += sum(w is not None for w in beyond[: b.count])
        if progress and i % 10 == 0:
            progress(f"{b.stop}/{len(targets)} frames classified")
    t2 = time.perf_counter()
    numbers = np.asarray(kept)[targets]  # video frame indices (frames without a face skipped)
    return {
        "frames": numbers,
        "seconds": numbers / fps if fps > 0 else np.full(len(targets), np.nan),
        "probabilities": probs,
        "window": window,
        "fps": fps,
        "face_box": box,
        "note": note,
        "truncated": truncated,
        "read_s": t1 - t0,
        "classify_s": t2 - t1,
        "num_frames": len(frames),
        "outside_training": outside,
    }


def format_probabilities(class_names, probs) -> str:
    return "\n".join(f"  {name:<18} {p:7.2%}" for name, p in zip(class_names, probs, strict=True))


# --------------------------------------------------------------------------- command line

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "model", None, "Model folder written by training (runs/<experiment>/models/<net>)."
)
flags.DEFINE_string("net", None, "Check that the model is this network (e.g. vy-3cl).")
flags.DEFINE_string("onset", None, "Onset frame image (with --apex).")
flags.DEFINE_string("apex", None, "Apex frame image (with --onset).")
flags.DEFINE_string(
    "clip", None, "Clip folder of numbered frames (with --onset_frame, --apex_frame)."
)
flags.DEFINE_integer("onset_frame", None, "Onset frame number in --clip.")
flags.DEFINE_integer("apex_frame", None, "Apex frame number in --clip.")
flags.DEFINE_string("video", None, "Video file: per-frame probabilities with a sliding window.")
flags.DEFINE_integer(
    "window", 0, "Video: compare frame t with frame t - window (0: 0.15 s of video)."
)
flags.DEFINE_integer("batch", 64, "Video: frame pairs per call.")
flags.DEFINE_string(
    "out", None, "Video: write per-frame probabilities to this CSV instead of printing."
)
flags.DEFINE_enum(
    "crop",
    "face",
    ["face", "none"],
    "face: the model's face pipeline (alignment or a box); none: frames are face crops.",
)
flags.DEFINE_string(
    "export",
    None,
    "Write the model to this file and exit; the suffix picks the format: .jaxexport (jax.export, "
    "runs on jax without merjax) or .onnx (one ONNX graph, flow included, for ONNX Runtime).",
)
flags.DEFINE_integer(
    "bit_depth", None, "16-bit frames: their real bit depth (e.g. 12); default: the file's range."
)
flags.DEFINE_bool(
    "spot", False, "Video or camera: spot expression intervals in a stream, classify each."
)
flags.DEFINE_integer("camera", None, "Camera index to spot from (implies --spot).")
flags.DEFINE_float(
    "spot_threshold", 0.3, "Spotting: p of the threshold mean + p (max - mean) of the signal."
)
flags.DEFINE_integer("max_frames", None, "Spotting: stop after this many frames.")
flags.DEFINE_float(
    "fps", None, "Spotting: the video's frame rate, where its file states none or a wrong one."
)


def writable_file(path: str, flag: str) -> Path:
    """``path`` as a file we can write, checked before any work by writing a scratch file beside
    it (permission bits alone do not tell, e.g. for root or on read-only mounts)."""
    p = Path(path).expanduser()
    if p.is_dir():
        raise DataError(f"{flag} {str(p)!r} is a folder; give a file name")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=p.parent):
            pass
    except OSError as e:
        raise DataError(
            f"{flag} {str(p)!r}: cannot write in {str(p.parent)!r} ({e.strerror or e})"
        ) from None
    return p


def _run() -> None:
    if not FLAGS.model:
        raise DataError("--model is required (a folder written by training, with model.json)")
    if FLAGS.window < 0:
        raise DataError(f"--window must be >= 0 (0: 0.15 s of video), got {FLAGS.window}")
    if FLAGS.max_frames is not None and FLAGS.max_frames < 1:
        raise DataError(
            f"--max_frames must be >= 1 (leave it out for no limit), got {FLAGS.max_frames}"
        )
    if FLAGS.batch < 1:
        raise DataError(f"--batch must be >= 1, got {FLAGS.batch}")
    if FLAGS.bit_depth is not None and FLAGS.bit_depth not in BIT_DEPTHS:
        raise DataError(f"--bit_depth must be one of {BIT_DEPTHS}, got {FLAGS.bit_depth}")
    if FLAGS.export and Path(FLAGS.export).suffix not in EXPORT_SUFFIXES:
        raise DataError(
            f"--export {FLAGS.export!r}: the suffix picks the format, one of {EXPORT_SUFFIXES}"
        )
    for flag, value in (("--out", FLAGS.out), ("--export", FLAGS.export)):
        if value:
            writable_file(value, flag)
    model = inference.load(FLAGS.model, expect_net=FLAGS.net)
    spec = model.spec
    print(
        f"model: {spec.net} on {spec.representation}, frames "
        f"{spec.frame_size[0]}x{spec.frame_size[1]}, "
        f"trained on {spec.trained_on.get('data', '?')}"
    )
    print(calibration_line(spec))
    modes = [
        m
        for m, on in (
            ("--onset/--apex", FLAGS.onset or FLAGS.apex),
            ("--clip", FLAGS.clip),
            ("--video", FLAGS.video),
            ("--camera", FLAGS.camera is not None),
            ("--export", FLAGS.export),
        )
        if on
    ]
    if len(modes) != 1:
        raise DataError(
            "give exactly one of --onset/--apex, --clip, --video, --camera or --export (got "
            f"{modes or 'none'})"
        )
    if FLAGS.spot and not (FLAGS.video or FLAGS.camera is not None):
        raise DataError("--spot reads a stream: give --video or --camera")
    if (FLAGS.video and FLAGS.spot) or FLAGS.camera is not None:
        _spot(model)
        return
    if FLAGS.export:
        _export(model, Path(FLAGS.export))
        return
    if FLAGS.video:
        _classify_video(model)
    else:
        _classify_pair(model)


EXPORT_SUFFIXES = (".jaxexport", ".onnx")


def _export(model: inference.Model, path: Path) -> None:
    if path.suffix == ".onnx":
        from merjax import edge

        print(f"converting {model.spec.net} and its {model.spec.flow.method} flow to ONNX ...")
        edge.export_onnx(model, path)
        print(
            f"exported to {path} (+ {path}.json): inputs onset, apex uint8 [B, "
            f"{model.spec.frame_size[0]}, {model.spec.frame_size[1]}], output probabilities; run "
            "with onnxruntime.InferenceSession(path).run(None, {'onset': a, 'apex': b})"
        )
    else:
        inference.export(model, path)
        print(
            f"exported to {path} (+ {path}.json); load with jax.export.deserialize(open(p, "
            "'rb').read()).call"
        )


def _classify_video(model: inference.Model) -> None:
    """--video without --spot: every frame against the one a window earlier, as a table."""
    spec = model.spec
    res = predict_video(
        model,
        FLAGS.video,
        window=FLAGS.window,
        crop=FLAGS.crop,
        batch=FLAGS.batch,
        progress=lambda m: print(m, file=sys.stderr),
    )
    rows = [
        [int(t), float(s), spec.class_names[int(p.argmax())], *map(float, p)]
        for t, s, p in zip(res["frames"], res["seconds"], res["probabilities"], strict=True)
    ]
    header = ["frame", "seconds", "class", *spec.class_names]
    if FLAGS.out:
        buf = io.StringIO(newline="")
        csv.writer(buf).writerows([header, *rows])
        files.write_text(FLAGS.out, buf.getvalue())
        print(f"wrote {len(rows)} frames to {FLAGS.out}")
    else:
        print("\t".join(header))
        for r in rows:
            print("\t".join([str(r[0]), f"{r[1]:.3f}", r[2], *(f"{p:.4f}" for p in r[3:])]))
    n = len(rows)
    if res["note"]:
        print(f"note: {res['note']} (--crop=none: the frames are face crops already)")
    if res["truncated"]:
        print(f"note: {res['truncated']}")
    if res["outside_training"]:
        limit = spec.flow_range["magnitude_p99"]
        print(
            f"warning: {res['outside_training']} of {n} frames have flow beyond the {limit:.2f} px "
            "that 99% of the training clips stay under: their probabilities are extrapolations"
        )
    print(
        f"{res['num_frames']} frames at {res['fps']:.1f} fps, window {res['window']}: "
        f"read + crop {res['read_s']:.2f} s, classify {res['classify_s']:.2f} s "
        f"({1e3 * res['classify_s'] / n:.2f} ms per frame, compilation included)"
    )


def _classify_pair(model: inference.Model) -> None:
    """--clip or --onset/--apex: one onset-apex pair."""
    spec = model.spec
    if FLAGS.clip:
        if FLAGS.onset_frame is None or FLAGS.apex_frame is None:
            raise DataError("--clip needs --onset_frame and --apex_frame")
        onset, apex, names = read_clip(
            FLAGS.clip, FLAGS.onset_frame, FLAGS.apex_frame, FLAGS.bit_depth
        )
    else:
        if not (FLAGS.onset and FLAGS.apex):
            raise DataError("give both --onset and --apex")
        onset, apex, names = (
            read_gray(FLAGS.onset, FLAGS.bit_depth),
            read_gray(FLAGS.apex, FLAGS.bit_depth),
            (FLAGS.onset, FLAGS.apex),
        )
    res = predict_pair(model, onset, apex, crop=FLAGS.crop, names=names)
    if res["note"]:
        print(f"note: {res['note']} (--crop=none: the frames are face crops already)")
    print(f"class: {res['class']}")
    print(format_probabilities(spec.class_names, res["probabilities"]))
    if res["outside_training"]:
        print(f"warning: {res['outside_training']}")
    print(
        f"time: {res['classify_ms']:.2f} ms flow + network (compiled; first call "
        f"{res['first_call_s']:.2f} s "
        f"with compilation), {res['prepare_ms']:.1f} ms face crop + resize"
    )


def spot_stream(
    model: inference.Model,
    source,
    *,
    out: str | Path | None = None,
    threshold: float = 0.3,
    max_frames: int | None = None,
    crop: str = "face",
    emit=print,
) -> dict:
    """Spots and classifies the intervals of a frame source
    (:func:`merjax.spotting.stream.open_source`) as its frames arrive, writing each to ``out``
    (a CSV, flushed per row) and passing it to ``emit``. Ctrl-C or SIGTERM ends the stream: the
    CSV keeps what was spotted and the error says where. A second stream into the same ``out``
    is refused while this one runs. Returns counts and rates."""
    from merjax.spotting import signal as spot_signal
    from merjax.spotting import stream

    settings = spot_signal.SpotSettings(threshold=threshold)
    spotter = stream.StreamSpotter(source.fps, settings, model=model, crop=crop)
    with files.OutputLock(out) if out else contextlib.nullcontext():
        sink = stream.DetectionCSV(out, source.fps, model.spec.class_names) if out else None
        return _stream_into(spotter, source, sink, max_frames, emit)


def _stream_into(spotter, source, sink, max_frames: int | None, emit) -> dict:
    from merjax.errors import Interrupted

    def put(ds):
        for d in ds:
            if sink:
                sink.write(d)
            emit(
                f"{d.kind} {d.onset}-{d.offset} (apex {d.apex}; {d.onset / source.fps:.2f}-"
                f"{d.offset / source.fps:.2f} s): {d.label} "
                f"{max(d.probabilities, default=0):.2f}, latency {1e3 * d.latency_s:.0f} ms"
            )

    t0 = time.perf_counter()
    try:
        for gray in source.frames:
            put(spotter.push(gray))
            if max_frames and spotter.frames_seen >= max_frames:
                break
        if spotter.frames_seen <= max(spotter.ks.values()):
            if sink:
                sink.discard()
            raise DataError(
                f"{source.name} has {spotter.frames_seen} frames: spotting needs more than "
                f"k = {max(spotter.ks.values())} (0.6 s at {source.fps:.1f} fps)"
            )
        put(spotter.flush())
    except KeyboardInterrupt:
        kept = f"; {sink.rows} intervals kept in {sink.close()}" if sink else ""
        raise Interrupted(
            f"interrupted after {spotter.frames_seen} frames of {source.name}{kept}"
        ) from None
    seconds = time.perf_counter() - t0
    if sink:
        sink.close()
    return {
        "frames": spotter.frames_seen,
        "intervals": spotter.detections,
        "seconds": seconds,
        "fps": spotter.frames_seen / seconds if seconds else float("nan"),
        "notes": source.notes + spotter.notes,
    }


def _spot(model: inference.Model) -> None:
    from merjax.spotting import stream

    source = stream.open_source(FLAGS.video, FLAGS.camera, fps=FLAGS.fps)
    print(
        f"spotting {source.name} at {source.fps:.2f} fps (Ctrl-C stops; what was spotted is kept)"
    )
    res = spot_stream(
        model,
        source,
        out=FLAGS.out,
        threshold=FLAGS.spot_threshold,
        max_frames=FLAGS.max_frames,
        crop=FLAGS.crop,
    )
    for note in res["notes"]:
        print(f"note: {note}")
    where = f" -> {FLAGS.out}" if FLAGS.out else ""
    print(
        f"{res['frames']} frames, {res['intervals']} intervals in {res['seconds']:.1f} s "
        f"({res['fps']:.0f} frames/s, compilation included){where}"
    )


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    # orbax logs every restore at INFO: quiet unless asked.
    console.setup(absl_verbosity_given=FLAGS["verbosity"].present)
    console.refuse_empty_flags(FLAGS)
    with console.one_line_errors():
        # The next call compiles nothing it compiled before.
        environment.compilation_cache(Path.home() / ".cache" / "merjax" / "xla")
        with environment.float32():
            _run()


if __name__ == "__main__":
    app.run(main)

"""Unlabelled test videos, as the MEGC challenge hands them out: every video under a folder,
for a spotter to spot and the organisers to score.

A video is a video file (``.avi``, ``.mp4``, ...) or a folder holding its frames, directly or in
a ``color/`` subfolder as CAS(ME)^3 ships them (its ``depth/`` sibling is not a video). Its
``vid`` is its path relative to the root without the extension, with ``/``: ``spNO.1/a`` for
``spNO.1/a/color/0.jpg``, ``clips/s3`` for ``clips/s3.avi``. Frames of a folder keep the numbers
their files carry (gaps and any start); a video file's frames are numbered from 0, as OpenCV
counts them.

    videos, notes = find(root, fps=None)       # LongVideo per video, database "test"
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from merjax.data import frames as frames_lib
from merjax.data.longvideo import LongVideo
from merjax.errors import DataError

DATABASE = "test"
# A test video is its own subject, named apart from any labelled subject (which a run that
# holds the test videos out must not hold out with them).
SUBJECT = "test:"
VIDEO_SUFFIXES = (".avi", ".mp4", ".mov", ".mkv", ".mpg", ".mpeg", ".wmv", ".m4v")
FILE_FRAME = "#"  # a video file's frame path: "<file>#<index>"


def is_file_video(video: LongVideo) -> bool:
    """Whether ``video``'s frames are in one video file (else image files in a folder)."""
    return Path(video.folder).is_file()


def file_frames(path: str | Path) -> Iterator[np.ndarray]:
    """The frames of a video file as ``[H, W]`` uint8 grey, in order."""
    cap = frames_lib.open_video(path, "--test_root video")
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                return
            yield frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    finally:
        cap.release()


def _file_video(path: Path, root: Path, fps: float | None) -> tuple[LongVideo, float, list[str]]:
    cap = frames_lib.open_video(path, "--test_root video")
    try:
        stated_fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        stated = frames_lib.stated_frame_count(cap)
        n = 0
        while cap.grab():
            n += 1
    finally:
        cap.release()
    vid = path.relative_to(root).with_suffix("").as_posix()
    if n < 2:
        raise DataError(f"test video {str(path)!r} holds {n} frame(s): not a video")
    notes = [frames_lib.shortfall_note(vid, n, stated)] if stated > n else []
    frames = tuple((i, f"{path}{FILE_FRAME}{i}") for i in range(n))
    video = LongVideo(DATABASE, SUBJECT + vid, vid, str(path), fps or stated_fps, frames, ())
    return video, stated_fps, notes


def _frame_folders(root: Path) -> Iterator[tuple[Path, Path]]:
    """``(folder holding frames, the folder naming the video)``: a ``color/`` folder names its
    parent; a ``depth/`` folder beside a ``color/`` one is skipped."""
    for folder in sorted([root, *(p for p in root.rglob("*") if p.is_dir())]):
        if folder.name.lower() == "depth" and (folder.parent / "color").is_dir():
            continue
        if not any(p.suffix.lower() in frames_lib.IMAGE_SUFFIXES for p in folder.iterdir()):
            continue
        named = folder.parent if folder.name.lower() == "color" and folder != root else folder
        yield folder, named


def find(root: str | Path, fps: float | None = None) -> tuple[list[LongVideo], list[str]]:
    """Every video under ``root`` (one DataError if there is none), at ``fps`` (``--test_fps``)
    or the rate its file states; with neither, or with files stating different rates, one
    DataError asking for ``--test_fps``. Returns the videos, sorted by vid, and notes."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"--test_root {str(root)!r} is not a folder")
    if fps is not None and not (np.isfinite(fps) and fps > 0):
        raise DataError(f"--test_fps must be a positive number, got {fps}")
    videos, notes, rates, folders = [], [], {}, []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if path.suffix.lower() in VIDEO_SUFFIXES:
            video, stated, said = _file_video(path, root, fps)
            videos.append(video)
            notes += said
            rates[video.name] = stated
    for folder, named in _frame_folders(root):
        frames = frames_lib.index_frames(folder)
        vid = named.relative_to(root).as_posix() if named != root else root.name
        if len(frames) < 2:
            raise DataError(
                f"test video folder {str(folder)!r} holds {len(frames)} numbered frame(s)"
            )
        numbers = [n for n, _ in frames]
        gaps = sum(b > a + 1 for a, b in zip(numbers, numbers[1:], strict=False))
        if gaps:
            notes.append(f"{vid}: {gaps} gap(s) in its frame numbers; no interval spans a gap")
        videos.append(LongVideo(DATABASE, SUBJECT + vid, vid, str(folder), fps or 0.0, frames, ()))
        folders.append(vid)
    if not videos:
        raise DataError(
            f"--test_root {str(root)!r} holds no video (video files such as .avi or .mp4, or "
            "folders of numbered frames)"
        )
    names = [v.name for v in videos]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise DataError(
            f"--test_root {str(root)!r}: two videos would share the vid {twice[0]!r} (a video "
            "file beside a folder of the same name)"
        )
    if fps is None:
        if folders:
            raise DataError(
                f"--test_root {str(root)!r}: frames in a folder ({folders[0]}) carry no frame "
                "rate: give --test_fps (30 for CAS(ME)^3, 200 for SAMM)"
            )
        distinct = sorted(set(rates.values()))
        if len(distinct) > 1 or not distinct[0] > 0:
            shown = ", ".join(f"{v}: {r:g}" for v, r in list(rates.items())[:4])
            raise DataError(
                f"--test_root {str(root)!r}: the videos state frame rates {distinct} ({shown}): "
                "give --test_fps, and spot each rate's videos in a run of its own"
            )
    else:
        off = [v for v, r in rates.items() if r and abs(r - fps) > 0.01 * fps]
        if off:
            notes.append(
                f"{len(off)} video file(s) state another frame rate than --test_fps {fps:g} "
                f"(e.g. {off[0]}: {rates[off[0]]:g}); spotted at {fps:g}"
            )
    return sorted(videos, key=lambda v: v.name), notes

"""Clip folders: indexing frames by the number in their names, decoding, and sample checks."""

from __future__ import annotations

import dataclasses
import logging
import re
import struct
from pathlib import Path

import cv2
import numpy as np

from merjax.data.sample import Problem, Sample, SampleList
from merjax.data.spreadsheets import KnownError
from merjax.errors import DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
_NUMBER = re.compile(r"(\d+)\D*$")


def frame_number(name: str) -> int | None:
    """The frame number of a file name: its last group of digits (``reg_img46`` -> 46,
    ``006_05562`` -> 5562, ``image0100231`` -> 100231). Zero padding is irrelevant."""
    m = _NUMBER.search(Path(name).stem)
    return int(m.group(1)) if m else None


def clip_folder(candidates: list[Path], where: str) -> Path:
    """The one folder of a clip among the places a loader looks: none is an error naming where
    it looked, two are an error naming both (a backup copy inside the root is the usual cause:
    using the first in sort order would train on whichever copy sorts first)."""
    found = [c for c in candidates if c.is_dir()]
    if not found:
        looked = candidates[0] if len(candidates) == 1 else [str(c) for c in candidates]
        raise DataError(f"{where}: clip folder {str(looked)!r} does not exist")
    if len(found) > 1:
        raise DataError(
            f"{where}: the clip is in two folders, {str(found[0])!r} and {str(found[1])!r}; "
            "keep one (move the other copy out of the database's root)"
        )
    return found[0]


def index_frames(folder: Path) -> tuple[tuple[int, str], ...]:
    """``(number, path)`` for every image in ``folder``, sorted by number.

    Two files with the same number (``img5.jpg`` and ``img05.jpg``) are an error, since either
    could be the annotated frame.
    """
    found: dict[int, str] = {}
    for p in sorted(Path(folder).iterdir()):
        if p.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        n = frame_number(p.name)
        if n is None:
            continue
        if n in found:
            raise DataError(f"{str(folder)!r}: frames {found[n]!r} and {str(p)!r} share number {n}")
        found[n] = str(p)
    return tuple(sorted(found.items()))


BIT_DEPTHS = (8, 10, 12, 14, 16)


MAX_PIXELS = 2**26
"""The most pixels a frame may state (67 M; SAMM's frames have 2.2 M): checked from the file's
header before decoding, so a decompression bomb costs nothing."""


def stated_size(data: bytes) -> tuple[int, int] | None:
    """``(height, width)`` that a PNG, JPEG or BMP header states, without decoding (None for
    other formats or a header that cannot be read)."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        w, h = struct.unpack(">II", data[16:24])
        return h, w
    if data[:2] == b"BM" and len(data) >= 26:
        w, h = struct.unpack("<ii", data[18:26])
        return abs(h), abs(w)
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 9 <= len(data):
            if data[i] != 0xFF:
                return None
            marker = data[i + 1]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length field
                i += 2
                continue
            length = struct.unpack(">H", data[i + 2 : i + 4])[0]
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # a frame header
                h, w = struct.unpack(">HH", data[i + 5 : i + 9])
                return h, w
            i += 2 + length
    return None


def decode_gray(path: Path | str) -> np.ndarray:
    """Decodes an image file as ``[H, W]`` grey, uint8 or uint16 as stored; a DataError names an
    unreadable, truncated or unsupported file.

    A truncated file is an error: OpenCV decodes a JPEG cut short (it warns "Premature end of
    JPEG file" and fills the rest grey), which would be trained on without a word. 16-bit files
    keep their 16 bits here (OpenCV's plain grey read would cut them to their top 8)."""
    path = str(path)
    if Path(path).is_dir():
        raise DataError(f"{path!r} is a folder, not an image")
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise DataError(f"cannot read image {path!r}: {e.strerror or e}") from None
    problem = incomplete(data)
    if problem:
        raise DataError(
            f"image {path!r} is {problem}: truncated or corrupt (re-export or replace it)"
        )
    hw = stated_size(data)
    if hw is not None and hw[0] * hw[1] > MAX_PIXELS:
        raise DataError(
            f"image {path!r} states {hw[1]}x{hw[0]} pixels, above merjax's limit of "
            f"{MAX_PIXELS:,} (no camera frame is that large: a corrupt or hostile file); not "
            "decoded"
        )
    flags = cv2.IMREAD_GRAYSCALE | cv2.IMREAD_ANYDEPTH
    img = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if img is None:
        raise DataError(f"cannot decode image {path!r} (not an image, or corrupt)")
    if img.dtype not in (np.uint8, np.uint16):
        raise DataError(
            f"image {path!r} has an unsupported pixel type ({img.dtype}): merjax reads 8- and "
            "16-bit images; convert it to 8- or 16-bit integers"
        )
    return img


def to_uint8(img: np.ndarray, bit_depth: int | None = None) -> np.ndarray:
    """``[H, W]`` uint8 intensities of a decoded frame: 16-bit data scaled by its real bit depth
    (``bit_depth``, e.g. 12 for a camera that stores 12-bit values in 16-bit files) or, by
    default, by its dtype's range."""
    if bit_depth is not None and bit_depth not in BIT_DEPTHS:
        raise ValueError(f"bit_depth must be one of {BIT_DEPTHS} or None, got {bit_depth!r}")
    if img.dtype == np.uint8 and bit_depth in (None, 8):
        return img
    top = 2**bit_depth - 1 if bit_depth else np.iinfo(img.dtype).max
    return np.clip(np.rint(img.astype(np.float32) * (255.0 / top)), 0, 255).astype(np.uint8)


def read_gray(path: Path | str, bit_depth: int | None = None) -> np.ndarray:
    """Decodes an image file as ``[H, W]`` uint8 grey (:func:`decode_gray`, :func:`to_uint8`)."""
    return to_uint8(decode_gray(path), bit_depth)


def dim_range(img: np.ndarray, bit_depth: int | None = None) -> str:
    """Why a decoded frame looks stored at a lower bit depth than it is read with ('' if not):
    its largest value is below 1/16 of the range it is scaled by (12-bit data in a 16-bit file
    reads as a nearly black frame of a dozen grey levels, and gives almost no flow)."""
    top = 2**bit_depth - 1 if bit_depth else np.iinfo(img.dtype).max
    high = int(img.max()) if img.size else 0
    if high >= (top + 1) // 16:
        return ""
    bits = bit_depth or 8 * img.dtype.itemsize
    real = max(1, int(high).bit_length())
    return (
        f"values {int(img.min())}-{high} use a tiny fraction of the {bits}-bit range it is read "
        f"with (scientific cameras store 12-bit data in 16-bit files); if the data has "
        f"{real}-{real + 1} bits, give bit_depth={min(b for b in BIT_DEPTHS if b >= real)} "
        "(--set=bit_depth=... for the experiments, --bit_depth for predict)"
    )


def incomplete(data: bytes) -> str:
    """Why an encoded image is not whole ('' when it looks whole): JPEG without its end marker,
    PNG without its IEND chunk, BMP shorter than its header says, or no bytes at all."""
    if not data:
        return "empty"
    if (
        data[:2] == b"\xff\xd8"
    ):  # JPEG: entropy-coded data stuffs 0xFF, so FFD9 is only the end marker
        return "" if b"\xff\xd9" in data[-64:] else "a JPEG without its end marker"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "" if b"IEND" in data[-12:] else "a PNG without its IEND chunk"
    if data[:2] == b"BM" and len(data) >= 6:
        size = int.from_bytes(data[2:6], "little")
        return (
            "" if len(data) >= size else f"a BMP of {len(data)} bytes where its header says {size}"
        )
    return ""


def check(sample: Sample, *, num_classes: int | None = None, decode: bool = True) -> Sample:
    """Raises DataError, naming the spreadsheet row and path, if ``sample`` cannot be used.

    Checked: onset <= apex <= offset, and apex < offset unless the clip ends at its apex; the
    onset, apex and second training frame exist (and decode whole, unless ``decode=False``); the
    label is known; the three frames have one size. The second training frame is apex+1 when
    its file exists. When apex == offset (four rows of the official CASME II file) and no apex+1
    file exists -- real clip folders differ in whether they hold frames past the offset -- apex-1
    stands in, and the returned sample's ``note`` says so.
    """
    where = f"{sample.source} ({sample.clip})"
    numbers = dict(sample.frames)
    at_offset = sample.apex == sample.offset
    if not (sample.onset <= sample.apex <= sample.offset):
        raise DataError(
            f"{where}: need onset <= apex <= offset, got onset {sample.onset}, apex "
            f"{sample.apex}, offset {sample.offset}"
        )
    second = ("apex+1", sample.augment_frame)
    if second[1] != sample.apex + 1 and sample.apex in numbers:
        if second[1] < sample.apex and second[1] <= sample.onset:
            raise DataError(
                f"{where}: apex {sample.apex} with no later frame and no frame between onset and "
                "apex for the second training flow"
            )
        if second[1] > sample.apex:
            extra = f"frame apex+1 ({sample.apex + 1}) is missing: frame {second[1]} replaces it"
        elif at_offset:
            extra = f"apex == offset ({sample.apex}) and no later frame: apex-1 replaces apex+1"
        else:
            extra = f"no frame after the apex ({sample.apex}): frame {second[1]} replaces apex+1"
        second = ("second training", second[1])
        sample = dataclasses.replace(sample, note="; ".join(x for x in (sample.note, extra) if x))
    if sample.label < 0 or (num_classes is not None and sample.label >= num_classes):
        raise DataError(f"{where}: unknown label {sample.label} ({sample.class_name!r})")
    folder = sample.folder
    if not numbers:
        raise DataError(f"{where}: clip folder {folder!r} holds no frames")
    shapes = set()
    for role, n in (("onset", sample.onset), ("apex", sample.apex), second):
        if n not in numbers:
            raise DataError(f"{where}: {role} frame {n} is not in {folder!r}")
        if decode:
            try:
                img = decode_gray(numbers[n])
            except DataError as e:
                raise DataError(f"{where}: {role} frame {n}: {e}") from None
            shapes.add(img.shape)
            dim = dim_range(img, sample.bit_depth) if role == "onset" else ""
            if dim:  # once per clip: the onset frame speaks for the clip
                logging.getLogger(__name__).warning("%s: %s: %s", where, numbers[n], dim)
                extra = f"{Path(numbers[n]).name}: {dim}"
                sample = dataclasses.replace(
                    sample, note="; ".join(x for x in (sample.note, extra) if x)
                )
    if len(shapes) > 1:
        raise DataError(
            f"{where}: onset, apex and {second[0]} frames differ in size: {sorted(shapes)}"
        )
    return sample


def _problem(source: str, clip: str, dataset: str, error: DataError) -> Problem:
    """A skip record whose reason does not repeat the ``source (clip):`` it is printed after."""
    reason = str(error)
    for prefix in (f"{source} ({clip}): ", f"{source}: "):
        if reason.startswith(prefix):
            reason = reason[len(prefix) :]
            break
    return Problem(source, clip, reason, dataset)


def check_all(samples, *, on_error: str, num_classes: int | None = None, decode: bool = True):
    """Checks every sample; returns ``(good, problems)``. ``on_error="raise"`` raises on the
    first bad one, ``"skip"`` collects them all."""
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    good, problems = [], []
    for s in samples:
        try:
            s = check(s, num_classes=num_classes, decode=decode)
        except DataError as e:
            if on_error == "raise" and not isinstance(e, KnownError):
                raise
            problems.append(_problem(s.source, s.clip, s.dataset, e))
            continue
        good.append(s)
    return good, problems


def gather(
    items, *, on_error: str, decode: bool = True, dataset: str = "", spreadsheet: str = ""
) -> SampleList:
    """Builds and checks samples; the one place where loaders decide between raising and
    skipping. ``items`` yields ``(where, clip, make)`` where ``make()`` returns a Sample or
    raises DataError; every skip is logged as a warning and kept in ``.skipped``.

    A second row for the same (subject, clip) is a problem naming both rows (it would count the
    clip twice). A spreadsheet that yields no usable sample is an error naming it."""
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    samples, problems, first_row = [], [], {}
    for where, clip, make in items:
        try:
            sample = make()
            key = (sample.subject, sample.clip)
            if key in first_row:
                raise DataError(
                    f"{where}: {sample.subject} {sample.clip} is also in {first_row[key]}; "
                    "a clip counts once (remove one of the rows)"
                )
            first_row[key] = where
            samples.append(sample)
        except DataError as e:
            if on_error == "raise" and not isinstance(e, KnownError):
                raise
            problems.append(_problem(where, clip, dataset, e))
    good, bad = check_all(samples, on_error=on_error, decode=decode)
    for p in problems + bad:
        logging.getLogger(__name__).warning("skipped %s", p)
    if not good:
        what = f"{spreadsheet!r}" if spreadsheet else "the spreadsheet"
        raise DataError(
            f"{what} yields no usable samples"
            + (
                f" ({len(problems + bad)} row(s) skipped, first: {(problems + bad)[0]})"
                if problems + bad
                else " (a header and no rows)"
            )
        )
    return SampleList(
        good,
        problems + bad,
        rows={dataset: len(good) + len(problems) + len(bad)} if dataset else {},
    )


def replace(sample: Sample, **changes) -> Sample:
    return dataclasses.replace(sample, **changes)


def open_video(path: str | Path, flag: str = "--video"):
    """An opened ``cv2.VideoCapture`` of the video file ``path``; one DataError naming ``flag``
    when it is missing, a folder (frames in a folder are a clip: ``--clip``), or not a video
    OpenCV can decode."""
    path = Path(path)
    if path.is_dir():
        raise DataError(
            f"{flag} {str(path)!r} is a folder, not a video file (--clip reads a folder of frames)"
        )
    if not path.is_file():
        raise DataError(f"{flag} {str(path)!r} does not exist")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise DataError(f"cannot open video {str(path)!r} (not a video, or a codec OpenCV lacks)")
    return cap


def stated_frame_count(cap) -> int:
    """How many frames an opened video's header says it holds (0: it does not say)."""
    return int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)


def shortfall_note(name: str, read: int, stated: int) -> str:
    """What to say of a video file that ended after ``read`` of the ``stated`` frames its header
    gives ("" when it did not): it was cut short, and OpenCV decodes the frame it was cut in
    without an error, so the readers drop the last frame read."""
    if read >= stated:
        return ""
    return (
        f"{name} holds {read} of the {stated} frames its header states (truncated?): the last "
        "frame read is dropped"
    )

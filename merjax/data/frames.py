"""Clip folders: indexing frames by the number in their names, decoding, and sample checks."""

from __future__ import annotations

import dataclasses
import logging
import re
from pathlib import Path

import cv2
import numpy as np

from merjax.data.sample import Problem, Sample, SampleList
from merjax.data.spreadsheets import DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
_NUMBER = re.compile(r"(\d+)\D*$")


def frame_number(name: str) -> int | None:
    """The frame number of a file name: its last group of digits (``reg_img46`` -> 46,
    ``006_05562`` -> 5562, ``image0100231`` -> 100231). Zero padding is irrelevant."""
    m = _NUMBER.search(Path(name).stem)
    return int(m.group(1)) if m else None


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


def read_gray(path: Path | str) -> np.ndarray:
    """Decodes an image file as ``[H, W]`` uint8 grey; a DataError names an unreadable file."""
    path = str(path)
    img = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise DataError(f"cannot decode image {path!r} (missing, empty or not an image)")
    return img


def check(sample: Sample, *, num_classes: int | None = None, decode: bool = True) -> Sample:
    """Raises DataError, naming the spreadsheet row and path, if ``sample`` cannot be used.

    Checked: onset <= apex < offset; the onset, apex and apex+1 frames exist (and decode, unless
    ``decode=False``); the label is known; the three frames have one size. One exception, because
    the official CASME II file has four such rows (class III, in the composite): apex == offset
    is accepted when apex+1 is missing and apex-1 follows the onset; apex-1 then stands in for
    apex+1 and the returned sample's ``note`` says so.
    """
    where = f"{sample.source} ({sample.clip})"
    numbers = dict(sample.frames)
    ends_at_apex = (
        sample.apex == sample.offset
        and sample.apex + 1 not in numbers
        and sample.onset < sample.apex - 1
    )
    if not (sample.onset <= sample.apex < sample.offset or ends_at_apex):
        raise DataError(
            f"{where}: need onset <= apex < offset, got onset {sample.onset}, apex "
            f"{sample.apex}, offset {sample.offset}"
        )
    if ends_at_apex:
        extra = f"apex == offset ({sample.apex}) and no later frame: apex-1 replaces apex+1"
        sample = dataclasses.replace(
            sample, note="; ".join(x for x in (sample.note, extra) if x)
        )
    if sample.label < 0 or (num_classes is not None and sample.label >= num_classes):
        raise DataError(f"{where}: unknown label {sample.label} ({sample.class_name!r})")
    folder = str(Path(sample.frames[0][1]).parent) if sample.frames else "its folder"
    shapes = set()
    second = ("apex-1", sample.apex - 1) if ends_at_apex else ("apex+1", sample.apex + 1)
    for role, n in (("onset", sample.onset), ("apex", sample.apex), second):
        if n not in numbers:
            raise DataError(f"{where}: {role} frame {n} is not in {folder!r}")
        if decode:
            shapes.add(read_gray(numbers[n]).shape)
    if len(shapes) > 1:
        raise DataError(f"{where}: onset, apex and {second[0]} frames differ in size: {sorted(shapes)}")
    return sample


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
            if on_error == "raise":
                raise
            problems.append(Problem(s.source, s.clip, str(e)))
            continue
        good.append(s)
    return good, problems


def gather(items, *, on_error: str, decode: bool = True) -> SampleList:
    """Builds and checks samples; the one place where loaders decide between raising and
    skipping. ``items`` yields ``(where, clip, make)`` where ``make()`` returns a Sample or
    raises DataError; every skip is logged as a warning and kept in ``.skipped``."""
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    samples, problems = [], []
    for where, clip, make in items:
        try:
            samples.append(make())
        except DataError as e:
            if on_error == "raise":
                raise
            problems.append(Problem(where, clip, str(e)))
    good, bad = check_all(samples, on_error=on_error, decode=decode)
    for p in problems + bad:
        logging.getLogger(__name__).warning("skipped %s", p)
    return SampleList(good, problems + bad)


def replace(sample: Sample, **changes) -> Sample:
    return dataclasses.replace(sample, **changes)

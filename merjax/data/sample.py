"""The sample record every loader returns, and the report of samples a loader skipped."""

from __future__ import annotations

import dataclasses
from pathlib import Path

OBJECTIVE_CLASSES: tuple[str, ...] = ("I", "II", "III", "IV", "V", "VI", "VII")
"""Objective classes of Davison et al. (2018); the MEGC 2018 composite keeps I-V."""


@dataclasses.dataclass(frozen=True)
class Sample:
    """One micro-expression clip with its annotation and where its frames are.

    ``subject`` is prefixed by the database (``"casme2/sub01"``, ``"samm/006"``) so it is unique
    across databases. ``frames`` maps every frame number found in the clip folder to its path
    (frame numbers are parsed from the file names, never formatted). ``cropped`` says whether the
    frames are already face crops; raw frames go through the face pipeline, :mod:`merjax.faces`.
    ``source`` names the spreadsheet and row the sample came from; ``note`` records any policy
    applied to the row (e.g. how a missing apex was filled in). ``bit_depth`` is the depth the
    frames are scaled by (:func:`merjax.data.frames.to_uint8`): 12 for 12-bit data in 16-bit
    files.
    """

    dataset: str
    subject: str
    clip: str
    onset: int
    apex: int
    offset: int
    label: int
    class_name: str
    emotion: str
    frames: tuple[tuple[int, str], ...]
    cropped: bool
    source: str
    note: str = ""
    folder: str = ""  # the clip folder (its frames may be missing)
    bit_depth: int | None = None  # the frames' real bit depth; None: their dtype's range

    @property
    def key(self) -> str:
        """A stable identity: dataset, subject, clip and the three annotated frames."""
        return f"{self.subject}/{self.clip}@{self.onset}-{self.apex}-{self.offset}"

    def frame_path(self, frame: int) -> Path:
        """The path of frame number ``frame``; a KeyError names the clip when it is missing."""
        for number, path in self.frames:
            if number == frame:
                return Path(path)
        raise KeyError(f"{self.source}: clip {self.clip} has no frame {frame}")

    @property
    def onset_path(self) -> Path:
        return self.frame_path(self.onset)

    @property
    def apex_path(self) -> Path:
        return self.frame_path(self.apex)

    @property
    def augment_frame(self) -> int:
        """The second training frame: apex+1 (the paper's onset->apex+1 augmentation); the next
        frame the folder holds when apex+1 was dropped (CAS(ME)^3 drops frames); apex-1 (or the
        last frame before the apex) when the clip ends at its apex (four CASME II rows have apex
        == offset and no later frame). :func:`merjax.data.frames.check` notes anything but
        apex+1."""
        numbers = sorted(n for n, _ in self.frames)
        later = [n for n in numbers if n > self.apex]
        if later:
            return later[0]
        earlier = [n for n in numbers if self.onset < n < self.apex]
        return earlier[-1] if earlier else self.apex - 1

    @property
    def augment_path(self) -> Path:
        return self.frame_path(self.augment_frame)


@dataclasses.dataclass(frozen=True)
class Problem:
    """A sample that could not be used: where it came from and why."""

    source: str
    clip: str
    reason: str
    dataset: str = ""

    def __str__(self) -> str:
        return f"{self.source} ({self.clip}): {self.reason}"


class SampleList(list):
    """A list of :class:`Sample` that also carries the samples that were skipped.

    Loaders return this so that ``on_error="skip"`` never drops anything silently: every skip
    is in ``.skipped`` (and was logged as a warning when it happened).
    """

    LOSS_WARNING = 1 / 3
    """A database that loses more than this fraction of its rows to skips is reported loudly."""

    def __init__(self, samples=(), skipped=(), rows: dict[str, int] | None = None):
        super().__init__(samples)
        self.skipped: list[Problem] = list(skipped)
        self.rows: dict[str, int] = dict(rows or {})  # spreadsheet rows read, per dataset

    def __add__(self, other):
        rows = dict(self.rows)
        for k, v in getattr(other, "rows", {}).items():
            rows[k] = rows.get(k, 0) + v
        return SampleList(
            list(self) + list(other), self.skipped + getattr(other, "skipped", []), rows
        )

    def filter(self, keep) -> SampleList:
        return SampleList([s for s in self if keep(s)], self.skipped, self.rows)

    def losses(self) -> list[str]:
        """A warning per database that lost more than a third of its rows to skips."""
        out = []
        for ds, total in sorted(self.rows.items()):
            lost = sum(p.dataset == ds for p in self.skipped)
            if total and lost / total > self.LOSS_WARNING:
                out.append(
                    f"WARNING: {ds} lost {lost} of its {total} spreadsheet rows to skips "
                    f"({lost / total:.0%}); results on this data are not results on {ds}"
                )
        return out

    def summary(self) -> str:
        """Counts per dataset and class, and the skips: what a run prints before it trains."""
        lines = self.losses()
        for ds in sorted({s.dataset for s in self}):
            these = [s for s in self if s.dataset == ds]
            by_class: dict[str, int] = {}
            for s in sorted(these, key=lambda s: s.label):
                by_class[s.class_name] = by_class.get(s.class_name, 0) + 1
            counts = ", ".join(f"{k}: {v}" for k, v in by_class.items())
            lines.append(
                f"{ds}: {len(these)} samples, {len({s.subject for s in these})} subjects ({counts})"
            )
        lines.append(f"total: {len(self)} samples, {len({s.subject for s in self})} subjects")
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)} sample(s):")
            lines += [f"  {p}" for p in self.skipped]
        notes = [s for s in self if s.note]
        for s in notes:
            lines.append(f"note: {s.source} ({s.clip}): {s.note}")
        return "\n".join(lines)

"""Expression intervals of long videos: what an annotation marks and what a spotter finds.

Frames are counted inclusively (``[onset, offset]``), in the numbers the video's files carry.
"""

from __future__ import annotations

import dataclasses

KINDS = ("micro", "macro")
"""The kinds of expression interval the spotting databases annotate."""


@dataclasses.dataclass(frozen=True)
class Interval:
    """An expression interval of one video: frames ``onset``..``offset`` (inclusive)."""

    onset: int
    offset: int
    kind: str = "micro"  # KINDS
    apex: int | None = None
    emotion: str | None = None  # ground truth's, or the recognised class of a spotted one

    def __post_init__(self):
        if self.offset < self.onset:
            raise ValueError(f"interval offset {self.offset} is before its onset {self.onset}")
        if self.kind not in KINDS:
            raise ValueError(f"interval kind must be one of {KINDS}, got {self.kind!r}")

    @property
    def length(self) -> int:
        return self.offset - self.onset + 1

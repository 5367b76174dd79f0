"""The face pipeline as a value: which detector and landmark model, how frames are aligned, to
which template. Part of :class:`merjax.flow.FlowSettings`, so it keys the flow cache and is saved
in model folders, and ``predict`` prepares new frames the way a model was trained on."""

from __future__ import annotations

import dataclasses

from merjax.faces import models, template

ALIGNS = ("frame", "smoothed", "onset", "box")


@dataclasses.dataclass(frozen=True)
class FaceSettings:
    """How raw frames become face crops (the databases' own crops are used as they are).

    - ``detector``: ``dlib``, ``haar`` or ``auto`` (dlib when ``merjax[faces]`` is installed);
      ``auto`` is resolved when the settings are made, so what is saved is what ran.
    - ``points``: dlib's 68- or 5-point landmark model (the 5-point one is free for commercial
      use, and alignment needs no more).
    - ``align``: ``frame``: each frame's stable landmarks mapped to the template by its own
      similarity transform (the head's motion removed, the face's kept); ``smoothed``: the same,
      each transform averaged with its neighbours' over ``smooth`` frames; ``onset``: the onset
      frame's transform for every frame (the head's motion stays); ``box``: one detector box on
      the first frame crops every frame (merjax before landmarks, and Haar's only choice).
      ``auto``: ``frame`` with landmarks, ``box`` without (docs/faces.md has the measurement).
    - ``redetect_s``: in long videos and streams, seconds between detections (landmarks are
      taken on every frame, from the last frame's face).
    """

    detector: str = "auto"
    points: int = 68
    align: str = "auto"
    template: int = template.VERSION
    smooth: int = 5
    redetect_s: float = 1.0

    def __post_init__(self):
        if self.detector not in ("auto", "dlib", "haar"):
            raise ValueError(
                f"faces.detector must be 'auto', 'dlib' or 'haar', got {self.detector!r}"
            )
        object.__setattr__(self, "detector", models.resolve(self.detector))
        if self.points not in (68, 5):
            raise ValueError(f"faces.points must be 68 or 5, got {self.points!r}")
        if self.align not in (*ALIGNS, "auto"):
            raise ValueError(f"faces.align must be one of {ALIGNS} or 'auto', got {self.align!r}")
        if self.mode != "box" and self.detector != "dlib":
            raise ValueError(
                f"faces.align={self.align!r} needs landmarks, which the {self.detector!r} "
                f"detector has not: faces.detector='dlib' ({models.INSTALL})"
            )
        if self.template != template.VERSION:
            raise ValueError(
                f"faces.template {self.template!r} is not this merjax's template "
                f"({template.VERSION}): the model was made by another version"
            )
        if not isinstance(self.smooth, int) or not 1 <= self.smooth <= 101:
            raise ValueError(f"faces.smooth must be an odd integer 1..101, got {self.smooth!r}")
        if self.smooth % 2 == 0:
            raise ValueError(f"faces.smooth must be odd, got {self.smooth!r}")
        r = self.redetect_s
        if not isinstance(r, (int, float)) or not 0 < r <= 3600:
            raise ValueError(f"faces.redetect_s must be in (0, 3600] seconds, got {r!r}")

    @property
    def landmarks(self) -> bool:
        return self.detector == "dlib"

    @property
    def mode(self) -> str:
        """The alignment that runs: ``align``, with ``auto`` resolved by the detector (kept as
        ``auto`` in the settings, so that ``--set flow.faces.detector=haar`` alone is valid)."""
        if self.align != "auto":
            return self.align
        return "frame" if self.landmarks else "box"

    def model(self) -> models.FaceModel:
        return models.get(self.detector, self.points)

    def describe(self) -> str:
        if self.detector == "haar":
            return "faces: OpenCV Haar box on the first frame (no landmarks)"
        how = {
            "frame": "each frame aligned to the template on its stable landmarks",
            "smoothed": f"each frame aligned, transforms smoothed over {self.smooth} frames",
            "onset": "every frame aligned by the onset frame's transform",
            "box": "a dlib box on the first frame",
        }[self.mode]
        return f"faces: dlib HOG + {self.points}-point landmarks, {how} (template {self.template})"


OLD = dict(detector="haar", align="box")
"""What model folders and caches from before the face pipeline used."""

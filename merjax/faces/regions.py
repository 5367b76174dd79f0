"""Facial regions defined by landmarks, as boxes in crop units (x0, y0, x1, y1 of the crop).

The names are the spotting signal's (:data:`merjax.spotting.signal.REGIONS`, which keeps fixed
fractions of a face box for faces without landmarks): brows, eyes, nose, cheeks, the mouth's two
halves and the chin, "left" meaning the image's left. Each box is the span of its landmarks
(iBUG 300-W's 68 points), widened by a fraction of ``d``, the outer eye corners' distance:

- brows (17-21, 22-26): reach up 0.2 d (a raise) and down 0.08 d;
- eyes (36-41, 42-47): 0.08 d around (the lids; spotting masks them against blinks);
- nose (29-35, below the bridge): the reference whose mean flow is the head's (SOFTNet);
- cheeks: from below the eye to the mouth corners' height, between the eye's outer corner and
  the nose's wing;
- mouth (48-67): split at its middle, 0.08 d around;
- chin: under the lower lip (57) to the jaw's lowest point (8), between the mouth corners.
"""

from __future__ import annotations

import numpy as np

from merjax.faces import align, template

NAMES = (
    "brow_left",
    "brow_right",
    "eye_left",
    "eye_right",
    "nose",
    "cheek_left",
    "cheek_right",
    "mouth_left",
    "mouth_right",
    "chin",
)


def boxes(points_68x2: np.ndarray, size: tuple[int, int]) -> dict[str, tuple[float, ...]]:
    """The regions of a 68-point shape given in pixels of an ``(H, W)`` crop, in crop units."""
    p = np.asarray(points_68x2, np.float64)
    if p.shape != (68, 2):
        raise ValueError(f"regions need a [68, 2] shape, got {p.shape}")
    d = float(np.linalg.norm(p[45] - p[36]))

    def span(idx, left=0.08, up=0.08, right=0.08, down=0.08):
        q = p[list(idx)]
        return (q[:, 0].min() - left * d, q[:, 1].min() - up * d,
                q[:, 0].max() + right * d, q[:, 1].max() + down * d)  # fmt: skip

    mouth = span(range(48, 68))
    mid = float(p[list(range(48, 68)), 0].mean())
    out = {
        "brow_left": span(range(17, 22), up=0.2),
        "brow_right": span(range(22, 27), up=0.2),
        "eye_left": span(range(36, 42)),
        "eye_right": span(range(42, 48)),
        "nose": span(range(29, 36), left=0.04, right=0.04, up=0.0, down=0.04),
        "cheek_left": (p[36, 0], p[41, 1] + 0.12 * d, p[31, 0] - 0.04 * d, p[48, 1]),
        "cheek_right": (p[35, 0] + 0.04 * d, p[46, 1] + 0.12 * d, p[45, 0], p[54, 1]),
        "mouth_left": (mouth[0], mouth[1], mid, mouth[3]),
        "mouth_right": (mid, mouth[1], mouth[2], mouth[3]),
        "chin": (p[48, 0], p[57, 1] + 0.04 * d, p[54, 0], p[8, 1]),
    }
    h, w = size
    unit = {}
    for name in NAMES:
        x0, y0, x1, y1 = out[name]
        x0, x1 = sorted((float(np.clip(x0 / w, 0, 1)), float(np.clip(x1 / w, 0, 1))))
        y0, y1 = sorted((float(np.clip(y0 / h, 0, 1)), float(np.clip(y1 / h, 0, 1))))
        unit[name] = (x0, y0, x1, y1)
    return unit


def template_boxes() -> dict[str, tuple[float, ...]]:
    """The regions of the template face (aligned crops of a 5-point model, whose shape has no
    brows or mouth: an aligned face has them about where the template has)."""
    return boxes(align.template_points((1000, 1000)), (1000, 1000))


def of_shape(points_Px2: np.ndarray, M_2x3: np.ndarray, size) -> dict[str, tuple[float, ...]]:
    """The regions of a face whose landmarks (in frame pixels) are mapped into its ``size``
    crop by ``M``: from its own 68 points, or the template's for 5."""
    if len(points_Px2) == 68:
        return boxes(align.apply(M_2x3, points_Px2), size)
    if len(points_Px2) == len(template.FIVE_AS_68):
        return template_boxes()
    raise ValueError(f"a face shape has 68 or 5 points, got {len(points_Px2)}")

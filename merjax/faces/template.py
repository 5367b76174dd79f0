"""The canonical face that alignment maps every frame to, and which landmarks are stable.

The 68 points follow iBUG 300-W's order (dlib's 68-point model): jaw 0-16, brows 17-26, nose
27-35, eyes 36-47, mouth 48-67; "left" and "right" below are the image's (a subject's right brow
is the image's left). The template is in crop units (x / W, y / H of the aligned crop): dlib's
landmarks of the astronaut photograph (``skimage.data.astronaut()``), eyes levelled, made
left-right symmetric by averaging each point with its mirror partner, scaled so that the outer
eye corners are ``1 / 1.8`` of the crop's width apart, the eyes' midpoint at ``(0.5, 0.25)``. So
the crop spans 1.8 outer-eye-corner distances each way: the brows' top lies 0.12 below the crop's
top edge and the chin 0.06 above its bottom, the jaw 0.07 inside either side -- brows and chin are
inside the crop with room for a raise or a dropped jaw (docs/faces.md).
"""

from __future__ import annotations

import numpy as np

VERSION = 1  # bump when the template or the stable points change (flow caches key on it)

TEMPLATE_68 = np.array(
    [
        (0.0694, 0.2774), (0.0786, 0.3887), (0.0927, 0.4951), (0.1109, 0.6018), (0.1529, 0.7036),
        (0.2128, 0.7916), (0.3010, 0.8657), (0.3936, 0.9262), (0.5000, 0.9398), (0.6064, 0.9262),
        (0.6990, 0.8657), (0.7872, 0.7916), (0.8471, 0.7036), (0.8891, 0.6018), (0.9073, 0.4951),
        (0.9214, 0.3887), (0.9306, 0.2774), (0.1342, 0.1804), (0.1851, 0.1248), (0.2590, 0.1155),
        (0.3333, 0.1248), (0.4072, 0.1525), (0.5928, 0.1525), (0.6667, 0.1248), (0.7410, 0.1155),
        (0.8149, 0.1248), (0.8658, 0.1804), (0.5000, 0.2356), (0.5000, 0.3192), (0.5000, 0.3931),
        (0.5000, 0.4670), (0.4074, 0.5090), (0.4538, 0.5228), (0.5000, 0.5321), (0.5462, 0.5228),
        (0.5926, 0.5090), (0.2222, 0.2407), (0.2686, 0.2083), (0.3333, 0.2083), (0.3843, 0.2593),
        (0.3241, 0.2637), (0.2686, 0.2637), (0.6157, 0.2593), (0.6667, 0.2083), (0.7314, 0.2083),
        (0.7778, 0.2407), (0.7314, 0.2637), (0.6759, 0.2637), (0.2917, 0.5881), (0.3705, 0.5833),
        (0.4444, 0.5829), (0.5000, 0.5972), (0.5556, 0.5829), (0.6295, 0.5833), (0.7083, 0.5881),
        (0.6344, 0.6805), (0.5603, 0.7221), (0.5000, 0.7269), (0.4397, 0.7221), (0.3656, 0.6805),
        (0.3148, 0.5972), (0.4492, 0.6154), (0.5000, 0.6249), (0.5508, 0.6154), (0.6852, 0.5972),
        (0.5556, 0.6757), (0.5000, 0.6803), (0.4444, 0.6757),
    ],
    np.float32,
)  # fmt: skip

# Stable points: the eye corners, the nose bridge and tip and the nose's base. An expression moves
# the brows, the lids and the mouth, so those never move the transform; the inner eye corners and
# the nose move least of all (SOFTNet and MEAN take the nose's motion as the head's).
STABLE_68 = (27, 28, 29, 30, 33, 36, 39, 42, 45)

# dlib's 5-point model: outer and inner corner of the image-right eye, of the image-left eye, and
# the base of the nose -- the same places as these points of the 68.
FIVE_AS_68 = (45, 42, 36, 39, 33)


def stable(points_Px2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(points [S, 2], template [S, 2])``: the stable points of a 68- or 5-point shape and their
    places in the template (crop units)."""
    p = np.asarray(points_Px2, np.float32)
    if len(p) == 68:
        idx = STABLE_68
        return p[list(idx)], TEMPLATE_68[list(idx)]
    if len(p) == 5:
        return p, TEMPLATE_68[list(FIVE_AS_68)]
    raise ValueError(f"a face shape has 68 or 5 points, got {len(p)}")

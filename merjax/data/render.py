"""Drawing synthetic faces and their motions: what the synthetic databases show, as images.

A face (:func:`draw_face`) differs per subject in geometry, skin tone and texture; motions are
Gaussian blobs where the objective classes' action units act (:func:`class_blobs`,
:func:`motion_field`), with an onset -> apex -> offset intensity (:func:`intensity_profile`);
:func:`render_clip` warps a face through them with head drift, nuisance motion, sensor noise and
rounding to uint8. The layout writers (:mod:`merjax.data.synthetic`,
:mod:`merjax.data.synthetic_long`) decide what to draw and where to write it.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

# Action-unit motions in face coordinates: (x, y) of the blob centre as fractions of the face
# box, (vx, vy) its direction; "m" mirrors the blob to the other side with vx negated.
_AU_BLOBS: dict[int, list[tuple[float, float, float, float, bool]]] = {
    0: [(0.38, 0.70, -0.4, -0.9, True), (0.30, 0.55, 0.0, -0.5, True)],
    1: [
        (0.33, 0.31, 0.0, -1.0, True),
        (0.42, 0.31, 0.0, -0.8, True),
        (0.33, 0.38, 0.0, -0.4, True),
    ],
    2: [(0.35, 0.31, 0.6, 0.8, True), (0.33, 0.41, 0.0, -0.3, True)],
    3: [(0.44, 0.52, 0.0, -0.8, True), (0.50, 0.63, 0.0, -1.0, False)],
    4: [(0.38, 0.70, 0.0, 1.0, True), (0.50, 0.82, 0.0, -0.6, False)],
}


MEGC2019_MOTIONS: dict[str, tuple[int, ...]] = {
    "negative": (2, 3, 4),
    "positive": (0,),
    "surprise": (1,),
}
"""The objective-class motions (0-based: I..V) that show each MEGC 2019 class: negative is one
of III-V."""


def draw_face(rng: np.random.Generator, side: int) -> np.ndarray:
    """A neutral face, ``[side, side]`` float32 grey, on a dark background.

    Proportions were chosen so that OpenCV's frontal-face Haar cascade finds it.
    """
    s = side
    img = np.full((s, s), 40.0, np.float32)
    yy, xx = np.mgrid[0:s, 0:s] / s
    cx, cy = 0.5 + rng.uniform(-0.02, 0.02), 0.52
    skin = rng.uniform(150, 200)
    ell = ((xx - cx) / rng.uniform(0.33, 0.4)) ** 2 + ((yy - cy) / rng.uniform(0.43, 0.48)) ** 2
    img = np.where(ell < 1, skin - 25 * (xx - cx) - 30 * np.clip(ell, 0, 1), img).astype(np.float32)

    def ellipse(x, y, ax, ay, value, angle=0.0):
        cv2.ellipse(
            img,
            (int(x * s * 16), int(y * s * 16)),
            (int(ax * s * 16), int(ay * s * 16)),
            angle,
            0,
            360,
            float(value),
            -1,
            cv2.LINE_AA,
            4,
        )

    ey, ex = rng.uniform(0.38, 0.43), rng.uniform(0.15, 0.19)
    for sign in (-1, 1):
        ellipse(cx + sign * ex, ey, 0.08, 0.035, skin * 0.65)  # eye socket
        ellipse(cx + sign * ex, ey, 0.025, 0.022, 30)  # iris
        ellipse(
            cx + sign * ex,
            ey - rng.uniform(0.07, 0.09),
            0.08,
            0.02,
            skin * 0.3,
            sign * rng.uniform(0, 12),
        )  # brow
    ellipse(cx, 0.57, 0.05, 0.025, skin * 0.55)  # nose base
    ellipse(cx, 0.50, 0.025, 0.08, min(255.0, skin * 1.15))  # nose bridge
    ellipse(cx, rng.uniform(0.68, 0.72), rng.uniform(0.10, 0.14), 0.025, skin * 0.4)  # mouth
    texture = cv2.GaussianBlur(rng.normal(0, 1, (s, s)).astype(np.float32), (0, 0), s / 40)
    img += 8 * texture / texture.std() * (ell < 1)
    return cv2.GaussianBlur(img, (0, 0), s * 0.015)


def class_blobs(rng: np.random.Generator, cls: int) -> list[tuple[float, float, float, float]]:
    """The (x, y, vx, vy) motion blobs of one sample of class ``cls`` (0-based), jittered."""
    if cls < 5:
        out = []
        for x, y, vx, vy, mirror in _AU_BLOBS[cls]:
            sides = ((x, vx), (1 - x, -vx)) if mirror else ((x, vx),)
            for bx, bvx in sides:
                gain = rng.uniform(0.4, 1.0)  # asymmetry
                out.append(
                    (bx + rng.normal(0, 0.025), y + rng.normal(0, 0.025), bvx * gain, vy * gain)
                )
        return out
    if cls == 5:  # one lip corner, pulled sideways (AU14, contempt)
        side = rng.choice([-1, 1])
        return [(0.5 + side * 0.12, 0.70, side * 1.0, -0.2)]
    angle = rng.uniform(0, 2 * np.pi)  # VII: anything, anywhere
    return [(rng.uniform(0.25, 0.75), rng.uniform(0.25, 0.8), np.cos(angle), np.sin(angle))]


def motion_field(blobs, box, shape, width: float) -> np.ndarray:
    """Displacement ``[H, W, 2]`` of unit peak from blobs in face coordinates of ``box``."""
    x0, y0, side = box
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    d = np.zeros((*shape, 2), np.float32)
    for bx, by, vx, vy in blobs:
        g = np.exp(
            -((xx - x0 - bx * side) ** 2 + (yy - y0 - by * side) ** 2) / (2 * (width * side) ** 2)
        )
        d[..., 0] += vx * g
        d[..., 1] += vy * g
    peak = np.abs(d).max()
    return d / peak if peak > 0 else d


def intensity_profile(num: int, apex: int, fall_to: float) -> np.ndarray:
    """Expression intensity per frame index 0..num-1: 0 at onset, 1 at ``apex``, ``fall_to`` at
    the last frame (smooth sin^2 ramps)."""
    t = np.arange(num, dtype=np.float32)
    rise = np.sin(0.5 * np.pi * np.clip(t / max(apex, 1), 0, 1)) ** 2
    down = (
        1
        - (1 - fall_to)
        * np.sin(0.5 * np.pi * np.clip((t - apex) / max(num - 1 - apex, 1), 0, 1)) ** 2
    )
    return np.where(t <= apex, rise, down)


def face_canvas(
    rng: np.random.Generator, frame: tuple[int, int], face: tuple[int, int]
) -> tuple[np.ndarray, tuple[int, int, int]]:
    """``(canvas [H, W] float32, (x0, y0, side))``: a whole frame of size ``frame`` with a face
    of a side drawn from ``face`` (inclusive) at a random place."""
    h, w = frame
    side = int(rng.integers(*face, endpoint=True))
    canvas = np.full((h, w), 40.0, np.float32)
    x0, y0 = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
    canvas[y0 : y0 + side, x0 : x0 + side] = draw_face(rng, side)
    return canvas, (x0, y0, side)


# The astronaut photograph's eye centres (means of dlib's 68 points 36-41 and 42-47), pixels.
ASTRONAUT_EYES = ((203.5, 102.5), (246.0, 104.5))


def photo_canvas(
    rng: np.random.Generator, frame: tuple[int, int], face: tuple[int, int]
) -> tuple[np.ndarray, tuple[int, int, int]]:
    """:func:`face_canvas` with a real face: the astronaut photograph (``skimage.data.astronaut()``,
    public domain; scikit-image must be installed), grey, scaled so that its eyes lie where a drawn
    face's do in a box of a side drawn from ``face`` ((0.32, 0.38) and (0.68, 0.38) of the box),
    at a random place; the rest of the frame is the photograph around the face."""
    try:
        from skimage import data as skdata
    except ImportError:
        raise ImportError(
            "the photo faces need scikit-image (skimage.data.astronaut): pip install scikit-image"
        ) from None
    h, w = frame
    side = int(rng.integers(*face, endpoint=True))
    x0, y0 = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
    photo = cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2GRAY).astype(np.float32)
    (lx, ly), (rx, ry) = ASTRONAUT_EYES
    scale = 0.36 * side / float(np.hypot(rx - lx, ry - ly))
    mid = np.array([(lx + rx) / 2, (ly + ry) / 2])
    M = np.array([[scale, 0, x0 + 0.5 * side - scale * mid[0]],
                  [0, scale, y0 + 0.38 * side - scale * mid[1]]], np.float32)  # fmt: skip
    canvas = cv2.warpAffine(photo, M, (w, h), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT)
    return canvas, (x0, y0, side)


def render_clip(
    rng,
    canvas,
    box,
    cls,
    rise,
    fall,
    extra_after: int,
    *,
    amplitude: tuple[float, float],
    noise: float,
    nuisance: float,
) -> list[np.ndarray]:
    """Frames onset..offset(+extra_after) of one clip as uint8 images: class ``cls``'s motion
    at a peak displacement drawn from ``amplitude`` (pixels), an unrelated motion with
    probability ``nuisance``, head drift and sensor noise of ``noise`` grey levels."""
    h, w = canvas.shape
    side = box[2]
    amp = rng.uniform(*amplitude)
    width = rng.uniform(0.06, 0.09)
    motion = amp * motion_field(class_blobs(rng, cls), box, (h, w), width)
    if rng.random() < nuisance:  # an unrelated twitch somewhere on the face
        angle = rng.uniform(0, 2 * np.pi)
        nb = [(rng.uniform(0.25, 0.75), rng.uniform(0.25, 0.85), np.cos(angle), np.sin(angle))]
        motion += rng.uniform(0.3, 1.0) * motion_field(nb, box, (h, w), 0.07)
    num = rise + fall + 1 + extra_after
    intensity = intensity_profile(rise + fall + 1, rise, rng.uniform(0.0, 0.3))
    intensity = np.concatenate([intensity, np.full(extra_after, intensity[-1])])
    head = np.cumsum(rng.normal(0, 0.02 * side / 100, (num, 2)), axis=0).astype(np.float32)
    head -= head[0]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = []
    for i in range(num):
        d = intensity[i] * motion + head[i]
        img = cv2.remap(
            canvas, xx - d[..., 0], yy - d[..., 1], cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT
        )
        img = img + rng.normal(0, noise, img.shape).astype(np.float32)
        out.append(np.clip(np.rint(img), 0, 255).astype(np.uint8))
    return out


def write_jpeg(path: Path, img: np.ndarray) -> None:
    if not cv2.imwrite(str(path), img, [cv2.IMWRITE_JPEG_QUALITY, 92]):
        raise OSError(f"cannot write {path}")

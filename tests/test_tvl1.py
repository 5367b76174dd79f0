"""TV-L1 optical flow against scikit-image's TV-L1 and against known displacements.

OpenCV-contrib's ``DualTVL1OpticalFlow`` is not compared: it ships only in the
``opencv-contrib-python(-headless)`` wheels, which install the same ``cv2`` package as the
project's ``opencv-python-headless`` and replace it (pip cannot hold both without a conflict).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage

from merjax.flow import representation, tvl1

skimage_data = pytest.importorskip("skimage.data")
registration = pytest.importorskip("skimage.registration")
transform = pytest.importorskip("skimage.transform")

SIDE = 96


def _image(name: str) -> np.ndarray:
    img = getattr(skimage_data, name)()
    if img.ndim == 3:
        img = img[..., :3].mean(-1)
    img = transform.resize(img.astype(np.float64) / img.max(), (SIDE, SIDE), anti_aliasing=True)
    return img.astype(np.float32)


def _field(seed: int, magnitude: float) -> np.ndarray:
    """A smooth displacement field ``[H, W, 2]`` (vx, vy) with at most ``magnitude`` px."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SIDE, 0:SIDE] / SIDE
    comps = []
    for _ in range(2):
        a, b, c, d = rng.uniform(0.5, 2.0, 4)
        comps.append(np.sin(np.pi * a * xx + c) * np.cos(np.pi * b * yy + d))
    f = np.stack(comps, -1)
    return (magnitude * f / np.abs(f).max()).astype(np.float32)


def _warp(img: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """The second frame: what is at x in ``img`` is at x + flow(x) (to first order)."""
    yy, xx = np.mgrid[0:SIDE, 0:SIDE].astype(np.float32)
    return ndimage.map_coordinates(
        img, [yy - flow[..., 1], xx - flow[..., 0]], order=3, mode="nearest"
    )


def _epe(est: np.ndarray, truth: np.ndarray, border: int = 6) -> float:
    d = (est - truth)[..., border:-border, border:-border, :]
    return float(np.linalg.norm(d, axis=-1).mean())


def _skimage(f0, f1, **kw) -> np.ndarray:
    v, u = registration.optical_flow_tvl1(f0, f1, **kw)  # (row, col) = (vy, vx)
    return np.stack([u, v], -1)


@pytest.fixture(scope="module")
def pairs():
    images = ["camera", "astronaut", "coffee"]
    out = [
        (_image(n), f)
        for n, f in zip(
            images * 2,
            [_field(s, m) for s, m in zip(range(6), (0.5, 1.0, 1.5, 2.0, 1.0, 1.5), strict=True)],
            strict=True,
        )
    ]
    f0 = np.stack([img for img, _ in out])
    truth = np.stack([f for _, f in out])
    f1 = np.stack([_warp(img, f) for img, f in out])
    return f0, f1, truth


def test_better_than_scikit_image_on_warped_real_images(pairs):
    """End-point error against the known fields: merjax's defaults no worse than scikit-image's
    defaults (within 10%), and with scikit-image's parameters no worse than it with them."""
    f0, f1, truth = pairs
    ours = np.asarray(tvl1(f0, f1))  # one batched call
    theirs = np.stack([_skimage(a, b) for a, b in zip(f0, f1, strict=True)])
    zero = _epe(np.zeros_like(truth), truth)
    assert _epe(ours, truth) <= 1.1 * _epe(theirs, truth) < 0.5 * zero
    matched = np.asarray(tvl1(f0, f1, lambda_=15.0, theta=0.3, nwarps=5, num_iter=10))
    assert _epe(matched, truth) <= 1.1 * _epe(theirs, truth)
    # The two implementations agree with each other about as well as with the truth.
    assert _epe(matched, theirs) <= 1.5 * _epe(theirs, truth)


def test_a_smooth_pattern_moved_by_a_known_shift():
    yy, xx = np.mgrid[0:64, 0:64].astype(np.float32)
    pattern = lambda dx, dy: 0.5 + 0.25 * np.sin((xx - dx) / 4.0) * np.cos((yy - dy) / 5.0)  # noqa: E731
    f0, f1 = pattern(0, 0), pattern(0.7, -0.4)
    flow = np.asarray(tvl1(f0, f1))
    inner = flow[8:-8, 8:-8]
    np.testing.assert_allclose(inner[..., 0].mean(), 0.7, atol=0.05)  # vx > 0: to the right
    np.testing.assert_allclose(inner[..., 1].mean(), -0.4, atol=0.05)  # vy < 0: up
    theirs = _skimage(f0, f1)[8:-8, 8:-8]
    assert np.abs(inner - [0.7, -0.4]).mean() <= 1.1 * np.abs(theirs - [0.7, -0.4]).mean() + 1e-3


def test_conventions_batch_uint8_and_one_trace(pairs):
    f0, f1, _ = pairs
    f0, f1 = f0[:3, :32, :40], f1[:3, :32, :40]  # small frames: this test compiles several shapes
    batched = np.asarray(tvl1(f0[:2].reshape(2, 1, 32, 40), f1[:2].reshape(2, 1, 32, 40)))
    assert batched.shape == (2, 1, 32, 40, 2) and batched.dtype == np.float32
    for i in range(2):
        np.testing.assert_allclose(
            batched[i, 0], tvl1(f0[i], f1[i]), atol=2e-4
        )  # one program vs another
    a8, b8 = (f0[0] * 255).round().astype(np.uint8), (f1[0] * 255).round().astype(np.uint8)
    # uint8 is scaled to [0, 1]: the same flow up to a 1-ulp rounding of the scaling, which the
    # thresholding step can amplify at a few pixels.
    diff = np.abs(np.asarray(tvl1(a8, b8)) - np.asarray(tvl1(a8 / 255.0, b8 / 255.0)))
    assert diff.mean() < 1e-4 and diff.max() < 0.05
    np.testing.assert_array_equal(tvl1(f0[0], f0[0]), 0.0)  # identical frames: no motion
    from merjax.flow import dual_tvl1

    before = dual_tvl1._tvl1._cache_size()
    tvl1(f0[1], f1[1], lambda_=20.0)  # lambda, theta and tau are traced: no new trace
    tvl1(f0[2], f1[2], theta=0.25)
    assert dual_tvl1._tvl1._cache_size() == before


def test_differentiable_with_fixed_iterations():
    rng = np.random.default_rng(0)
    f0 = ndimage.gaussian_filter(rng.random((16, 16)), 2).astype(np.float32)
    f1 = np.roll(f0, 1, axis=1)
    g = jax.jit(jax.grad(lambda a: jnp.sum(tvl1(a, f1, nwarps=2, num_iter=3) ** 2)))(
        jnp.asarray(f0)
    )
    assert g.shape == f0.shape and bool(jnp.all(jnp.isfinite(g))) and float(jnp.abs(g).max()) > 0


def test_ipol_stopping_rule_and_bad_arguments(pairs):
    f0, f1, truth = pairs
    stopped = np.asarray(tvl1(f0[:2], f1[:2], epsilon=0.01, num_iter=300))
    assert _epe(stopped, truth[:2]) < 0.5 * _epe(np.zeros_like(truth[:2]), truth[:2])
    for kwargs, words in (
        ({"lambda_": -1.0}, "lambda_"),
        ({"zfactor": 1.5}, "zfactor"),
        ({"nwarps": 0}, "nwarps"),
        ({"epsilon": 0.0}, "epsilon"),
    ):
        with pytest.raises(ValueError, match=words):
            tvl1(f0[0], f1[0], **kwargs)
    with pytest.raises(ValueError, match="at least 8x8"):
        tvl1(np.zeros((4, 4)), np.zeros((4, 4)))
    with pytest.raises(ValueError, match="non-finite"):
        tvl1(np.full((16, 16), np.nan, np.float32), np.zeros((16, 16), np.float32))


def test_ststnet_input_is_the_flow_then_its_strain():
    """STSTNet's input as the authors' data holds it (norm_u_v_os): u, v, optical strain."""
    y, x = np.mgrid[0:12, 0:12].astype(np.float32)
    flow = jnp.asarray(np.stack([0.3 * x, 0.1 + 0 * y], -1))  # a pure stretch: strain 0.3
    rep = np.asarray(representation(flow, "ststnet"))
    assert rep.shape == (12, 12, 3)
    np.testing.assert_allclose(rep[..., 0], 0.3 * x)
    np.testing.assert_allclose(rep[..., 1], 0.1)
    np.testing.assert_allclose(rep[..., 2], 0.3, atol=1e-6)

"""Horn-Schunck: both variants against independent references, conventions and edge cases."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage

from merjax import flow as flow_lib
from merjax.flow import horn_schunck, representation, resize_flow

SIZES = [(16, 16), (17, 23), (32, 48), (33, 65), (64, 64)]


def _random_pair(shape, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random(shape, dtype=np.float32), rng.random(shape, dtype=np.float32)


def _smooth_pair(shape, seed=0):
    """A smooth image and the same image translated by a sub-pixel amount."""
    rng = np.random.default_rng(seed)
    img = ndimage.gaussian_filter(rng.random((shape[0] + 8, shape[1] + 8)), 2.0)
    img = (img - img.min()) / np.ptp(img)
    moved = ndimage.shift(img, (0.3, -0.7), order=3, mode="nearest")
    return img[4:-4, 4:-4].astype(np.float32), moved[4:-4, 4:-4].astype(np.float32)


def _matlab_reference(prev, curr, smoothness, num_iter, velocity_difference=0.0):
    """float64 NumPy transcription of MATLAB opticalFlowHS (docs/flow.md)."""
    prev, curr = prev.astype(np.float64), curr.astype(np.float64)
    sobel_x = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]) / 8.0
    ix = ndimage.correlate(curr, sobel_x, mode="nearest")
    iy = ndimage.correlate(curr, sobel_x.T, mode="nearest")
    it = curr - prev
    mean4 = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]]) / 4.0
    u = np.zeros_like(curr)
    v = np.zeros_like(curr)
    for _ in range(num_iter):
        u_bar = ndimage.correlate(u, mean4, mode="nearest")
        v_bar = ndimage.correlate(v, mean4, mode="nearest")
        d = (ix * u_bar + iy * v_bar + it) / (smoothness + ix**2 + iy**2)
        u_new, v_new = u_bar - ix * d, v_bar - iy * d
        change = max(np.abs(u_new - u).max(), np.abs(v_new - v).max())
        u, v = u_new, v_new
        if velocity_difference and change < velocity_difference:
            break
    return np.stack([u, v], axis=-1)


def _close(actual, expected, rtol=1e-4):
    """Equal to float32 precision, relative to the field's scale."""
    scale = max(np.abs(expected).max(), 1e-12)
    np.testing.assert_allclose(np.asarray(actual), expected, rtol=0, atol=rtol * scale)


# ------------------------------------------------------------------ classic == pyoptflow


@pytest.mark.parametrize("shape", SIZES)
@pytest.mark.parametrize("make_pair", [_random_pair, _smooth_pair])
def test_classic_equals_pyoptflow(shape, make_pair):
    from pyoptflow import HornSchunck

    im1, im2 = make_pair(shape)
    for alpha, niter in [(0.001, 8), (0.5, 37), (2.0, 100)]:
        u, v = HornSchunck(im1, im2, alpha=alpha, Niter=niter)
        got = horn_schunck(im1, im2, smoothness=alpha, num_iter=niter, variant="classic")
        assert got.dtype == jnp.float32 and got.shape == shape + (2,)
        _close(got, np.stack([u, v], -1))


# ------------------------------------------------------------------ matlab == transcription


@pytest.mark.parametrize("shape", SIZES)
@pytest.mark.parametrize("make_pair", [_random_pair, _smooth_pair])
def test_matlab_equals_numpy_transcription(shape, make_pair):
    im1, im2 = make_pair(shape)
    for smoothness, niter in [(1.0, 10), (0.01, 50), (0.003, 200)]:
        want = _matlab_reference(im1, im2, smoothness, niter)
        got = horn_schunck(im1, im2, smoothness=smoothness, num_iter=niter, variant="matlab")
        _close(got, want)


def test_matlab_is_the_default_with_matlab_defaults():
    im1, im2 = _smooth_pair((24, 40))
    _close(horn_schunck(im1, im2), _matlab_reference(im1, im2, 1.0, 10))


def test_velocity_difference_stopping_rule():
    im1, im2 = _smooth_pair((32, 32))
    for vd in [1e-3, 1e-4, 1e-5]:
        want = _matlab_reference(im1, im2, 0.01, 500, velocity_difference=vd)
        got = horn_schunck(im1, im2, smoothness=0.01, num_iter=500, velocity_difference=vd)
        _close(got, want)
    # A threshold that is never met runs all sweeps, like the fori_loop.
    _close(
        horn_schunck(im1, im2, smoothness=0.01, num_iter=30, velocity_difference=1e-30),
        np.asarray(horn_schunck(im1, im2, smoothness=0.01, num_iter=30)),
    )


def test_velocity_difference_batched_pairs_stop_independently():
    """In a batch, each pair stops on its own: as it does alone. A batch that stopped every pair
    when the first converged (pair 1, at once) or ran all to the slowest would fail. Tolerance:
    the batched and the single-pair programs round differently, which can move a pair's stop by
    one sweep, and one sweep changes no velocity by more than the threshold itself."""
    a = np.stack([_smooth_pair((20, 20), s)[0] for s in range(3)])
    b = np.stack([_smooth_pair((20, 20), s)[1] for s in range(3)])
    b[1] = a[1]  # this pair converges at once
    vd = 1e-4
    kw = dict(smoothness=0.01, num_iter=300, velocity_difference=vd)
    batched = np.asarray(horn_schunck(a, b, **kw))
    for k in range(3):
        np.testing.assert_allclose(batched[k], horn_schunck(a[k], b[k], **kw), rtol=0, atol=vd)
    assert np.abs(batched[0]).max() > 100 * vd  # pairs 0 and 2 move: the tolerance is small


# ------------------------------------------------------------------ conventions on a real face


@pytest.fixture(scope="module")
def face():
    data = pytest.importorskip("skimage.data")
    rgb = data.astronaut()
    grey = rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return grey[20:220, 150:330] / 255.0  # the astronaut's face, 200 x 180


@pytest.mark.parametrize(
    "variant,smoothness,niter", [("classic", 0.05, 500), ("matlab", 0.002, 500)]
)
def test_sign_convention_on_shifted_face(face, variant, smoothness, niter):
    dx, dy = 0.6, -0.4  # right and up
    moved = ndimage.shift(face, (dy, dx), order=3, mode="nearest")
    f = np.asarray(
        horn_schunck(face, moved, smoothness=smoothness, num_iter=niter, variant=variant)
    )
    inner = f[30:-30, 30:-30]
    vx, vy = np.median(inner[..., 0]), np.median(inner[..., 1])
    assert vx > 0 and vy < 0, (vx, vy)
    # Magnitude within 30%: MATLAB's one-frame Sobel derivatives overestimate by ~25% here.
    assert abs(vx - dx) < 0.3 * abs(dx) and abs(vy - dy) < 0.3 * abs(dy), (vx, vy)


def test_matlab_defaults_are_heavily_regularised_but_signed(face):
    moved = ndimage.shift(face, (0.5, 0.5), order=3, mode="nearest")
    f = np.asarray(horn_schunck(face, moved))
    inner = f[30:-30, 30:-30]
    assert np.median(inner[..., 0]) > 0 and np.median(inner[..., 1]) > 0
    assert np.abs(f).max() < 0.5  # smoothness=1 on [0,1] intensities: tiny flow


# ------------------------------------------------------------------ zero flow, NaN, dtypes


@pytest.mark.parametrize("variant", flow_lib.VARIANTS)
def test_identical_frames_give_exactly_zero(variant, face):
    f = horn_schunck(face, face, variant=variant, num_iter=50)
    assert np.all(np.asarray(f) == 0.0)


@pytest.mark.parametrize("variant", flow_lib.VARIANTS)
@pytest.mark.parametrize("value", [0.0, 0.5, 1.0])
def test_constant_frames_give_zero_never_nan(variant, value):
    a = np.full((16, 16), value, np.float32)
    b = np.full((16, 16), value, np.float32)
    f = np.asarray(horn_schunck(a, b, variant=variant, smoothness=1e-3, num_iter=20))
    assert np.all(f == 0.0)
    # Brightness change on a flat frame: never NaN. With replicate borders there is no gradient
    # anywhere, so no flow; classic's zero padding makes an edge at the border (as pyoptflow does).
    f = np.asarray(horn_schunck(a, b + 0.1, variant=variant, smoothness=1e-3, num_iter=20))
    assert np.all(np.isfinite(f))
    if variant == "matlab":
        assert np.all(f == 0.0)
    else:
        assert np.abs(f[8, 8]).max() < np.abs(f[0, 0]).max()


def test_uint8_is_scaled_to_unit_range():
    rng = np.random.default_rng(3)
    a = rng.integers(0, 256, (24, 24), dtype=np.uint8)
    b = rng.integers(0, 256, (24, 24), dtype=np.uint8)
    for variant in flow_lib.VARIANTS:
        np.testing.assert_allclose(
            horn_schunck(a, b, variant=variant),
            horn_schunck(a / 255.0, b / 255.0, variant=variant),
            atol=1e-6,
        )


# ------------------------------------------------------------------ batching and tracing


@pytest.mark.parametrize("variant", flow_lib.VARIANTS)
def test_batched_equals_per_pair(variant):
    a = np.stack([_smooth_pair((21, 19), s)[0] for s in range(6)]).reshape(2, 3, 21, 19)
    b = np.stack([_smooth_pair((21, 19), s)[1] for s in range(6)]).reshape(2, 3, 21, 19)
    batched = horn_schunck(a, b, variant=variant, smoothness=0.1, num_iter=25)
    assert batched.shape == (2, 3, 21, 19, 2)
    for i in range(2):
        for j in range(3):
            single = horn_schunck(a[i, j], b[i, j], variant=variant, smoothness=0.1, num_iter=25)
            np.testing.assert_allclose(batched[i, j], single, rtol=0, atol=1e-7)


def test_traced_once_per_shape():
    from merjax.flow import hs

    core = hs._horn_schunck
    core.clear_cache()
    a, b = _random_pair((13, 11))
    for smoothness in [0.5, 1.0, 2.0]:  # smoothness is traced: no retrace
        horn_schunck(a, b, smoothness=smoothness, num_iter=7)
    horn_schunck(a + 0.1, b, num_iter=7)
    assert core._cache_size() == 1
    horn_schunck(a[:12], b[:12], num_iter=7)  # a new shape compiles once more
    horn_schunck(a[:12] * 0.5, b[:12], num_iter=7)
    assert core._cache_size() == 2


def test_usable_inside_jit_and_differentiable():
    a, b = _smooth_pair((16, 16))

    def loss(s):
        return jnp.sum(horn_schunck(a, b, smoothness=s, num_iter=20) ** 2)

    g = jax.jit(jax.grad(loss))(0.1)
    eps = 1e-3
    fd = (loss(0.1 + eps) - loss(0.1 - eps)) / (2 * eps)
    assert np.isfinite(g) and abs(g - fd) < 2e-2 * abs(fd) + 1e-8
    # and with respect to the frames
    ga = jax.grad(lambda x: jnp.sum(horn_schunck(x, b, variant="classic", num_iter=5)))(a)
    assert ga.shape == a.shape and np.all(np.isfinite(ga))


# ------------------------------------------------------------------ errors


def test_bad_inputs_raise_clear_errors():
    a = np.zeros((8, 8), np.float32)
    with pytest.raises(ValueError, match="same shape"):
        horn_schunck(a, np.zeros((8, 9)))
    with pytest.raises(ValueError, match="at least 2-D"):
        horn_schunck(np.zeros(8), np.zeros(8))
    for bad in [0.0, -1.0, float("nan"), np.ones(2)]:
        with pytest.raises(ValueError, match="smoothness"):
            horn_schunck(a, a, smoothness=bad)
    with pytest.raises(ValueError, match="variant"):
        horn_schunck(a, a, variant="farneback")
    with pytest.raises(ValueError, match="num_iter"):
        horn_schunck(a, a, num_iter=-1)
    with pytest.raises(ValueError, match="velocity_difference"):
        horn_schunck(a, a, variant="classic", velocity_difference=0.1)
    np.testing.assert_array_equal(
        horn_schunck([[0.0, 1.0], [1.0, 0.0]], [[0.0, 1.0], [1.0, 0.0]]), 0.0
    )
    with pytest.raises(TypeError, match="dtype"):
        horn_schunck(a.astype(bool), a.astype(bool))


# ------------------------------------------------------------------ representations


def test_representation_channels_and_values():
    rng = np.random.default_rng(0)
    f = jnp.asarray(rng.normal(size=(2, 9, 10, 2)), jnp.float32)
    for kind, channels in flow_lib.REPRESENTATIONS.items():
        r = representation(f, kind)
        assert r.shape == (2, 9, 10, channels), kind
    np.testing.assert_array_equal(representation(f, "vx")[..., 0], f[..., 0])
    np.testing.assert_array_equal(representation(f, "vy")[..., 0], f[..., 1])
    np.testing.assert_allclose(
        representation(f, "mag")[..., 0], np.hypot(f[..., 0], f[..., 1]), rtol=1e-6
    )
    np.testing.assert_array_equal(representation(f, "vxvym")[..., :2], f)
    with pytest.raises(ValueError, match="unknown flow representation"):
        representation(f, "rgb")
    with pytest.raises(ValueError, match=r"\[..., H, W, 2\]"):
        representation(f[..., :1], "vx")


def test_magnitude_gradient_is_finite_at_zero_flow():
    g = jax.grad(lambda f: representation(f, "mag").sum())(jnp.zeros((4, 4, 2)))
    assert np.all(np.isfinite(g))


def test_optical_strain_of_known_fields():
    y, x = np.mgrid[0:12, 0:12].astype(np.float32)
    # Pure stretch u = a x: e_xx = a, all else 0.
    stretch = np.stack([0.3 * x, 0 * y], -1)
    np.testing.assert_allclose(
        representation(jnp.asarray(stretch), "strain")[..., 0], 0.3, atol=1e-6
    )
    # Pure shear u = b y: e_xy = e_yx = b/2, |e| = sqrt(2) * b / 2.
    shear = np.stack([0.2 * y, 0 * x], -1)
    np.testing.assert_allclose(
        representation(jnp.asarray(shear), "strain")[..., 0], np.sqrt(2) * 0.1, atol=1e-6
    )
    # Rigid translation: no strain.
    np.testing.assert_array_equal(representation(jnp.ones((5, 5, 2)), "strain"), 0.0)


def test_resize_flow_scales_vectors_with_the_image():
    f = jnp.broadcast_to(jnp.asarray([1.0, 2.0]), (3, 64, 48, 2))
    r = resize_flow(f, (32, 12))
    assert r.shape == (3, 32, 12, 2)
    np.testing.assert_allclose(r[..., 0], 1.0 * 12 / 48, rtol=1e-6)
    np.testing.assert_allclose(r[..., 1], 2.0 * 32 / 64, rtol=1e-6)
    with pytest.raises(ValueError, match="size"):
        resize_flow(f, (0, 4))


@pytest.mark.parametrize(
    "shape_in, size",
    [((64, 64), (28, 28)), ((61, 37), (28, 33)), ((8, 8), (64, 64)), ((9, 9), (9, 4))],
)
def test_resize_as_matrices_is_jax_image_resize(shape_in, size):
    """merjax resamples with precomputed weight matrices (exportable); they are jax.image's
    weights, computed in float64, so they agree with it to jax's own float32 weight error."""
    from merjax.flow import stencils

    rng = np.random.default_rng(0)
    g = rng.standard_normal((2, *shape_in)).astype(np.float32)
    for method, antialias in (("linear", True), ("cubic", False)):
        ref = jax.image.resize(g, (2, *size), method, antialias=antialias)
        np.testing.assert_allclose(
            stencils.resize_hw(g, size, method, antialias), ref, atol=1e-4 * np.abs(g).max()
        )
    w = stencils.resize_weights(*shape_in[:1], size[0], "linear", True)
    np.testing.assert_allclose(w.sum(axis=0), 1.0, atol=1e-6)  # every output is a mean


def test_edge_padding_by_slices_is_jnp_pad():
    from merjax.flow import stencils

    x = jnp.arange(2 * 5 * 4, dtype=jnp.float32).reshape(2, 5, 4)
    for widths in (((1, 1), (1, 1)), ((3, 0), (0, 2)), ((0, 0), (2, 2))):
        np.testing.assert_array_equal(
            stencils.pad_edge(x, widths), jnp.pad(x, ((0, 0), *widths), mode="edge")
        )

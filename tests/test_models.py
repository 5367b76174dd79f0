"""Networks: the paper's parameter counts, shapes, features, vmapped folds, masks, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from merjax import models
from merjax.models import resnet, shallow

import by_hand
from toy import ToyCNN

# ------------------------------------------------------------------ parameter counts


@pytest.mark.parametrize("in_channels", [1, 2])
@pytest.mark.parametrize("num_layers", [1, 2, 3, 4])
def test_shallow_parameter_counts_table2(in_channels, num_layers):
    model = models.build("shallow", num_layers, in_channels)
    got = models.count_params(model, (64, 64, in_channels))
    assert got == shallow.RULE_PARAMS[in_channels][num_layers]
    paper = shallow.PAPER_PARAMS[in_channels][num_layers]
    if (in_channels, num_layers) == (1, 3):
        assert (got, paper) == (331_301, 333_121)  # the documented slip in the paper
    else:
        assert got == paper


@pytest.mark.parametrize("num_layers", resnet.DEPTHS)
def test_resnet_parameter_counts_table1(num_layers):
    got = models.count_params(models.build("resnet", num_layers, 3), (64, 64, 3))
    assert got == resnet.RULE_PARAMS[num_layers]
    if num_layers <= 13:
        assert got == resnet.PAPER_PARAMS[num_layers]
    else:
        assert (got, resnet.PAPER_PARAMS[num_layers]) in [
            (6_462_213, 5_400_725),
            (11_183_877, 10_670_932),
        ]


def test_table9_filter_sums():
    """Table 9's bracketed numbers are the running sums of the conv filters."""
    for in_channels, sums in [(1, [16, 48, 112, 240]), (2, [32, 96, 224, 480])]:
        for n, want in enumerate(sums, start=1):
            variables = jax.eval_shape(
                lambda k: models.init(
                    models.build("shallow", n, in_channels), k, (64, 64, in_channels)
                ),
                jax.random.key(0),
            )
            convs = [
                v
                for path, v in jax.tree_util.tree_flatten_with_path(variables["params"])[0]
                if jax.tree_util.keystr(path).endswith("['conv']['bias']")
            ]
            assert sum(b.shape[0] for b in convs) == want


# ------------------------------------------------------------------ forward, features


def _init(model, input_shape, seed=0):
    """models.init, jitted: one compiled program instead of a deep network's ops one by one."""
    return jax.jit(lambda k: models.init(model, k, input_shape))(jax.random.key(seed))


def _apply(model, variables, x, **kw):
    """model.apply, jitted (keyword arguments are static)."""
    return jax.jit(lambda v, x: model.apply(v, x, **kw))(variables, x)


def _x(n, hw, c, seed=0):
    return jax.random.normal(jax.random.key(seed), (n, hw, hw, c))


@pytest.mark.parametrize(
    "num_layers,feature_dim",
    [(1, 16 * 32 * 32), (2, 32 * 32 * 32), (3, 64 * 31 * 31), (4, 128 * 31 * 31)],
)
def test_shallow_forward_shapes_and_features(num_layers, feature_dim):
    model = models.build("shallow", num_layers, 1)
    variables = _init(model, (64, 64, 1))
    x = _x(3, 64, 1)
    logits, feats = _apply(model, variables, x, return_features=True)
    assert logits.shape == (3, 5) and feats.shape == (3, feature_dim)
    fc = variables["params"]["fc"]
    np.testing.assert_allclose(logits, feats @ fc["kernel"] + fc["bias"], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(_apply(model, variables, x), logits, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("num_layers,feature_dim", [(1, 64 * 16 * 16), (7, 128 * 4 * 4), (17, 512)])
def test_resnet_forward_shapes_and_features(num_layers, feature_dim):
    model = models.build("resnet", num_layers, 3)
    variables = _init(model, (64, 64, 3))
    logits, feats = _apply(model, variables, _x(2, 64, 3), return_features=True)
    assert logits.shape == (2, 5) and feats.shape == (2, feature_dim)
    assert np.all(np.isfinite(logits))


def test_train_mode_updates_batch_stats_and_eval_uses_them():
    """Training mode normalises with the batch's statistics and moves the running ones by
    ``0.9 * old + 0.1 * batch`` (PyTorch's momentum 0.1, for networks that predict with running
    statistics); eval mode normalises with the stored statistics and MATLAB's epsilon 1e-5.
    Checked against NumPy (tests/by_hand.py): a momentum of 0.1 (Flax's meaning inverted), the
    unbiased variance, epsilon 1e-3 (Keras) or eval with batch statistics would fail."""
    model = ToyCNN(2)
    shapes = jax.eval_shape(lambda k: models.init(model, k, (6, 6, 2)), jax.random.key(0))
    rng = np.random.default_rng(3)
    v = jax.tree.map(lambda a: rng.normal(0.3, 0.5, a.shape).astype(np.float32), shapes)
    v["batch_stats"]["conv1"]["bn"]["var"] = np.abs(v["batch_stats"]["conv1"]["bn"]["var"]) + 0.1
    x = np.asarray(_x(8, 6, 2)) * 3 + 1
    _, updates = jax.jit(lambda v, x: model.apply(v, x, train=True, mutable=["batch_stats"]))(v, x)
    c = v["params"]["conv1"]["conv"]
    mean_b, var_b = by_hand.batch_moments(by_hand.conv_same(x, c["kernel"], c["bias"]))
    old = v["batch_stats"]["conv1"]["bn"]
    new = updates["batch_stats"]["conv1"]["bn"]
    np.testing.assert_allclose(new["mean"], 0.9 * old["mean"] + 0.1 * mean_b, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(new["var"], 0.9 * old["var"] + 0.1 * var_b, rtol=1e-4, atol=1e-5)
    logits, feats = jax.jit(lambda v, x: model.apply(v, x, return_features=True))(v, x)
    want_logits, want_feats = by_hand.toy_forward(v["params"], v["batch_stats"], x)
    np.testing.assert_allclose(feats, want_feats, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(logits, want_logits, rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------ vmapped folds


@pytest.mark.slow
@pytest.mark.parametrize(
    "arch,num_layers,channels", [("shallow", 3, 1), ("resnet", 3, 3), ("toy", 1, 2)]
)
def test_vmapped_forward_equals_separate_calls(arch, num_layers, channels):
    model = ToyCNN(channels) if arch == "toy" else models.build(arch, num_layers, channels)
    keys = jax.random.split(jax.random.key(7), 3)
    stack = jax.jit(jax.vmap(lambda k: models.init(model, k, (16, 16, channels))))(keys)
    x = _x(3 * 4, 16, channels).reshape(3, 4, 16, 16, channels)  # a different batch per fold

    def train_fwd(v, xb):
        return model.apply(v, xb, train=True, mutable=["batch_stats"])

    eval_v = jax.jit(jax.vmap(lambda v, xb: model.apply(v, xb)))(stack, x)
    train_v, stats_v = jax.jit(jax.vmap(train_fwd))(stack, x)
    for f in range(3):
        v_f = jax.tree.map(lambda a: a[f], stack)
        np.testing.assert_allclose(eval_v[f], jax.jit(model.apply)(v_f, x[f]), rtol=1e-5, atol=1e-5)
        logits_f, stats_f = jax.jit(train_fwd)(v_f, x[f])
        np.testing.assert_allclose(train_v[f], logits_f, rtol=1e-5, atol=1e-5)
        for a, b in zip(jax.tree.leaves(stats_v), jax.tree.leaves(stats_f), strict=True):
            np.testing.assert_allclose(a[f], b, rtol=1e-5, atol=1e-6)


def test_batchnorm_mask_excludes_padding_samples():
    """A padded batch with a mask trains exactly like the real samples alone."""
    model = models.build("shallow", 2, 1)
    variables = _init(model, (16, 16, 1))
    real = _x(5, 16, 1, seed=1)
    junk = _x(3, 16, 1, seed=2) * 100 + 50
    padded = jnp.concatenate([real, junk])
    mask = jnp.arange(8) < 5
    train = jax.jit(lambda v, x, m: model.apply(v, x, train=True, mask=m, mutable=["batch_stats"]))
    alone, st_alone = train(variables, real, None)
    masked, st_masked = train(variables, padded, mask)
    np.testing.assert_allclose(masked[:5], alone, rtol=1e-4, atol=1e-4)
    for a, b in zip(jax.tree.leaves(st_alone), jax.tree.leaves(st_masked), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------ names and errors


def test_by_name():
    model, rep = models.by_name("Vy-3CL")
    assert (
        rep == "vy"
        and isinstance(model, models.ShallowCNN)
        and model.num_layers == 3
        and model.in_channels == 1
    )
    model, rep = models.by_name("vxvy-4cl")
    assert rep == "vxvy" and model.in_channels == 2 and model.num_layers == 4
    model, rep = models.by_name("resnet8")
    assert rep == "vxvym" and isinstance(model, models.ResNetDepth) and model.num_layers == 7
    assert models.count_params(models.by_name("resnet18")[0], (64, 64, 3)) == 11_183_877
    for bad in ["resnet9", "rgb-3cl", "vy-5cl", "vgg16"]:
        with pytest.raises(ValueError):
            models.by_name(bad)


@pytest.mark.parametrize(
    "args,message",
    [
        (("resnet", 8, 3), "odd number of conv layers"),
        (("resnet", 19, 3), "odd number of conv layers"),
        (("shallow", 0, 1), "1 to 4 conv layers"),
        (("shallow", 5, 1), "1 to 4 conv layers"),
        (("vgg", 3, 1), "arch"),
        (("shallow", 3, 0), "in_channels"),
    ],
)
def test_bad_build_arguments_raise_clear_errors(args, message):
    with pytest.raises(ValueError, match=message):
        models.build(*args)


def test_wrong_input_raises_clear_errors():
    model = models.build("shallow", 1, 1)
    variables = models.init(model, jax.random.key(0), (16, 16, 1))
    with pytest.raises(ValueError, match="built for 1 input channel"):
        model.apply(variables, jnp.zeros((2, 16, 16, 2)))
    with pytest.raises(ValueError, match=r"\[N, H, W, C\]"):
        model.apply(variables, jnp.zeros((16, 16, 1)))


# ------------------------------------------------------------------ the convolution's two
# formulations

# Every kind of convolution the networks use: (kernel, stride, padding, Cin, F, input side). The
# channel counts are cut down (the code path does not depend on them); odd sides check padding.
CONV_SHAPES = [
    (5, 1, "SAME", 2, 8, 12),  # shallow conv1
    (3, 1, "SAME", 4, 8, 9),  # shallow conv2-4, tiny
    (7, 2, ((3, 3), (3, 3)), 3, 8, 15),  # resnet stem
    (3, 1, ((1, 1), (1, 1)), 8, 8, 8),  # basic block
    (3, 2, ((1, 1), (1, 1)), 8, 16, 7),  # first block of a stage
    (1, 2, "VALID", 8, 16, 7),  # projection shortcut
]


@pytest.mark.parametrize("conv_impl", ["lax", "im2col"])
@pytest.mark.parametrize("k,s,pad,cin,f,side", CONV_SHAPES)
def test_conv_equals_flax_conv(conv_impl, k, s, pad, cin, f, side):
    """Same parameters (names, shapes, initial values) as nn.Conv, same outputs and gradients."""
    import flax.linen as nn

    from merjax.models.layers import Conv

    rng = np.random.default_rng(k * 100 + side)
    x = rng.normal(size=(3, side, side, cin)).astype(np.float32)
    ref = nn.Conv(f, (k, k), strides=(s, s), padding=pad)
    ours = Conv(f, k, s, pad, conv_impl)
    shapes = jax.eval_shape(ours.init, jax.random.key(0), x)  # no compile: the pytree itself
    assert shapes == jax.eval_shape(ref.init, jax.random.key(0), x)
    v_ref = jax.tree.map(lambda a: rng.normal(size=a.shape).astype(np.float32), shapes)
    y_ref, y = jax.jit(ref.apply)(v_ref, x), jax.jit(ours.apply)(v_ref, x)
    assert y.shape == y_ref.shape
    np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-5)
    w = jax.random.normal(jax.random.key(2), y.shape)  # a loss that weighs every output differently

    def grads(module):
        return jax.jit(jax.grad(lambda v, x: jnp.sum(module.apply(v, x) * w), argnums=(0, 1)))(
            v_ref, x
        )

    for a, b in zip(jax.tree.leaves(grads(ours)), jax.tree.leaves(grads(ref)), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_paper_networks_initialise_as_matlab_2018a_and_ststnet_as_pytorch():
    """The paper's networks start as MATLAB R2018a's layers do: conv and dense weights normal with
    standard deviation 0.01, biases 0, BatchNorm scale 1 and offset 0. STSTNet starts as the
    authors' PyTorch model: weights and biases uniform in +-1/sqrt(fan_in). Flax's defaults
    (LeCun normal, std 1/sqrt(fan_in): 0.2 for Vy-3CL's first conv) or Glorot fail."""
    model, _ = models.by_name("vy-3cl")
    v = jax.jit(lambda k: models.init(model, k, (64, 64, 1)))(jax.random.key(0))
    p = v["params"]
    kernels = [p[f"conv{i}"]["conv"]["kernel"] for i in (1, 2, 3)] + [p["fc"]["kernel"]]
    for w in kernels:
        w = np.asarray(w)
        assert abs(w.mean()) < 0.002 and w.std() == pytest.approx(0.01, rel=0.1), w.shape
    for leaf in [p[f"conv{i}"]["conv"]["bias"] for i in (1, 2, 3)] + [p["fc"]["bias"]]:
        np.testing.assert_array_equal(leaf, 0)
    for i in (1, 2, 3):
        np.testing.assert_array_equal(p[f"conv{i}"]["bn"]["scale"], 1)
        np.testing.assert_array_equal(p[f"conv{i}"]["bn"]["bias"], 0)
    st, _ = models.by_name("ststnet", num_classes=3)
    q = jax.jit(lambda k: models.init(st, k, (28, 28, 3)))(jax.random.key(0))["params"]
    for name, fan_in in (("conv3", 27), ("fc", 400)):
        bound = fan_in**-0.5
        kernel, bias = np.abs(q[name]["kernel"]), np.abs(q[name]["bias"])
        assert kernel.max() <= bound and kernel.max() > 0.9 * bound
        assert bias.max() <= bound and bias.min() > 0  # drawn, not zero
    w = np.asarray(q["fc"]["kernel"])
    assert w.std() == pytest.approx(400**-0.5 / np.sqrt(3), rel=0.1)  # uniform, not normal
    with pytest.raises(ValueError, match="init"):
        models.init(ToyCNN(1).clone(weight_init="glorot"), jax.random.key(0), (4, 4, 1))


@pytest.mark.parametrize("name", ["vy-3cl", "resnet8"])
def test_networks_give_the_same_logits_either_way(name):
    lax_net, rep = models.by_name(name, conv_impl="lax")
    im2col_net, _ = models.by_name(name, conv_impl="im2col")
    c = {"vy": 1, "vxvy": 2, "vxvym": 3}[rep]
    shapes = jax.eval_shape(lambda k: models.init(lax_net, k, (16, 16, c)), jax.random.key(0))
    assert shapes == jax.eval_shape(
        lambda k: models.init(im2col_net, k, (16, 16, c)), jax.random.key(0)
    )
    rng = np.random.default_rng(0)
    v = jax.tree.map(lambda a: (0.1 * rng.normal(size=a.shape)).astype(np.float32), shapes)
    x = _x(4, 16, c)

    def train_mode(net):
        return jax.jit(lambda v, x: net.apply(v, x, train=True, mutable=["batch_stats"])[0])(v, x)

    np.testing.assert_allclose(train_mode(im2col_net), train_mode(lax_net), rtol=1e-4, atol=1e-4)
    assert models.count_params(im2col_net, (64, 64, c)) == models.count_params(lax_net, (64, 64, c))


def test_conv_formulation_is_chosen_per_backend():
    from merjax.models.layers import resolve_conv_impl as resolve

    assert resolve("auto", "cpu") == "im2col" and resolve("auto", "gpu") == "lax"
    assert resolve("lax", "cpu") == "lax" and resolve("im2col", "gpu") == "im2col"
    with pytest.raises(ValueError, match="conv_impl must be one of"):
        models.build("shallow", 3, 1, conv_impl="winograd")


def test_a_depthwise_convolution_is_a_dense_one_with_a_block_diagonal_kernel():
    """DepthwiseConv (both formulations) equals a dense convolution whose kernel holds each
    channel's filter on the diagonal of its channel block and zeros elsewhere."""
    from merjax.models.layers import Conv, DepthwiseConv

    x = jax.random.normal(jax.random.key(1), (2, 9, 9, 3))
    for impl in ("lax", "im2col"):
        m = DepthwiseConv(3, stride=2, conv_impl=impl)
        v = m.init(jax.random.key(0), x)
        kernel = v["params"]["kernel"]
        assert kernel.shape == (3, 3, 1, 3)
        dense = jnp.zeros((3, 3, 3, 3))
        for c in range(3):
            dense = dense.at[:, :, c, c].set(kernel[:, :, 0, c])
        want = Conv(3, 3, stride=2, conv_impl="lax").apply(
            {"params": {"kernel": dense, "bias": v["params"]["bias"]}}, x
        )
        np.testing.assert_allclose(m.apply(v, x), want, atol=1e-6)


def test_the_lighter_families_have_their_hand_counted_parameters():
    """Vy-2CL as depthwise-separable and ShuffleNet v2 layers, 5 classes, 64x64 (counted by hand:
    kernels, biases, BatchNorm scale + offset; the Dense reads 32 x 32 x 32 after the 2x2 pool)."""
    head = 32 * 32 * 32 * 5 + 5
    separable = (
        (5 * 5 * 1 + 1)
        + 2 * 1  # depthwise 5x5 on 1 channel, its BatchNorm
        + (1 * 16 + 16)
        + 2 * 16  # pointwise to 16
        + (3 * 3 * 16 + 16)
        + 2 * 16  # depthwise 3x3 on 16
        + (16 * 32 + 32)
        + 2 * 32  # pointwise to 32
    )
    shuffle = (
        (5 * 5 * 1 * 16 + 16)
        + 2 * 16  # the plain first conv
        + (3 * 3 * 16 + 16)
        + 2 * 16
        + (16 * 16 + 16)
        + 2 * 16  # branch a: dw, pw to 16
        + 2 * ((16 * 16 + 16) + 2 * 16)
        + (3 * 3 * 16 + 16)
        + 2 * 16  # branch b: pw, dw, pw
    )
    for name, want in (("vy-2cl-sep", separable + head), ("vy-2cl-shuffle", shuffle + head)):
        assert models.count_params(models.by_name(name)[0], (64, 64, 1)) == want, name
    # One layer of ShuffleNet is the plain conv: the paper's Vy-1CL.
    assert models.count_params(models.by_name("vy-1cl-shuffle")[0], (64, 64, 1)) == 82_373
    with pytest.raises(ValueError, match="shallow CNNs"):
        models.by_name("resnet8-sep")


def test_a_pointwise_group_conv_is_laxs_grouped_conv_and_counts_by_hand():
    """GroupPointwise in both formulations equals lax's 1x1 conv with feature_group_count on the
    same kernel; and ShuffleNet v1's grouping divides the units'
    pointwise weights by the groups: Vy-2CL-shuffle-g4, counted by hand."""
    from jax import lax

    from merjax.models.layers import GroupPointwise

    x = jax.random.normal(jax.random.key(0), (2, 5, 6, 12))
    v = GroupPointwise(8, 4).init(jax.random.key(1), x)
    want = lax.conv_general_dilated(
        x,
        v["params"]["kernel"],
        (1, 1),
        "VALID",
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
        feature_group_count=4,
    )
    for impl in ("im2col", "lax"):
        got = GroupPointwise(8, 4, conv_impl=impl).apply(v, x)
        np.testing.assert_allclose(got, want + v["params"]["bias"], atol=1e-5)
    with pytest.raises(ValueError, match="do not split into 5 groups"):
        GroupPointwise(10, 5).init(jax.random.key(1), x)
    head = 32 * 32 * 32 * 5 + 5
    grouped = (
        (5 * 5 * 1 * 16 + 16)
        + 2 * 16  # the plain first conv
        + (3 * 3 * 16 + 16)
        + 2 * 16
        + (16 // 4 * 16 + 16)
        + 2 * 16  # branch a: dw, grouped pw to 16 (4 inputs per output)
        + 2 * ((16 // 4 * 16 + 16) + 2 * 16)
        + (3 * 3 * 16 + 16)
        + 2 * 16  # branch b: grouped pw, dw, grouped pw
    )
    net, rep = models.by_name("vy-2cl-shuffle-g4")
    assert rep == "vy" and models.count_params(net, (64, 64, 1)) == grouped + head
    with pytest.raises(ValueError, match="of -shuffle only"):
        models.by_name("vy-2cl-sep-g4")
    with pytest.raises(ValueError, match="do not split into 3 groups"):
        models.by_name("vy-2cl-shuffle-g3")


def test_the_channel_shuffle_is_a_permutation_inverted_by_its_inverse():
    """channel_shuffle with g groups reads the channels as [g, C/g] and transposes them: every
    channel once, and shuffling with C/g groups undoes it."""
    from merjax.models.efficient import channel_shuffle

    x = jnp.arange(12.0).reshape(1, 1, 1, 12)
    y = channel_shuffle(x, 3)
    assert sorted(np.asarray(y).ravel().tolist()) == list(range(12))
    np.testing.assert_array_equal(np.asarray(y).ravel(), [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11])
    np.testing.assert_array_equal(channel_shuffle(y, 4), x)
    np.testing.assert_array_equal(channel_shuffle(x, 3, as_gather=True), y)


@pytest.mark.parametrize("name", ["vy-3cl-sep", "vxvy-4cl-shuffle", "vy-3cl-shuffle-g2"])
def test_the_lighter_families_train_a_step_in_both_formulations(name):
    """Both convolution formulations give the same logits (tolerance: float rounding of two
    programs) and a training pass updates the BatchNorm statistics."""
    lax_net, rep = models.by_name(name, conv_impl="lax")
    im2col_net, _ = models.by_name(name, conv_impl="im2col")
    c = 2 if rep == "vxvy" else 1
    x = jax.random.normal(jax.random.key(0), (4, 16, 16, c))
    variables = models.init(lax_net, jax.random.key(1), (16, 16, c))
    want = lax_net.apply(variables, x)
    np.testing.assert_allclose(im2col_net.apply(variables, x), want, atol=1e-5)
    _, updates = im2col_net.apply(variables, x, train=True, mutable=["batch_stats"])
    assert jax.tree.structure(updates["batch_stats"]) == jax.tree.structure(
        variables["batch_stats"]
    )


def test_flops_count_every_multiply_add_and_the_lighter_blocks_need_fewer():
    """XLA's count of Vy-1CL's forward pass covers its multiply-adds at 2 flops each (the 5x5
    conv to 16 filters at 64x64, the Dense on 16 x 32 x 32); depthwise-separable Vy-3CL needs
    fewer than the plain one (its MACs are ~7x fewer by construction)."""
    macs = 64 * 64 * 25 * 16 + 16 * 32 * 32 * 5
    assert models.count_flops(models.by_name("vy-1cl", conv_impl="lax")[0], (64, 64, 1)) >= 2 * macs
    plain = models.count_flops(models.by_name("vy-3cl", conv_impl="lax")[0], (64, 64, 1))
    separable = models.count_flops(models.by_name("vy-3cl-sep", conv_impl="lax")[0], (64, 64, 1))
    assert separable < plain


@pytest.mark.parametrize("padding", ["SAME", ((1, 1), (1, 1)), "VALID"])
def test_max_pool_with_its_padding_written_out_is_flax_max_pool(padding):
    """layers.max_pool pads with -inf itself (an exportable graph); a max is exact, so it equals
    flax's max_pool value for value, odd sides included."""
    import flax.linen as nn

    from merjax.models import layers

    x = jax.random.normal(jax.random.key(0), (2, 7, 9, 3))
    np.testing.assert_array_equal(
        layers.max_pool(x, (3, 3), (2, 2), padding),
        nn.max_pool(x, window_shape=(3, 3), strides=(2, 2), padding=padding),
    )


def test_width_suffix_sets_the_first_conv_filters():
    plain, _ = models.by_name("vy-3cl")
    half, rep = models.by_name("vy-3cl-sep-w8")
    assert rep == "vy" and half.base_filters == 8 and plain.base_filters is None
    with pytest.raises(ValueError, match="even for shuffle"):
        models.by_name("vy-2cl-shuffle-w7")
    with pytest.raises(ValueError, match="shallow CNNs only"):
        models.by_name("resnet8-w8")

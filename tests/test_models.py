"""Networks: the paper's parameter counts, shapes, features, vmapped folds, masks, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from merjax import models
from merjax.models import resnet, shallow


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
        assert (got, resnet.PAPER_PARAMS[num_layers]) in [(6_462_213, 5_400_725), (11_183_877, 10_670_932)]


def test_table9_filter_sums():
    """Table 9's bracketed numbers are the running sums of the conv filters."""
    for in_channels, sums in [(1, [16, 48, 112, 240]), (2, [32, 96, 224, 480])]:
        for n, want in enumerate(sums, start=1):
            variables = jax.eval_shape(
                lambda k: models.init(models.build("shallow", n, in_channels), k, (64, 64, in_channels)),
                jax.random.key(0),
            )
            convs = [v for path, v in jax.tree_util.tree_flatten_with_path(variables["params"])[0]
                     if jax.tree_util.keystr(path).endswith("['conv']['bias']")]
            assert sum(b.shape[0] for b in convs) == want


# ------------------------------------------------------------------ forward, features


def _x(n, hw, c, seed=0):
    return jax.random.normal(jax.random.key(seed), (n, hw, hw, c))


@pytest.mark.parametrize("num_layers,feature_dim", [(1, 16 * 32 * 32), (2, 32 * 32 * 32), (3, 64 * 31 * 31), (4, 128 * 31 * 31)])
def test_shallow_forward_shapes_and_features(num_layers, feature_dim):
    model = models.build("shallow", num_layers, 1)
    variables = models.init(model, jax.random.key(0), (64, 64, 1))
    x = _x(3, 64, 1)
    logits, feats = model.apply(variables, x, return_features=True)
    assert logits.shape == (3, 5) and feats.shape == (3, feature_dim)
    fc = variables["params"]["fc"]
    np.testing.assert_allclose(logits, feats @ fc["kernel"] + fc["bias"], rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(model.apply(variables, x), logits)


@pytest.mark.parametrize("num_layers,feature_dim", [(1, 64 * 16 * 16), (7, 128 * 4 * 4), (17, 512)])
def test_resnet_forward_shapes_and_features(num_layers, feature_dim):
    model = models.build("resnet", num_layers, 3)
    variables = models.init(model, jax.random.key(0), (64, 64, 3))
    logits, feats = model.apply(variables, _x(2, 64, 3), return_features=True)
    assert logits.shape == (2, 5) and feats.shape == (2, feature_dim)
    assert np.all(np.isfinite(logits))


def test_train_mode_updates_batch_stats_and_eval_uses_them():
    model = models.build("shallow", 2, 2)
    variables = models.init(model, jax.random.key(1), (32, 32, 2))
    x = _x(8, 32, 2) * 3 + 1
    logits_train, updates = model.apply(variables, x, train=True, mutable=["batch_stats"])
    old = jax.tree.leaves(variables["batch_stats"])
    new = jax.tree.leaves(updates["batch_stats"])
    assert any(not np.allclose(a, b) for a, b in zip(old, new))
    logits_eval = model.apply(variables, x)
    assert not np.allclose(logits_train, logits_eval)


# ------------------------------------------------------------------ vmapped folds


@pytest.mark.slow
@pytest.mark.parametrize("arch,num_layers,channels", [("shallow", 3, 1), ("resnet", 3, 3), ("tiny", 1, 2)])
def test_vmapped_forward_equals_separate_calls(arch, num_layers, channels):
    model = models.build(arch, num_layers, channels)
    keys = jax.random.split(jax.random.key(7), 3)
    stack = jax.vmap(lambda k: models.init(model, k, (16, 16, channels)))(keys)
    x = _x(3 * 4, 16, channels).reshape(3, 4, 16, 16, channels)  # a different batch per fold

    def train_fwd(v, xb):
        return model.apply(v, xb, train=True, mutable=["batch_stats"])

    eval_v = jax.vmap(lambda v, xb: model.apply(v, xb))(stack, x)
    train_v, stats_v = jax.vmap(train_fwd)(stack, x)
    for f in range(3):
        v_f = jax.tree.map(lambda a: a[f], stack)
        np.testing.assert_allclose(eval_v[f], model.apply(v_f, x[f]), rtol=1e-5, atol=1e-5)
        logits_f, stats_f = train_fwd(v_f, x[f])
        np.testing.assert_allclose(train_v[f], logits_f, rtol=1e-5, atol=1e-5)
        for a, b in zip(jax.tree.leaves(stats_v), jax.tree.leaves(stats_f)):
            np.testing.assert_allclose(a[f], b, rtol=1e-5, atol=1e-6)


def test_batchnorm_mask_excludes_padding_samples():
    """A padded batch with a mask trains exactly like the real samples alone."""
    model = models.build("shallow", 2, 1)
    variables = models.init(model, jax.random.key(0), (16, 16, 1))
    real = _x(5, 16, 1, seed=1)
    junk = _x(3, 16, 1, seed=2) * 100 + 50
    padded = jnp.concatenate([real, junk])
    mask = jnp.arange(8) < 5
    alone, st_alone = model.apply(variables, real, train=True, mutable=["batch_stats"])
    masked, st_masked = model.apply(variables, padded, train=True, mask=mask, mutable=["batch_stats"])
    np.testing.assert_allclose(masked[:5], alone, rtol=1e-4, atol=1e-4)
    for a, b in zip(jax.tree.leaves(st_alone), jax.tree.leaves(st_masked)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------ names and errors


def test_by_name():
    model, rep = models.by_name("Vy-3CL")
    assert rep == "vy" and isinstance(model, models.ShallowCNN) and model.num_layers == 3 and model.in_channels == 1
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

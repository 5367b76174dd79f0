"""The vmapped LOSO trainer and the metrics."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np
import optax
import pytest

from merjax import metrics, models, train
from merjax.train import strategies

import by_hand
from toy import ToyCNN

ROOT = Path(__file__).resolve().parents[1]


def toy_data(n_subjects=4, per_subject=6, size=8, seed=0):
    """Learnable toy inputs: the class sets the sign pattern of a blob, plus noise."""
    rng = np.random.default_rng(seed)
    n = n_subjects * per_subject
    labels = rng.integers(0, 3, n).astype(np.int32)
    yy, xx = np.mgrid[0:size, 0:size] / size
    protos = np.stack([np.sin(2 * np.pi * (k + 1) * xx) * np.cos(np.pi * yy) for k in range(3)])
    x = protos[labels][..., None] + rng.normal(0, 0.5, (n, size, size, 1))
    augmented = x + rng.normal(0, 0.1, x.shape)
    subjects = [f"s{i // per_subject}" for i in range(n)]
    return x.astype(np.float32), augmented.astype(np.float32), labels, subjects


MODEL = ToyCNN(1, num_classes=3)
# Programs that compute the same mathematics (strategies, chunk sizes, sharding, convolution
# formulations, one fold or all) round differently, by ~1e-7 of each value. With MATLAB's
# eps = 1e-8, RMSprop divides a gradient by its own RMS, so a parameter whose true gradient is
# about zero takes +-lr steps whose sign is that rounding noise, and runs drift apart by lr per
# step. eps = 1e-2 bounds |d update / d g| by lr / eps = 0.1: rounding stays ~1e-8 per step, and
# after these 12 steps two such programs agree to ~1e-6, well inside the atol=1e-5 and 1e-4 the
# tests use, while a wrong program (a run that sees another run's data, a wrong mask, a lost
# epoch) moves logits by more than 1e-2.
FAST = dict(epochs=4, batch_size=8, eps=1e-2)  # the protocol (TrainConfig)
CALLS = dict(epochs_per_call=2)  # how it executes (Execution)


@functools.cache
def fit(
    strategy: str = "vmap",
    seeds: tuple[int, ...] = (0,),
    conv_impl: str = "auto",
    groups: tuple[tuple[str, ...], ...] | None = None,
    train_final: bool = False,
    features: bool = False,
) -> train.LosoResult:
    """A toy LOSO training, trained once per session and shared by the tests that compare with it
    (read-only: the result is shared)."""
    x, augmented, y, subj = toy_data()
    model = ToyCNN(1, num_classes=3, conv_impl=conv_impl)
    cfg = train.TrainConfig(seeds=seeds, train_final=train_final, **FAST)
    execution = train.Execution(strategy=strategy, chunk_size=3, **CALLS)
    return train.train_loso(
        model,
        x,
        augmented,
        y,
        subj,
        cfg,
        execution,
        progress=None,
        keep_states=True,
        features=features,
        groups=[list(g) for g in groups] if groups else None,
    )


@pytest.mark.slow
def test_strategies_agree_and_match_separate_runs():
    """vmap over runs == each run trained alone (the loop), for every strategy, seed and
    convolution formulation (tolerance: see FAST). A strategy that mixed runs, dropped a chunk or
    lost a seed's order fails."""
    _, _, y, _ = toy_data()
    # The formulations agree layer by layer (test_models): one lax run here.
    runs = [(s, "im2col") for s in ("vmap", "loop", "map", "chunked", "auto")] + [("loop", "lax")]
    out = {f"{s}, {conv}": fit(s, (0, 1), conv) for s, conv in runs}
    for name, r in out.items():
        np.testing.assert_allclose(r.logits, out["loop, lax"].logits, atol=1e-4, err_msg=name)
        np.testing.assert_allclose(r.losses, out["loop, lax"].losses, atol=1e-4, err_msg=name)
    r = out["vmap, im2col"]
    assert r.logits.shape == (2, len(y), 3) and r.preds.shape == (2, len(y))
    assert not np.allclose(r.logits[0], r.logits[1]), "seeds must differ"
    assert r.losses.shape == (2 * 4, 4) and np.isfinite(r.losses).all()


@pytest.mark.slow
def test_a_run_equals_training_that_fold_alone():
    """The vmapped stack gives fold k the same result as a program that only knows fold k
    (tolerance: see FAST)."""
    _, _, _, subj = toy_data()
    full, alone = fit(), fit(groups=(("s2",),))
    held = np.array(subj) == "s2"
    np.testing.assert_allclose(alone.logits[0][held], full.logits[0][held], atol=1e-5)
    assert np.isnan(alone.logits[0][~held]).all() and (alone.preds[0][~held] == -1).all()


def test_plan_keeps_test_subjects_out():
    subjects = ["a", "a", "b", "c", "c", "c"]
    groups = train.subject_groups(subjects)
    plan = train.fold_plan(subjects, groups, seeds=(0, 1), augment=True, train_final=True)
    assert len(plan.seeds) == 2 * 4 and plan.train_mask.shape == (8, 12)
    for r, held in enumerate(plan.held_out):
        test = np.isin(subjects, held)
        assert not plan.train_mask[r][np.concatenate([test, test])].any()
        assert plan.train_mask[r][np.concatenate([~test, ~test])].all()
        got = set(plan.tested(r).tolist())
        assert got == set(np.flatnonzero(test).tolist())
    assert plan.held_out[3] == ("*",) and plan.train_mask[3].all()


def test_held_out_items_never_reach_training():
    """Poison the held-out subject's augmented items (used only for training): if any batch,
    BatchNorm statistic or normalisation touched them, the loss would be NaN."""
    x, augmented, y, subj = toy_data()
    augmented = augmented.copy()
    augmented[np.array(subj) == "s1"] = np.nan
    cfg, loop = train.TrainConfig(**FAST), train.Execution(strategy="loop", **CALLS)
    r = train.train_loso(MODEL, x, augmented, y, subj, cfg, loop, groups=[["s1"]], progress=None)
    assert np.isfinite(r.losses).all()
    # ...and the same poison in a training subject is caught, naming run, epoch and step.
    with pytest.raises(train.NonFiniteLoss, match=r"run 0 .*held out s1\) at epoch 1, step 1"):
        poisoned = augmented.copy()
        poisoned[np.array(subj) == "s2"] = np.nan
        train.train_loso(MODEL, x, poisoned, y, subj, cfg, loop, groups=[["s1"]], progress=None)


def test_held_out_onset_apex_flows_change_nothing_in_their_fold():
    """All folds train in one vmapped program. Changing the held-out subject's onset->apex flows
    (its test inputs) changes its fold's predictions and nothing of its fold's training: losses,
    parameters and the population BatchNorm statistics are bit-identical. Runs that train on that
    subject do change (so the change is seen). A mask that let test items into a batch, the
    normalisation or the BatchNorm statistics would fail. Exact equality is defined here: both
    trainings run the same compiled program, whose fold-r arithmetic never reads the changed
    values (masked with jnp.where, not multiplied)."""
    x, augmented, y, subj = toy_data()
    a = fit()  # vmap
    x2 = x.copy()
    x2[np.array(subj) == "s1"] = -3 * x2[np.array(subj) == "s1"] + 5
    cfg, execution = train.TrainConfig(**FAST), train.Execution(strategy="vmap", **CALLS)
    b = train.train_loso(
        MODEL, x2, augmented, y, subj, cfg, execution, progress=None, keep_states=True
    )
    r = a.plan.held_out.index(("s1",))
    np.testing.assert_array_equal(a.losses[r], b.losses[r])
    for u, v in zip(jax.tree.leaves(a.states), jax.tree.leaves(b.states), strict=True):
        np.testing.assert_array_equal(np.asarray(u)[r], np.asarray(v)[r])
    s1 = np.array(subj) == "s1"
    assert not np.allclose(a.logits[0, s1], b.logits[0, s1])
    others = [i for i in range(len(a.losses)) if i != r]
    assert all(not np.array_equal(a.losses[i], b.losses[i]) for i in others)


@pytest.mark.slow
def test_kill_and_resume_gives_the_same_predictions(tmp_path):
    """A run killed after a checkpoint and resumed predicts as the uninterrupted run, bit for bit:
    both are the same compiled programs (programs and checkpoints key on the protocol) fed the
    same states, which the checkpoint restores exactly. A resume that restarted the data order,
    lost the optimizer state or skipped an epoch fails. Another execution (strategy, calls)
    resumes the same checkpoints; another protocol does not."""
    x, augmented, y, subj = toy_data()
    cfg = train.TrainConfig(**FAST)
    execution = train.Execution(strategy="vmap", chunk_size=3, checkpoint_every=2, **CALLS)
    killed = dataclasses.replace(execution, stop_after_epoch=2)
    seen = []
    run = functools.partial(train.train_loso, MODEL, x, augmented, y, subj, progress=seen.append)
    run(cfg, killed, workdir=tmp_path / "a")  # as if killed after the epoch-2 checkpoint
    assert (tmp_path / "a" / "checkpoints" / "2").is_dir()
    resumed = run(cfg, execution, workdir=tmp_path / "a")
    assert any("resumed from the checkpoint of epoch 2" in m for m in seen)
    whole = fit()
    np.testing.assert_array_equal(resumed.preds, whole.preds)
    np.testing.assert_array_equal(resumed.logits, whole.logits)
    np.testing.assert_array_equal(resumed.losses, whole.losses)
    # Another execution resumes (tolerance: see FAST).
    run(cfg, killed, workdir=tmp_path / "b")
    seen.clear()
    other = train.Execution(strategy="loop", checkpoint_every=1, epochs_per_call=1)
    looped = run(cfg, other, workdir=tmp_path / "b")
    assert any("resumed from the checkpoint of epoch 2" in m for m in seen)
    np.testing.assert_allclose(looped.logits, whole.logits, atol=1e-5)
    # Another protocol must not resume from these checkpoints.
    seen.clear()
    run(dataclasses.replace(cfg, learning_rate=5e-4), execution, workdir=tmp_path / "a")
    assert any("another configuration" in m for m in seen)


@pytest.mark.slow
def test_final_model_and_features():
    """Held-out features and logits are the eval-mode penultimate layer and output of the run that
    held each sample out, with that run's population BatchNorm statistics (recomputed in NumPy,
    tests/by_hand.py): features of the wrong layer, of another run (e.g. the final one) or in
    training mode fail. The final run trains on every item and is never scored."""
    x, _, y, subj = toy_data()
    r = fit(train_final=True, features=True)
    assert (
        r.plan.held_out[-1] == ("*",)
        and r.plan.train_mask[-1].all()
        and not r.plan.test_valid[-1].any()
    )
    assert jax.tree.leaves(r.states.params)[0].shape[0] == 5
    assert r.features.shape == (1, len(y), 4)
    for run, held in enumerate(r.plan.held_out[:-1]):
        st = jax.tree.map(lambda a: np.asarray(a[run]), r.states)
        test = np.isin(subj, held)
        want_logits, want_feats = by_hand.toy_forward(
            st.params, st.batch_stats, x[test], normalise=lambda v: (v - st.mean) / st.scale
        )
        np.testing.assert_allclose(r.features[0, test], want_feats, rtol=1e-3, atol=1e-4)
        np.testing.assert_allclose(r.logits[0, test], want_logits, rtol=1e-3, atol=1e-4)
    # The extra run is never scored and changes no held-out prediction (tolerance: see FAST).
    np.testing.assert_allclose(r.logits, fit().logits, atol=1e-5)


def test_k_fold_groups_balance_samples():
    """Largest subjects first, each to the group with the fewest samples so far. Subjects s0..s9
    hold 1..10 samples; a round-robin over names that ignores counts (groups of 22, 15 and 18
    samples) or one that fills groups in order fails the exact groups."""
    subjects = [f"s{i}" for i in range(10) for _ in range(i + 1)]
    groups = train.subject_groups(subjects, num_folds=3)
    assert groups == [["s3", "s4", "s9"], ["s2", "s5", "s8"], ["s0", "s1", "s6", "s7"]]
    assert [sum(subjects.count(s) for s in g) for g in groups] == [19, 18, 18]
    assert train.subject_groups(subjects) == [[s] for s in sorted(set(subjects))]


def test_bad_arguments():
    x, augmented, y, subj = toy_data()
    with pytest.raises(ValueError, match="strategy"):
        train.Execution(strategy="pmap")
    with pytest.raises(ValueError, match="epochs_per_call"):
        train.Execution(epochs_per_call=0)
    with pytest.raises(ValueError, match="epochs"):
        train.TrainConfig(epochs=0)
    with pytest.raises(TypeError, match="strategy"):  # how it runs is not the protocol
        train.TrainConfig(strategy="vmap")
    with pytest.raises(ValueError, match="inputs"):
        train.train_loso(MODEL, x[0], augmented, y, subj, progress=None)
    with pytest.raises(ValueError, match="augmented"):
        train.train_loso(MODEL, x, augmented[:3], y, subj, progress=None)


@pytest.mark.slow
def test_learns_the_toy_task():
    x, augmented, y, subj = toy_data(per_subject=10)
    cfg = train.TrainConfig(epochs=30, batch_size=16, learning_rate=3e-3)
    execution = train.Execution(strategy="vmap", epochs_per_call=10)
    model = models.build("shallow", 1, 1, num_classes=3)  # ToyCNN's global pool cannot see where
    r = train.train_loso(model, x, augmented, y, subj, cfg, execution, progress=None)
    assert metrics.accuracy(y, r.preds[0]) > 0.9  # 1.0 on each of 3 data x 4 training seeds
    assert r.losses[:, -1].mean() < r.losses[:, 0].mean()


_MULTI = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    sys.path.insert(0, {tests!r})
    import jax
    from test_train import MODEL, FAST, CALLS, toy_data
    from merjax import train
    x, augmented, y, subj = toy_data(n_subjects=3)
    cfg, vmap = train.TrainConfig(**FAST), train.Execution(strategy="vmap", **CALLS)
    r = train.train_loso(MODEL, x, augmented, y, subj, cfg, vmap, progress=None)
    print(json.dumps({{"devices": jax.device_count(), "logits": r.logits.tolist()}}))
    """
)


@pytest.mark.slow
def test_multi_device_matches_single_device():
    """The run axis sharded over 4 CPU devices (3 runs, padded to 4; in a process started with 4
    host devices) gives the numbers of this process's single device (tolerance: see FAST)."""
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=4"
    env = dict(os.environ, XLA_FLAGS=flags.strip(), JAX_PLATFORMS="cpu")  # the same CPU path
    proc = subprocess.run(
        [sys.executable, "-c", _MULTI.format(tests=str(ROOT / "tests"))],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    sharded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert sharded["devices"] == 4 and jax.device_count() == 1
    x, augmented, y, subj = toy_data(n_subjects=3)
    cfg, vmap = train.TrainConfig(**FAST), train.Execution(strategy="vmap", **CALLS)
    one = train.train_loso(MODEL, x, augmented, y, subj, cfg, vmap, progress=None)
    np.testing.assert_allclose(sharded["logits"], one.logits, atol=1e-5)


# --------------------------------------------------------------------------- metrics


def test_metrics_by_hand():
    y = np.array([0, 0, 0, 1, 1, 2])
    p = np.array([0, 0, 1, 1, 2, 2])
    cm = metrics.confusion_matrix(y, p, 3)
    assert cm.tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert metrics.accuracy(y, p) == pytest.approx(4 / 6)
    # F1: class 0: 2*2/(2*2+0+1) = 0.8; class 1: 2/(2+1+1) = 0.5; class 2: 2/(2+1+0) = 2/3.
    assert metrics.uf1(y, p, 3) == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert metrics.uar(y, p, 3) == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    assert metrics.majority_baseline(y) == pytest.approx(0.5)
    # A class absent from the ground truth has no recall: UAR leaves it out...
    assert metrics.uar(np.array([0, 1]), np.array([2, 1]), 3) == pytest.approx(0.5)
    # ...but UF1 counts a class that is predicted and never true, with F1 0 (MEGC's formula):
    # class 0 F1 0, class 1 F1 1, class 2 F1 0 -> 1/3, not the 1/2 of the truth's classes.
    assert metrics.uf1(np.array([0, 1]), np.array([2, 1]), 3) == pytest.approx(1 / 3)
    # A class neither true nor predicted is not in either mean.
    assert metrics.uf1(np.array([0, 1]), np.array([0, 1]), 5) == 1.0
    # No samples: every score NaN, the same way.
    none = np.array([], int)
    s0 = metrics.summarize(none, none, 3)
    assert all(np.isnan(s0[k]) for k in ("accuracy", "uf1", "uar", "majority"))
    # A prediction of -1 (a sample no fold held out) is refused, never wrapped into a class.
    with pytest.raises(ValueError, match="predictions outside classes 0..2"):
        metrics.uf1(np.array([0, 1]), np.array([-1, 1]), 3)
    s = metrics.by_group(y, p, ["a", "a", "b", "b", "b", "b"], 3)
    assert s["a"]["accuracy"] == 1.0 and s["b"]["accuracy"] == 0.5 and s["all"]["n"] == 6
    assert metrics.mean_std([0.5, 0.7]) == pytest.approx((0.6, 0.1414213), abs=1e-6)
    assert metrics.mean_std([0.5]) == (0.5, 0.0)


def test_bootstrap_interval_by_hand():
    """Subjects a (both samples right) and b (both wrong): a resample of two subjects is {a, a}
    (accuracy 1, probability 1/4), {b, b} (0, 1/4) or {a, b} (0.5, 1/2), so the 95% interval is
    [0, 1] and the central 20% is 0.5. Seeds are averaged inside each resample: one seed all
    right and one all wrong score 0.5 on every resample. Identical subjects: every resample
    pools to the same counts, so the interval is the point."""
    y, p, subj = np.array([0, 1, 0, 1]), np.array([0, 1, 1, 0]), ["a", "a", "b", "b"]
    assert metrics.bootstrap_ci(y, p, subj, 2, metric="accuracy") == (0.0, 1.0)
    assert metrics.bootstrap_ci(y, p, subj, 2, metric="accuracy", level=0.2) == (0.5, 0.5)
    both = np.stack([y, 1 - y])
    assert metrics.bootstrap_ci(y, both, subj, 2, metric="accuracy") == (0.5, 0.5)
    y3, p3 = np.tile([0, 1, 2], 3), np.tile([0, 0, 2], 3)
    lo, hi = metrics.bootstrap_ci(y3, p3, np.repeat(["a", "b", "c"], 3), 3)
    assert lo == pytest.approx(metrics.uf1(y3, p3, 3)) and hi == pytest.approx(lo)
    with pytest.raises(ValueError, match="metric"):
        metrics.bootstrap_ci(y, p, subj, 2, metric="f2")


def test_resampling_samples_understates_the_interval_when_subjects_differ():
    """20 subjects of 10 samples, half of them recognised at 90% and half at 20%: the score
    varies between subjects more than between samples, so resampling subjects gives a wider
    interval than resampling samples (about twice: between-subject sd 0.35/sqrt(20) vs sample
    sd 0.50/sqrt(200))."""
    rng = np.random.default_rng(0)
    subjects = np.repeat(np.arange(20), 10)
    y = rng.integers(0, 2, 200)
    right = np.concatenate([np.arange(10) < (9 if s % 2 else 2) for s in range(20)])
    p = np.where(right, y, 1 - y)
    by_subject = metrics.bootstrap_ci(y, p, subjects, 2, metric="accuracy")
    by_sample = metrics.bootstrap_ci(y, p, np.arange(200), 2, metric="accuracy")
    width = lambda ci: ci[1] - ci[0]  # noqa: E731
    assert width(by_subject) > 1.5 * width(by_sample)
    assert by_subject != by_sample


def test_uf1_and_uar_when_a_class_is_never_predicted_or_absent():
    """MEGC's scores: a class present in the ground truth but never predicted counts with F1 and
    recall 0. A class absent from the ground truth but predicted counts in UF1 with F1 0 (MEGC's
    formula; STSTNet's, MEAN's and MEB's evaluators) and not in UAR (it has no recall). A class
    neither true nor predicted counts in neither. Dropping never-predicted classes (UF1 0.6),
    averaging NaN, or leaving predicted-only classes out of UF1 fails."""
    y, p = np.array([0, 0, 1, 1, 2, 2]), np.array([0, 0, 0, 1, 1, 1])
    # F1: class 0 2*2/(4+1) = 0.8, class 1 2/(2+2+1) = 0.4, class 2 never predicted: 0.
    assert metrics.uf1(y, p, 3) == pytest.approx(0.4)
    assert metrics.uar(y, p, 3) == pytest.approx((1 + 0.5 + 0) / 3)
    y, p = np.array([0, 0, 1, 1]), np.array([0, 2, 1, 1])  # class 2 predicted, never true
    assert metrics.uf1(y, p, 3) == pytest.approx((2 / 3 + 1 + 0) / 3)
    assert metrics.uar(y, p, 3) == pytest.approx((0.5 + 1) / 2)
    parts = metrics.by_group(
        np.array([0, 1, 2, 0, 1, 1]),
        np.array([0, 1, 2, 2, 1, 0]),
        ["a", "a", "a", "b", "b", "b"],
        3,
    )
    # Part b has no true class 2 but predicts it once: F1 0, 2/3 and 0 -> UF1 2/9; recall over
    # the true classes 0 and 1 (0 and 1/2) -> UAR 1/4.
    assert parts["b"]["uf1"] == pytest.approx(2 / 9) and parts["b"]["uar"] == pytest.approx(0.25)
    assert parts["a"]["uf1"] == 1.0 and parts["all"]["n"] == 6


def test_megc2018_majority_is_47_percent():
    labels = np.repeat(np.arange(5), [49, 28, 119, 34, 23])
    assert metrics.majority_baseline(labels) == pytest.approx(0.470, abs=5e-4)


def test_cosine_similarity():
    """Non-parallel vectors and a hand-computed table. The diagonal of class_similarity leaves
    out each sample's similarity with itself (always 1): a version that keeps it reports
    (1 + 1 + 2 * 0.6) / 4 = 0.8 for class 0 instead of 0.6, and fails."""
    f = np.array([[1.0, 0], [0.6, 0.8], [0, 1.0], [0.8, -0.6]])
    np.testing.assert_allclose(
        metrics.cosine_similarity(f),
        [[1, 0.6, 0, 0.8], [0.6, 1, 0.8, 0], [0, 0.8, 1, -0.6], [0.8, 0, -0.6, 1]],
        atol=1e-12,
    )
    sim = metrics.class_similarity(f, np.array([0, 0, 1, 1]), 2)
    # class 0 with itself: only the pair (0, 1): 0.6; class 1 with itself: pair (2, 3): -0.6;
    # across: mean of (0,2) 0, (0,3) 0.8, (1,2) 0.8, (1,3) 0 = 0.4.
    np.testing.assert_allclose(sim, [[0.6, 0.4], [0.4, -0.6]], atol=1e-12)
    # A class with one sample has no pair: NaN, not 1.
    assert np.isnan(metrics.class_similarity(f[:3], np.array([0, 0, 1]), 2)[1, 1])


# --------------------------------------------------------------------------- runs you can watch


def test_train_step_reports_loss_count_and_batch_accuracy():
    """The step's metrics are those of the valid items of its batch, before the update."""
    x, _, y, _ = toy_data()
    cfg = train.TrainConfig(**FAST)
    tx = train.optimizer(cfg)
    mask = np.ones(len(y), bool)
    state = train.init_run(MODEL, tx, jax.numpy.asarray(x), mask, 0)
    idx = np.arange(8)
    valid = np.arange(8) < 5
    step = jax.jit(functools.partial(train.train_step, model=MODEL, tx=tx))
    new, m = step(state, x, y, idx, valid)
    assert set(m) == {"loss", "count", "accuracy"} and int(m["count"]) == 5
    x_batch = (x[idx[:5]] - state.mean) / state.scale
    logits, _ = MODEL.apply(
        {"params": state.params, "batch_stats": state.batch_stats},
        x_batch,
        train=True,
        mutable=["batch_stats"],
    )
    want_acc = float((np.asarray(logits).argmax(-1) == y[:5]).mean())
    logp = jax.nn.log_softmax(logits)
    want_loss = float(-np.mean(np.asarray(logp)[np.arange(5), y[:5]]))
    assert float(m["accuracy"]) == pytest.approx(want_acc)
    assert float(m["loss"]) == pytest.approx(want_loss, rel=1e-5)
    # A batch with nothing valid changes nothing and reports zeros.
    same, m0 = step(state, x, y, idx, np.zeros(8, bool))
    assert int(m0["count"]) == 0 and float(m0["loss"]) == 0 and float(m0["accuracy"]) == 0
    for a, b in zip(jax.tree.leaves(same), jax.tree.leaves(state), strict=True):
        np.testing.assert_array_equal(a, b)


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.slow  # two trainings: a multi-run test
def test_metrics_jsonl_grows_while_training_and_survives_a_kill(tmp_path):
    """An epoch line lands after every compiled call, while training runs; a killed run keeps
    its curve and the resumed run continues it."""
    x, augmented, y, subj = toy_data(n_subjects=3)
    cfg = train.TrainConfig(epochs=3, batch_size=8)
    execution = train.Execution(strategy="loop", checkpoint_every=1, epochs_per_call=1)
    path = tmp_path / "metrics.jsonl"
    seen_during = []

    def progress(message):
        if message.startswith("epoch "):
            seen_during.append([d["epoch"] for d in _lines(path) if d["kind"] == "epoch"])

    killed = dataclasses.replace(execution, stop_after_epoch=2)
    train.train_loso(MODEL, x, augmented, y, subj, cfg, killed, workdir=tmp_path, progress=progress)
    assert seen_during == [[1], [1, 2]]
    lines = _lines(path)
    assert lines[0]["kind"] == "start" and lines[0]["runs"] == 3 and lines[0]["strategy"] == "loop"
    assert [d["held_out"] for d in lines[:1]][0] == [["s0"], ["s1"], ["s2"]]
    first = [d for d in lines if d["kind"] == "epoch"]
    assert [d["epoch"] for d in first] == [1, 2]
    assert all(len(d["loss_per_run"]) == 3 and 0 <= d["accuracy"] <= 1 for d in first)
    with open(path, "a") as f:
        f.write('{"kind": "epoch", "epo')  # the kill cut a line short
    result = train.train_loso(
        MODEL, x, augmented, y, subj, cfg, execution, workdir=tmp_path, progress=None
    )
    lines = _lines(path)
    epochs = [d for d in lines if d["kind"] == "epoch"]
    assert [d["epoch"] for d in epochs] == [1, 2, 3]
    assert [d["resumed_from"] for d in lines if d["kind"] == "start"] == [0, 2]
    assert epochs[:2] == first  # the killed run's curve is kept as it was
    np.testing.assert_allclose([d["loss"] for d in epochs], result.losses.mean(0), rtol=1e-5)
    np.testing.assert_allclose(
        [d["accuracy"] for d in epochs], result.train_accuracy.mean(0), rtol=1e-5
    )


# --------------------------------------------------------------------------- memory-aware chunks


def _margin(logits: np.ndarray) -> np.ndarray:
    """Top logit minus the runner-up, per sample: where it is below two programs' tolerance, their
    argmax may differ by rounding alone."""
    top2 = np.sort(logits, axis=-1)[..., -2:]
    return top2[..., 1] - top2[..., 0]


def test_plan_chunk_fits_the_limit():
    """With a limit worth k runs, plan_chunk returns at most k, and that chunk's compiled peak is
    within the limit; no limit (CPU reports none) means every run in one chunk."""
    x, *_ = toy_data()
    cfg = train.TrainConfig(**FAST)
    one = train.program_memory(MODEL, cfg, x.shape[1:], 2 * len(x), runs=1).peak
    three = train.program_memory(MODEL, cfg, x.shape[1:], 2 * len(x), runs=3).peak
    assert three > one
    chunk = train.plan_chunk(MODEL, cfg, x.shape[1:], 2 * len(x), num_runs=8, memory_limit=three)
    assert 1 <= chunk <= 3
    assert train.program_memory(MODEL, cfg, x.shape[1:], 2 * len(x), runs=chunk).peak <= three
    assert train.plan_chunk(MODEL, cfg, x.shape[1:], 2 * len(x), num_runs=8) == 8
    with pytest.raises(
        train.DoesNotFit,
        match=r"needs .* GiB, more than the .* limit; lower the batch size \(now 8\)",
    ):
        train.plan_chunk(MODEL, cfg, x.shape[1:], 2 * len(x), num_runs=8, memory_limit=one // 2)


@pytest.mark.slow
def test_training_under_a_memory_limit_equals_the_loop(monkeypatch):
    """Chunks planned under a memory limit train as one run at a time does (tolerance: see FAST;
    predictions compared where the top two logits are apart by more than the tolerance). The
    planner compiles the very program object training calls: the same Programs (same protocol:
    shuffle, drop_last, ...) and the same epochs per call."""
    x, augmented, y, subj = toy_data()
    cfg = train.TrainConfig(seeds=(0, 1), **FAST)
    loop = fit("loop", (0, 1))
    limit = train.program_memory(MODEL, cfg, x.shape[1:], 2 * len(x), runs=3).peak
    asked = []
    vmapped = strategies.Programs.train_vmapped

    def spy(self, num_epochs):
        asked.append((self, num_epochs))
        return vmapped(self, num_epochs)

    monkeypatch.setattr(strategies.Programs, "train_vmapped", spy)
    seen = []
    execution = train.Execution(memory_limit=limit, **CALLS)
    limited = train.train_loso(MODEL, x, augmented, y, subj, cfg, execution, progress=seen.append)
    assert any("run(s) per device per chunk" in m for m in seen), seen
    assert len({(id(p), n) for p, n in asked}) == 1, "planned and trained different programs"
    np.testing.assert_allclose(limited.logits, loop.logits, atol=1e-5)
    clear = _margin(loop.logits) > 2e-5
    np.testing.assert_array_equal(limited.preds[clear], loop.preds[clear])


@pytest.mark.slow  # two trainings: a multi-run test
def test_out_of_memory_halves_the_chunk_and_goes_on(monkeypatch):
    """An out-of-memory error (injected once into the strategy's training call, as a device
    raises it) halves the chunk; training goes on from the same epoch and states, and predicts as
    an uninterrupted run does (tolerance: see FAST)."""
    x, augmented, y, subj = toy_data()
    cfg = train.TrainConfig(seeds=(0, 1), **FAST)
    whole = fit("vmap", (0, 1))
    calls, build = [], strategies.build

    def failing(fail_on):
        def build_failing(*args, **kwargs):
            strategy = build(*args, **kwargs)

            def train_call(states, stack, first, num_epochs):
                calls.append((strategy.name, strategy.runs_per_program))
                if fail_on(len(calls)):
                    raise jax.errors.JaxRuntimeError("RESOURCE_EXHAUSTED: Out of memory (6.9GiB)")
                return strategy.train(states, stack, first, num_epochs)

            return strategy._replace(train=train_call)

        return build_failing

    monkeypatch.setattr(strategies, "build", failing(lambda n: n == 2))  # epochs 3-4
    seen = []
    vmap = train.Execution(strategy="vmap", **CALLS)
    r = train.train_loso(MODEL, x, augmented, y, subj, cfg, vmap, progress=seen.append)
    assert calls[:3] == [("vmap", 8), ("vmap", 8), ("chunked", 4)]
    assert any(
        "out of memory at epoch 3; going on from the same epoch and states with chunks of 4 runs"
        in m
        for m in seen
    )
    np.testing.assert_allclose(r.logits, whole.logits, atol=1e-5)
    np.testing.assert_allclose(r.losses, whole.losses, atol=1e-5)
    monkeypatch.setattr(strategies, "build", failing(lambda n: True))
    loop = train.Execution(strategy="loop", **CALLS)
    with pytest.raises(
        MemoryError, match="1 run\\(s\\) per program, the fewest possible: lower the batch size"
    ):
        train.train_loso(MODEL, x, augmented, y, subj, cfg, loop, progress=None)


# --------------------------------------------------------------------------- MATLAB R2018a's
# training


# Which parameters MATLAB's default L2 factors reach in the toy network (WeightL2Factor 1,
# BiasL2Factor 0; BatchNorm ScaleL2Factor and OffsetL2Factor 1).
DECAYED = {
    ("conv1", "conv", "kernel"): True,
    ("conv1", "conv", "bias"): False,
    ("conv1", "bn", "scale"): True,
    ("conv1", "bn", "bias"): True,
    ("fc", "kernel"): True,
    ("fc", "bias"): False,
}


def _matlab_rmsprop(w, v, grads, *, lr, rho, eps, l2):
    """One step of MATLAB R2018a's documented RMSProp with L2, in float64 NumPy, in place:
    g = dLoss/dw + l2 * w where the layer's L2 factor is 1 (DECAYED); v = rho * v + (1 - rho) * g^2;
    w -= lr * g / (sqrt(v) + eps)."""
    for path, decayed in DECAYED.items():
        node_w, node_g, node_v = w, grads, v
        for key in path[:-1]:
            node_w, node_g, node_v = node_w[key], node_g[key], node_v[key]
        k = path[-1]
        g = np.asarray(node_g[k], np.float64) + (l2 * node_w[k] if decayed else 0)
        node_v[k] = rho * node_v[k] + (1 - rho) * g**2
        node_w[k] = node_w[k] - lr * g / (np.sqrt(node_v[k]) + eps)


def test_rmsprop_is_matlabs_rule_by_hand():
    """train.optimizer against MATLAB's documented RMSProp with L2 (NumPy, _matlab_rmsprop), two
    updates of the toy network's parameter tree. An epsilon inside the square root (optax's
    default), L2 on the conv and dense biases, or none on BatchNorm fail.

    The gradients are given, not computed: each element is drawn with |g| in [1e-3, 1], so every
    expected update is a well-defined number rather than a ratio of rounding noise (a true
    gradient of zero, as a conv bias followed by BatchNorm has, turns float noise into an update of
    +-lr that depends on the CPU's reduction order). With eps = 1e-3 and |g| ~ 1e-3 the place of
    epsilon changes the denominator several-fold, and lambda = 0.05 on parameters of size ~1
    changes g by up to half. Tolerance: float32 rounding (2^-24 of |g| <= 1.05 per operation, a
    few operations) moves an update by at most lr / eps * 1e-6 = 1e-5 in the worst
    case and by far less where |g| >> eps; a wrong rule moves updates by more than 1e-3."""
    lr, rho, eps, l2 = 0.01, 0.9, 1e-3, 0.05
    tx = train.optimizer(
        train.TrainConfig(learning_rate=lr, eps=eps, weight_decay=l2, rms_decay=rho)
    )
    rng = np.random.default_rng(0)
    shapes = jax.eval_shape(lambda k: models.init(MODEL, k, (8, 8, 1)), jax.random.key(0))
    params = jax.tree.map(lambda a: rng.normal(0, 1, a.shape).astype(np.float32), shapes["params"])

    def gradient(a):
        magnitude = np.exp(rng.uniform(np.log(1e-3), 0, a.shape))
        return (rng.choice([-1.0, 1.0], a.shape) * magnitude).astype(np.float32)

    want = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
    v = jax.tree.map(np.zeros_like, want)
    state, got = tx.init(params), params
    for _ in range(2):
        grads = jax.tree.map(gradient, params)
        _matlab_rmsprop(want, v, grads, lr=lr, rho=rho, eps=eps, l2=l2)
        updates, state = tx.update(grads, state, got)
        got = optax.apply_updates(got, updates)
    assert len(jax.tree.leaves(want)) == len(DECAYED)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=2e-5)


def test_a_training_step_applies_the_rule_to_the_loss_gradient():
    """train_step feeds the gradient of the mean cross-entropy over the valid items of its batch
    (normalised as the run normalises) to the optimizer: two steps against NumPy's rule applied to
    jax.grad of that loss, computed in a separate program. A step that averaged over the padded
    items, skipped the normalisation or updated from stale gradients fails.

    eps = 1 makes the update a smooth function of the gradient (|d update / d g| <= lr / eps =
    0.01), so the two programs' float32 rounding of the gradient (~1e-6 of its scale) moves the
    updates by ~1e-8, far below atol; a true gradient of zero (the conv bias before BatchNorm)
    gives an update of ~0 on both sides instead of +-lr."""
    lr, rho, eps, l2 = 0.01, 0.9, 1.0, 0.05
    x, _, y, _ = toy_data()
    tx = train.optimizer(
        train.TrainConfig(learning_rate=lr, eps=eps, weight_decay=l2, rms_decay=rho)
    )
    state = train.init_run(MODEL, tx, jax.numpy.asarray(x), np.ones(len(y), bool), 0)
    step = jax.jit(functools.partial(train.train_step, model=MODEL, tx=tx))
    valid = np.arange(8) < 6  # two padded items in each batch

    @jax.jit
    @jax.grad
    def loss_grads(params, poisoned, yb):
        logits, _ = MODEL.apply(
            {"params": params, "batch_stats": state.batch_stats},
            (poisoned - state.mean) / state.scale,
            train=True,
            mutable=["batch_stats"],
        )
        return -jax.numpy.mean(jax.nn.log_softmax(logits)[np.arange(len(yb)), yb])

    want = jax.tree.map(lambda a: np.asarray(a, np.float64), state.params)
    v = jax.tree.map(np.zeros_like, want)
    for idx in (np.arange(8), np.arange(8, 16)):
        params = jax.tree.map(lambda a: np.asarray(a, np.float32), want)
        grads = loss_grads(params, x[idx][valid], y[idx][valid])
        _matlab_rmsprop(want, v, jax.tree.map(np.asarray, grads), lr=lr, rho=rho, eps=eps, l2=l2)
        state, _ = step(state, x, y, idx, valid)
    for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_l2_reaches_what_matlabs_default_factors_reach():
    """Kernels and BatchNorm scale and offset, not conv and dense biases, in every network."""
    for name in ("vy-3cl", "resnet8", "ststnet"):
        model, rep = models.by_name(name, num_classes=3)
        c = {"vy": 1, "vxvym": 3, "ststnet": 3}[rep]
        shapes = jax.eval_shape(lambda k: models.init(model, k, (16, 16, c)), jax.random.key(0))[
            "params"
        ]
        flat = jax.tree_util.tree_flatten_with_path(train.l2_mask(shapes))[0]
        for path, decayed in flat:
            keys = [p.key for p in path]
            is_bn = any(k.startswith("bn") for k in keys)
            assert decayed == (keys[-1] != "bias" or is_bn), (name, keys)


def test_shuffle_once_and_the_last_partial_batch():
    """MATLAB's defaults: one permutation kept every epoch, and the items past the last complete
    mini-batch sit out (21 items, batch 8: 16 train, the same 16 every epoch). 'every-epoch'
    reshuffles; without drop_last the last batch holds the other 5."""
    mask = np.zeros(30, bool)
    mask[:21] = True
    steps = train.num_steps(np.array([21]), 8, True)
    assert steps == 2 and train.num_steps(np.array([21]), 8, False) == 3
    batches = jax.jit(
        train.epoch_batches, static_argnames=("steps", "batch_size", "shuffle", "drop_last")
    )
    idx0, valid0 = batches(mask, 3, 0, steps=2, batch_size=8)
    idx1, valid1 = batches(mask, 3, 1, steps=2, batch_size=8)
    assert valid0.sum() == 16 and set(np.asarray(idx0)[np.asarray(valid0)]) < set(range(21))
    np.testing.assert_array_equal(idx0, idx1)
    e0, _ = batches(mask, 3, 0, steps=2, batch_size=8, shuffle="every-epoch")
    e1, _ = batches(mask, 3, 1, steps=2, batch_size=8, shuffle="every-epoch")
    assert not np.array_equal(e0, e1)
    full, fvalid = batches(mask, 3, 0, steps=3, batch_size=8, drop_last=False)
    assert fvalid.sum() == 21 and sorted(np.asarray(full)[np.asarray(fvalid)].tolist()) == list(
        range(21)
    )
    # A run with fewer items than a batch trains on them as one partial batch.
    few = np.zeros(30, bool)
    few[:5] = True
    _, v = batches(few, 3, 0, steps=1, batch_size=8)
    assert v.sum() == 5


def test_batchnorm_statistics_are_the_training_sets_after_training():
    """MATLAB R2018a predicts with each BatchNorm layer's statistics over the whole training set
    (computed after training), not running averages: every run's stored statistics equal the
    mean and biased variance of its conv outputs over exactly its training items (NumPy), held-out
    and other runs' items excluded. With bn_stats="moving" they are the running averages instead."""
    x, augmented, y, subj = toy_data()
    r = fit("loop")
    items = np.concatenate([x, augmented])
    for run in range(len(r.plan.held_out)):
        st = jax.tree.map(lambda a: np.asarray(a[run]), r.states)
        c = st.params["conv1"]["conv"]
        conv = by_hand.conv_same((items - st.mean) / st.scale, c["kernel"], c["bias"])
        mean, var = by_hand.batch_moments(conv, r.plan.train_mask[run])
        np.testing.assert_allclose(
            st.batch_stats["conv1"]["bn"]["mean"], mean, rtol=1e-3, atol=1e-5
        )
        np.testing.assert_allclose(st.batch_stats["conv1"]["bn"]["var"], var, rtol=1e-3, atol=1e-6)
    moving = train.train_loso(
        MODEL,
        x,
        augmented,
        y,
        subj,
        train.TrainConfig(bn_stats="moving", **FAST),
        train.Execution(strategy="loop", **CALLS),
        progress=None,
        keep_states=True,
    )
    # The same training (only the statistics it predicts with differ), compiled again.
    np.testing.assert_allclose(
        moving.states.params["fc"]["kernel"], r.states.params["fc"]["kernel"], rtol=1e-6
    )
    assert not np.allclose(
        moving.states.batch_stats["conv1"]["bn"]["var"], r.states.batch_stats["conv1"]["bn"]["var"]
    )


def test_pools_train_independent_problems_as_one_program():
    """Two problems (the toy task and its negated inputs) side by side: each run trains on its
    own pool only, and with full batches (no order to shuffle) each pool's held-out logits are
    those of training it alone, up to summation order."""
    from toy import SUBJ, TOY, X, Y

    config = train.TrainConfig(epochs=3, batch_size=1000, seeds=(0,), augment=False)
    vmap = train.Execution(strategy="vmap")
    alone = [train.train_loso(TOY, x, None, Y, SUBJ, config, vmap, progress=None) for x in (X, -X)]
    both = train.train_loso(
        TOY,
        np.concatenate([X, -X]),
        None,
        np.tile(Y, 2),
        [f"{k}|{s}" for k in range(2) for s in SUBJ],
        config,
        vmap,
        groups=[[f"{k}|s{i}"] for k in range(2) for i in range(4)],
        pools=np.repeat([0, 1], len(Y)),
        progress=None,
    )
    n = len(Y)
    for r in range(both.plan.num_real):
        pool = int(both.plan.held_out[r][0][0])
        trained = np.flatnonzero(both.plan.train_mask[r])
        assert ((trained // n) == pool).all() and len(trained) == n - 6
    for k in range(2):
        np.testing.assert_allclose(both.logits[:, k * n : (k + 1) * n], alone[k].logits, atol=1e-4)
    with pytest.raises(ValueError, match="spans pools"):
        train.fold_plan(["a", "b"], [["a", "b"]], (0,), augment=False, pools=[0, 1])

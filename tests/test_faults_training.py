"""Faults while training: a learning rate or a loss that is not a number worth training on, more
folds than subjects, JAX set to float64 by other code, Ctrl-C, an ETA that lies.

Each test failed on the code before its fix, in the way its docstring says (README,
Reliability: the table names each test).
"""

from __future__ import annotations

import dataclasses
import functools
import re
import tempfile
from pathlib import Path

import jax
import numpy as np
import pytest

from merjax import models, runner, train
from merjax.errors import Interrupted
from merjax.train import strategies

from toy import CKPT, CKPT_EVERY_EPOCH, LOOP, SUBJ, TOY, X, Y


@pytest.mark.parametrize("lr", [-1.0, 0.0, float("nan"), float("inf")])
def test_a_learning_rate_not_positive_and_finite_is_refused(lr):
    with pytest.raises(ValueError, match="learning_rate must be a positive finite number"):
        train.TrainConfig(learning_rate=lr)


def test_an_exploding_loss_stops_the_run():
    """Before: only a non-finite loss stopped training; 1e6 went on."""
    cfg = train.TrainConfig(epochs=3, batch_size=8)
    strict = train.Execution(epochs_per_call=1, strategy="loop", max_loss=1e-3)
    with pytest.raises(
        train.LossExploded, match=r"above 0.001 in run 0 \(seed 0, held out s0\) at epoch 2"
    ):
        train.train_loso(TOY, X, X, Y, SUBJ, cfg, strict, progress=None)
    wild = dataclasses.replace(cfg, learning_rate=1e4)
    with pytest.raises(train.Diverged):
        train.train_loso(TOY, X, X, Y, SUBJ, wild, LOOP, progress=None)


def test_more_folds_than_subjects_is_refused_before_the_flows(tiny_db, tmp_path):
    """Before: --set=num_folds=100 on 6 subjects ran 6 folds and reported 100."""
    with pytest.raises(ValueError, match=r"num_folds=100 but .* has 6 subjects"):
        runner.run(
            "input_study",
            tmp_path / "w",
            profile="tiny",
            cache_dir=tiny_db.parent,
            overrides=["num_folds=100"],
            progress=None,
        )
    assert not list(tiny_db.parent.glob("flows-*num*"))
    assert not (tmp_path / "w" / "runs").exists()


@pytest.mark.slow
def test_jax_enable_x64_changes_nothing(tiny_db, tmp_path):
    """Before: JAX_ENABLE_X64=1 (set for other JAX code) crashed after the flows: initialisers
    made float64 kernels that lax.conv refused beside float32 inputs."""
    run = functools.partial(
        runner.run,
        "input_study",
        profile="tiny",
        cache_dir=tiny_db.parent,
        overrides=["nets=vy-1cl", "headline=vy-1cl"],
        progress=None,
    )
    plain = run(tmp_path / "a")
    with jax.enable_x64(True):
        wide = run(tmp_path / "b")
        module, _ = models.by_name("vy-1cl")
        params = models.init(module, jax.random.key(0), (8, 8, 1))["params"]
    assert wide["configs"]["vy-1cl"]["accuracy"] == plain["configs"]["vy-1cl"]["accuracy"]
    assert {a.dtype for a in jax.tree.leaves(params)} == {np.dtype("float32")}


def test_ctrl_c_during_training_is_one_line_naming_the_last_checkpoint(monkeypatch):
    """Before: a 70-line traceback."""
    build = strategies.build
    calls = []

    def interrupted_on_the_third_call(*args, **kwargs):
        strategy = build(*args, **kwargs)

        def train_call(*a):
            calls.append(1)
            if len(calls) == 3:
                raise KeyboardInterrupt
            return strategy.train(*a)

        return strategy._replace(train=train_call)

    monkeypatch.setattr(strategies, "build", interrupted_on_the_third_call)
    execution = dataclasses.replace(CKPT_EVERY_EPOCH, checkpoint_every=2)
    with pytest.raises(Interrupted, match="interrupted at epoch 3; the last checkpoint is epoch 2"):
        train.train_loso(
            TOY, X, X, Y, SUBJ, CKPT, execution, progress=None, workdir=Path(tempfile.mkdtemp())
        )


def test_the_eta_is_this_process_pace_after_its_first_call(monkeypatch):
    """Before: the ETA divided all the time spent (compiling, restoring a checkpoint) by the
    epochs trained in this process: 1,034 s shown after a resume where about 10 s remained. The
    clock is faked: 100 s for the first call, then 1 s an epoch."""
    from merjax.train import loso

    # t0, then 100 s for the first call (compiling), then 0.5 s between readings (two per epoch)
    clock = iter([0.0] + [100.0 + 0.5 * k for k in range(50)])
    monkeypatch.setattr(loso.time, "perf_counter", lambda: next(clock))
    execution = dataclasses.replace(CKPT_EVERY_EPOCH, checkpoint_every=0)
    longer = dataclasses.replace(CKPT, epochs=6)
    seen = []
    train.train_loso(TOY, X, X, Y, SUBJ, longer, execution, progress=seen.append)
    etas = [float(e.group(1)) for m in seen if (e := re.search(r"ETA (\d+) s", m))]
    assert etas == [4, 3, 2, 1, 0], etas  # 1 s an epoch, not 100 / epochs
    assert "ETA after the next call (this one compiled)" in seen[0]  # no guess from compiling


def test_integer_subject_ids_give_the_predictions_of_their_string_forms():
    """Before: with int subjects every fold trained on every sample (``np.isin`` of the str
    groups against ints matched nothing) and ``preds`` was all -1, with no error."""
    cfg = train.TrainConfig(epochs=2, batch_size=8, seeds=(0,))
    ints = np.repeat(np.arange(4), 6)
    runs = {
        kind: train.train_loso(TOY, X, None, Y, subjects, cfg, LOOP, progress=None)
        for kind, subjects in (
            ("str", [str(s) for s in ints]),
            ("int", ints.tolist()),
            ("numpy int", ints),
            ("numpy int64", ints.astype(np.int64)),
        )
    }
    for kind, r in runs.items():
        assert (r.preds >= 0).all(), kind
        np.testing.assert_array_equal(r.preds, runs["str"].preds, err_msg=kind)
        # The four folds train on different samples, so their losses differ.
        assert len(set(np.round(r.losses[:, -1], 6).tolist())) > 1, kind
    # Groups may name subjects in either form; a group that matches nothing is an error.
    by_int = train.train_loso(TOY, X, None, Y, ints, cfg, LOOP, groups=[[0], [1]], progress=None)
    assert (by_int.preds[:, ints < 2] >= 0).all() and (by_int.preds[:, ints >= 2] == -1).all()
    with pytest.raises(ValueError, match=r"subject group \['s9'\] holds out no sample"):
        train.train_loso(TOY, X, None, Y, ints, cfg, LOOP, groups=[["s9"]], progress=None)

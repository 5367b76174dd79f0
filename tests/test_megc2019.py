"""The MEGC 2019 benchmark: STSTNet, the synthetic SMIC-HS layout, the NOT-VALID column, the run."""

from __future__ import annotations

import csv
import json

import jax
import numpy as np
import pytest

from merjax import metrics, models
from merjax.data import composite, smic
from merjax.models import ststnet


def test_ststnet_has_its_authors_parameter_count():
    """1,683 learnable parameters, as the authors' released PyTorch model counts them: three 3x3
    convolutions (3, 5, 8 filters, with bias) 448, BatchNorm 32, Dense 400 x 3 + 3 = 1,203."""
    model, rep = models.by_name("ststnet", num_classes=3)
    assert rep == "ststnet"
    assert models.count_params(model, (28, 28, 3)) == ststnet.AUTHORS_PARAMS == 1_683
    variables = jax.jit(lambda k: models.init(model, k, (28, 28, 3)))(jax.random.key(0))
    assert variables["params"]["fc"]["kernel"].shape == (400, 3)  # 5 x 5 x 16 after both pools
    x = jax.random.normal(jax.random.key(1), (4, 28, 28, 3))
    logits = jax.jit(model.apply)(variables, x)
    assert logits.shape == (4, 3)
    # Dropout draws its masks from the key training passes: two keys, two different outputs.
    train = jax.jit(
        lambda k: model.apply(
            variables, x, train=True, mutable=["batch_stats"], rngs={"dropout": k}
        )[0]
    )
    assert not np.allclose(train(jax.random.key(2)), train(jax.random.key(3)))


def test_synthetic_database_has_a_smic_layout(tiny_db):
    """The synthetic database writes SMIC-HS as distributed (sheet HS, OffsetF as a formula, bmp
    frames under HS/sN/micro/EMOTION/), so the real loader reads it."""
    s = smic.load(tiny_db / "SMIC")
    assert len(s) == 7 and {x.class_name for x in s} == {"negative", "positive", "surprise"}
    assert all(x.subject.startswith("smic/s") and x.apex == (x.onset + x.offset) // 2 for x in s)
    assert next((tiny_db / "SMIC").rglob("*.bmp")).parent.parent.parent.name == "micro"
    both = composite.megc2019(tiny_db / "SMIC", tiny_db / "CASME2", tiny_db / "SAMM")
    assert {x.dataset for x in both} == {"smic", "casme2", "samm"} and max(
        x.label for x in both
    ) == 2


def test_best_test_epoch_is_chosen_per_subject_on_its_test_samples():
    """Each subject takes the epoch where its own held-out samples scored best (ties: earliest):
    subject 0 is right at epoch 1 only, subject 1 at epochs 0 and 2."""
    labels = np.array([0, 1, 2, 0])
    preds = np.array(
        [
            [1, 1, 2, 0],  # epoch 0: subject 0 (samples 0, 1) 1 right; subject 1 2 right
            [0, 1, 0, 1],  # epoch 1: subject 0 2 right; subject 1 none
            [1, 0, 2, 0],
        ]
    )  # epoch 2: subject 0 none; subject 1 2 right
    picked, chosen = metrics.best_test_epoch_predictions(preds, labels, [[0, 1], [2, 3]], 3)
    assert chosen.tolist() == [1, 0]
    assert picked.tolist() == [0, 1, 2, 0]  # every prediction right: the inflation in one line
    with pytest.raises(ValueError, match="accuracy, uf1 or uar"):
        metrics.best_test_epoch_predictions(preds, labels, [[0, 1]], 3, "f1")


def test_best_test_epoch_by_accuracy_is_never_below_any_fixed_epoch():
    """Picked by accuracy per subject, the pooled accuracy is at least every single epoch's
    (each subject's correct count is at least that epoch's); by UF1 the chosen epoch maximises
    each subject's own UF1."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 60)
    preds = rng.integers(0, 3, (7, 60))
    subjects = np.array_split(rng.permutation(60), 11)
    picked, _ = metrics.best_test_epoch_predictions(preds, labels, subjects, 3, "accuracy")
    assert all(metrics.accuracy(labels, picked) >= metrics.accuracy(labels, p) for p in preds)
    _, chosen = metrics.best_test_epoch_predictions(preds, labels, subjects, 3, "uf1")
    for idx, c in zip(subjects, chosen, strict=True):
        own = [metrics.uf1(labels[idx], p[idx], 3) for p in preds]
        assert own[c] == max(own)


@pytest.mark.slow
def test_the_experiment_end_to_end(megc2019_run):
    """In the tiny profile: every configuration trains, the table has the published and the
    NOT-VALID columns, and its numbers are those of the pooled predictions."""
    w, s = megc2019_run
    assert s["headline"] == "ststnet-tvl1" and set(s["configs"]) == {
        "ststnet-tvl1",
        "vy-3cl-horn_schunck",
        "vy-3cl-tvl1",
    }
    assert tuple(s["published"]["all"]) == (0.7353, 0.7605)
    for name, row in s["configs"].items():
        assert set(row["per_dataset"]) == {"smic", "casme2", "samm"}
        not_valid = s["not_valid_best_test_epoch"][name]
        assert 0 <= not_valid["uf1"] <= 1 and 0 <= not_valid["uar"] <= 1
        # the fixed final epoch is a candidate: by accuracy the selection never scores lower
        assert not_valid["accuracy"] >= row["accuracy"] - 1e-9
    rows = list(csv.DictReader(open(w / "megc2019.csv")))
    assert [r["config"] for r in rows][0] == "ststnet-tvl1" and rows[0]["published_uf1"] == "0.7353"
    md = (w / "megc2019.md").read_text()
    assert "NOT VALID: best test epoch per subject" in md and "| STSTNet | TV-L1 |" in md
    report = (w / "report.md").read_text()
    assert "**The NOT VALID column is not a valid result.**" in report
    assert "95% intervals by resampling subjects" in report
    # The headline's UF1 and UAR are those of its pooled held-out predictions (metrics.jsonl),
    # and so is its interval.
    lines = [json.loads(x) for x in (w / "runs" / "ststnet-tvl1" / "metrics.jsonl").open()]
    pooled = [x for x in lines if x["kind"] == "pooled"]
    assert pooled and pooled[0]["all"]["uf1"] == pytest.approx(s["uf1"])
    runs = [x for x in lines if x["kind"] == "predictions"]
    preds = np.array([r["preds"] for r in runs])
    held = (preds >= 0).all(0)
    labels, subjects = (np.array(runs[0][k])[held] for k in ("labels", "subjects"))
    ci = metrics.bootstrap_ci(labels, preds[:, held], subjects, 3)
    assert ci == pytest.approx(tuple(s["configs"]["ststnet-tvl1"]["uf1_ci"]))
    assert f"[{ci[0]:.3f}, {ci[1]:.3f}]" in md
    assert (
        json.loads((w / "models" / "ststnet" / "model.json").read_text())["flow"]["method"]
        == "tvl1"
    )
    for png in ("confusion_ststnet-tvl1.png", "uf1_by_config.png"):
        assert (w / png).stat().st_size > 1000

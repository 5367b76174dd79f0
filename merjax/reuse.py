"""Finished networks kept in the workdir, so that a rerun reuses them instead of training again:
after Ctrl-C, an experiment that trained 9 of 16 networks starts at the 10th.

    reuse.save(path, result, key)       # after a network's every fold and seed
    reuse.load(path, key)               # the NetResult, or None (absent, stale, corrupt)

``key`` (:func:`key`) is everything the result depends on: the network, its input size, folds,
protocol, convolutions, the data (every sample's identity and the flow settings) and merjax's
own code. A file whose key differs is stale and is trained over; a file that does not read back
whole is corrupt, said, and trained over too. Trained weights are not kept here (a network whose
weights are needed, the saved final model, trains again).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from merjax import checkpoint, files, train
from merjax.evaluation import NetResult

FILE = "result.npz"  # in runs/<name>/, beside metrics.jsonl


def key(**parts) -> str:
    """The digest of everything a result depends on (JSON-able values, ``str`` for the rest),
    with merjax's code."""
    return checkpoint.digest([parts, checkpoint.code_digest()])


def save(path: str | Path, result: NetResult, key: str) -> Path:
    """Writes ``result`` (without trained states) whole or not at all."""
    loso = result.loso
    meta = {
        "key": key,
        "net": result.net,
        "representation": result.representation,
        "params": result.params,
        "per_seed": result.per_seed,
        "intervals": result.intervals,
        "seeds": list(loso.seeds),
        "held_out": [list(h) for h in loso.plan.held_out],
        "num_real": loso.plan.num_real,
        "seconds": loso.seconds,
        "eval_epochs": list(loso.eval_epochs),
    }
    arrays = {
        "logits": loso.logits,
        "preds": loso.preds,
        "labels": loso.labels,
        "losses": loso.losses,
        "train_mask": loso.plan.train_mask,
        "test_idx": loso.plan.test_idx,
        "test_valid": loso.plan.test_valid,
        "plan_seeds": loso.plan.seeds,
    }
    for name in ("train_accuracy", "features", "eval_logits"):
        if getattr(loso, name) is not None:
            arrays[name] = getattr(loso, name)
    return files.savez(path, meta=np.array(json.dumps(meta, default=str)), **arrays)


def load(path: str | Path, key: str) -> tuple[NetResult | None, str]:
    """The result at ``path`` if it was saved under ``key``; else None and why ('' if absent)."""
    path = Path(path)
    if not path.is_file():
        return None, ""
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if meta.get("key") != key:
                return None, "saved for other data, settings or code"
            a = {k: z[k] for k in z.files if k != "meta"}
        plan = train.Plan(
            a["train_mask"],
            a["test_idx"],
            a["test_valid"],
            a["plan_seeds"],
            tuple(tuple(h) for h in meta["held_out"]),
            int(meta["num_real"]),
        )
        loso = train.LosoResult(
            logits=a["logits"],
            preds=a["preds"],
            labels=a["labels"],
            seeds=tuple(meta["seeds"]),
            plan=plan,
            losses=a["losses"],
            train_accuracy=a.get("train_accuracy"),
            features=a.get("features"),
            seconds=float(meta["seconds"]),
            eval_epochs=tuple(meta["eval_epochs"]),
            eval_logits=a.get("eval_logits"),
        )
        intervals = {
            g: {m: tuple(v) for m, v in by_metric.items()}
            for g, by_metric in meta["intervals"].items()
        }
        result = NetResult(
            meta["net"],
            meta["representation"],
            int(meta["params"]),
            meta["per_seed"],
            loso,
            intervals,
        )
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as e:
        return None, f"unreadable ({type(e).__name__}: {e})"
    return result, ""

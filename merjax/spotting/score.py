"""Scores a spotting (or spot-then-recognise) submission file against a truth file.

    python -m merjax.spotting.score --truth=truth.csv --pred=submission/spotting.csv
    python -m merjax.spotting.score --truth=truth.csv --pred=submission/str.csv --rule=megc2020

Both files in the submission's columns (:mod:`merjax.data.submission`). Prints precision,
recall and F1 per type (``me``, ``mae``) and overall, as MEGC scores spotting, and STRS where
both files carry emotions; with ``--rule``, the counts of one of the field's other evaluators
(:mod:`merjax.spotting.rules`), so a number can be compared with a published one scored that
way. A ``vid`` of the prediction that the truth does not hold is listed, and its spots count as
false positives (the truth file names only videos with an expression).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from merjax.data import submission
from merjax.data.intervals import KINDS, Interval
from merjax.errors import DataError
from merjax.spotting import metrics, rules


def score(
    truth: Mapping[str, Sequence[Interval]],
    pred: Mapping[str, Sequence[Interval]],
    rule: str = "merjax",
) -> dict:
    """Scores ``pred`` against ``truth`` (``{vid: intervals}``) by ``rule``: per kind and
    ``overall`` the counts and scores, ``strs`` (merjax's rule, where both carry emotions; else
    None), and ``unknown``: the prediction's vids the truth does not hold."""
    if rule not in rules.RULES:
        raise DataError(f"--rule {rule!r}: expected one of {list(rules.RULES)}")
    vids = list(truth) + [v for v in pred if v not in truth]
    videos = [(list(pred.get(v, ())), list(truth.get(v, ()))) for v in vids]
    counts = rules.RULES[rule].count(videos)
    out = {k: c.as_dict() for k, c in counts.items()}
    labelled = all(i.emotion for v in truth.values() for i in v if i.kind == "micro") and any(
        i.emotion for v in pred.values() for i in v
    )
    out["strs"] = metrics.strs(videos) if labelled and rule == "merjax" else None
    out["unknown"] = [v for v in pred if v not in truth]
    out["rule"] = rule
    return out


def lines(result: dict, truth_path: str, pred_path: str) -> list[str]:
    """What the command prints."""
    rule = rules.RULES[result["rule"]]
    out = [f"{pred_path} against {truth_path}, counted by {rule.name} ({rule.says})"]
    unknown = result["unknown"]
    if unknown:
        out.append(
            f"{len(unknown)} vid(s) of the prediction are not in the truth, their spots false "
            f"positives: {', '.join(unknown[:5])}" + (" ..." if len(unknown) > 5 else "")
        )
    for kind in (*KINDS, "overall"):
        c = result[kind]
        name = submission.TYPES.get(kind, kind)
        out.append(
            f"{name:>7}: precision {c['precision']:.4f}, recall {c['recall']:.4f}, F1 "
            f"{c['f1']:.4f} (TP {c['tp']}, FP {c['fp']}, FN {c['fn']})"
        )
    s = result["strs"]
    if s is not None:
        a = s["analysis"]
        out.append(
            f"   STRS: {s['strs']:.4f} (micro spotting F1 {s['spotting']['f1']:.4f} x analysis "
            f"F1 {a['f1']:.4f}; analysis UF1 {a['uf1']:.4f})"
        )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--truth", required=True, help="truth file (submission columns)")
    parser.add_argument("--pred", required=True, help="submission file to score")
    parser.add_argument("--rule", default="merjax", choices=sorted(rules.RULES))
    parser.add_argument("--json", action="store_true", help="print the scores as JSON")
    args = parser.parse_args(argv)
    try:
        truth = submission.read(args.truth)
        pred = submission.read(args.pred)
        if not truth:
            raise DataError(f"{args.truth!r} holds no ground-truth row")
        result = score(truth, pred, args.rule)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print("\n".join(lines(result, str(Path(args.truth)), str(Path(args.pred)))))
    return 0


if __name__ == "__main__":
    sys.exit(main())

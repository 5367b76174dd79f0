"""Fold planning: which subjects each run holds out, and the masks that keep them out.

One *run* = one held-out subject group under one seed (plus, optionally, one run per seed that
trains on every subject: the final model for inference). Every run trains on the same table of
training items through its own mask, so a run never sees its held-out subjects; the tests
assert on these masks.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import NamedTuple

import numpy as np

FINAL = ("*",)
"""``Plan.held_out`` of a run that holds nobody out (the final model, trained on every subject)."""


class Plan(NamedTuple):
    """Which items each run trains on and which samples it tests; numpy, run-major."""

    train_mask: np.ndarray  # [R, M] bool over the M training items
    test_idx: np.ndarray  # [R, T] int sample indices (padded)
    test_valid: np.ndarray  # [R, T] bool
    seeds: np.ndarray  # [R] int
    held_out: tuple[tuple[str, ...], ...]  # per run, the held-out subjects (FINAL: the final model)
    num_real: int  # runs 0..num_real-1 are real; the rest pad the run axis (pad_runs)

    def tested(self, r: int) -> np.ndarray:
        """The sample indices run ``r`` holds out (its test samples, without the padding)."""
        return self.test_idx[r][self.test_valid[r]]


def subject_ids(subjects: Sequence[Hashable]) -> np.ndarray:
    """Subject IDs as a string array ``[N]``: ints, numpy ints and strings alike, so that a
    group of ``str`` names (what :func:`subject_groups` returns) matches them."""
    return np.array([str(s) for s in subjects], dtype=str)


def subject_groups(subjects: Sequence[Hashable], num_folds: int | None = None) -> list[list[str]]:
    """LOSO (one group per subject) or ``num_folds`` groups with similar sample counts."""
    names, counts = np.unique(subject_ids(subjects), return_counts=True)
    if num_folds is None or num_folds >= len(names):
        return [[str(n)] for n in names]
    if num_folds < 2:
        raise ValueError(f"num_folds must be >= 2, got {num_folds}")
    groups: list[list[str]] = [[] for _ in range(num_folds)]
    sizes = np.zeros(num_folds, int)
    for i in np.argsort(-counts, kind="stable"):  # largest subjects first, to the lightest group
        g = int(sizes.argmin())
        groups[g].append(str(names[i]))
        sizes[g] += counts[i]
    return [sorted(g) for g in groups]


def fold_plan(
    subjects: Sequence[Hashable],
    groups: Sequence[Sequence[Hashable]],
    seeds: Sequence[int],
    *,
    augment: bool = True,
    train_final: bool = False,
    pools: Sequence[int] | None = None,
) -> Plan:
    """Masks for every (seed, group) run. Items ``0..N-1`` are the onset->apex flows and, with
    ``augment``, items ``N..2N-1`` the onset->apex+1 flows of the same samples.

    ``pools`` (one int per sample) splits the table into independent problems that train side
    by side in one program, e.g. the same clips in two representations: a run trains only on
    the pool its held-out group is in, never on another pool's samples.

    Subjects and group members are compared as strings (:func:`subject_ids`). A group that
    holds out no sample is an error: it is a typo or a type mismatch, and its run would train
    on everything while testing nothing."""
    subjects = subject_ids(subjects)
    groups = [[str(s) for s in g] for g in groups]
    if not groups:
        raise ValueError("no subject groups to hold out")
    for g in groups:
        if not np.isin(subjects, g).any():
            known = ", ".join(sorted(set(subjects.tolist()))[:8])
            raise ValueError(f"subject group {g} holds out no sample (subjects: {known}, ...)")
    pool_of = np.zeros(len(subjects), int) if pools is None else np.asarray(pools, int)
    if pool_of.shape != subjects.shape:
        raise ValueError(
            f"pools must give one int per sample, got {pool_of.shape} for {subjects.shape}"
        )
    if pools is not None and train_final:
        raise ValueError("train_final trains on every subject: not with pools (whose?)")
    group_pool = []
    for g in groups:
        found = np.unique(pool_of[np.isin(subjects, g)])
        if len(found) != 1:
            raise ValueError(f"subject group {g} spans pools {found.tolist()}: one pool per group")
        group_pool.append(int(found[0]))
    runs = [g for g in groups] + ([[]] if train_final else [])
    run_pool = group_pool + ([0] if train_final else [])
    tmax = max(1, max(int(np.isin(subjects, g).sum()) for g in runs))
    masks, idx, valid, run_seeds, held = [], [], [], [], []
    for seed in seeds:
        for g, pool in zip(runs, run_pool, strict=True):
            test = np.isin(subjects, g)
            train = ~test & (pool_of == pool)
            masks.append(np.concatenate([train, train]) if augment else train)
            t = np.flatnonzero(test)
            idx.append(np.pad(t, (0, tmax - len(t))))
            valid.append(np.arange(tmax) < len(t))
            run_seeds.append(seed)
            held.append(tuple(g) if g else FINAL)
    arrays = (np.array(masks), np.array(idx), np.array(valid), np.array(run_seeds))
    return Plan(*arrays, tuple(held), len(held))


def pad_runs(plan: Plan, multiple: int) -> Plan:
    """Appends empty runs (nothing to train, nothing to test) up to a multiple of ``multiple``."""
    extra = -len(plan.seeds) % multiple
    if not extra:
        return plan
    return Plan(
        np.concatenate([plan.train_mask, np.zeros((extra, plan.train_mask.shape[1]), bool)]),
        np.concatenate([plan.test_idx, np.zeros((extra, plan.test_idx.shape[1]), int)]),
        np.concatenate([plan.test_valid, np.zeros((extra, plan.test_valid.shape[1]), bool)]),
        np.concatenate([plan.seeds, np.zeros(extra, int)]),
        plan.held_out + (("",),) * extra,
        plan.num_real,
    )

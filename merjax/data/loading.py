"""The data of an experiment: a composite's samples and their flows, loaded once.

From the databases' roots (the MEGC 2018 composite: CASME II + SAMM; MEGC 2019: SMIC-HS as well)
or, with no roots, from the synthetic database written into the cache folder; flows come from
the flow cache (:mod:`merjax.data.cache`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from merjax.data import cache, composite, synthetic
from merjax.data.sample import SampleList
from merjax.flow import FlowSettings

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Roots:
    """Where the databases are: CASME II and SAMM both (the MEGC 2018 composite), with SMIC-HS
    as well (MEGC 2019), or none (the synthetic database)."""

    casme2: str | Path | None = None
    samm: str | Path | None = None
    smic: str | Path | None = None

    def __post_init__(self):
        if (self.casme2 is None) != (self.samm is None):
            raise ValueError(
                "give both --casme2_root and --samm_root (the MEGC 2018 composite) or neither "
                "(the synthetic database)"
            )
        if self.smic is not None and self.casme2 is None:
            raise ValueError(
                "--smic_root goes with --casme2_root and --samm_root (the MEGC 2019 composite)"
            )


@dataclasses.dataclass
class Data:
    """The composite's samples and their flows, aligned."""

    samples: SampleList
    flows: cache.FlowSet
    source: str  # where the frames came from, for reports
    labels: np.ndarray  # [N] int
    subjects: list[str]
    datasets: list[str]

    @property
    def warnings(self) -> list[str]:
        """What a report must say first: databases that lost more than a third of their rows."""
        return self.samples.losses()

    @property
    def notes(self) -> list[str]:
        """Everything a loader or the flow step did to a sample (skips, fills, face fallbacks)."""
        skipped = [f"skipped {p}" for p in self.samples.skipped]
        fixed = [f"{s.source}: {s.note}" for s in self.samples if s.note]
        return skipped + fixed + list(self.flows.notes)


def load(
    name: str,
    roots: Roots,
    flow: FlowSettings,
    cache_dir: str | Path,
    *,
    synthetic_size: str = "full",
    synthetic_seed: int = 0,
    apex_policy: str = "midpoint",
    on_error: str = "raise",
    bit_depth: int | None = None,
    num_folds: int | None = None,
    progress: Callable[[str], None] | None = log.info,
) -> Data:
    """The samples of composite ``name`` (``megc2018`` or ``megc2019``) and their flows.

    ``num_folds`` (the folds the data will be split into) is checked against the subjects
    found, before any flow is computed."""
    say = progress or (lambda _: None)
    mega = name == "megc2019"
    casme2_root, samm_root, smic_root = roots.casme2, roots.samm, roots.smic
    if casme2_root is None:
        written = synthetic.ensure(cache_dir, size=synthetic_size, seed=synthetic_seed)
        casme2_root, samm_root, smic_root = written["casme2"], written["samm"], written["smic"]
        cache_name = f"synthetic-{synthetic_size}-seed{synthetic_seed}" + (
            "-megc2019" if mega else ""
        )
        source = (
            f"the synthetic database ({synthetic_size}, seed {synthetic_seed}) in "
            f"{written['casme2'].parent}"
        )
    elif mega:
        if smic_root is None:
            raise ValueError(
                "the MEGC 2019 composite needs --smic_root as well as --casme2_root and --samm_root"
            )
        cache_name = "megc2019"
        source = (
            f"SMIC-HS at {smic_root}, CASME II at {casme2_root} and SAMM at {samm_root} "
            "(MEGC 2019 composite)"
        )
    else:
        cache_name = "megc2018"
        source = f"CASME II at {casme2_root} and SAMM at {samm_root} (MEGC 2018 composite)"
    say(f"reading {source}")
    options = dict(apex_policy=apex_policy, on_error=on_error, bit_depth=bit_depth)
    if mega:
        samples = composite.megc2019(smic_root, casme2_root, samm_root, **options)
    else:
        samples = composite.megc2018(casme2_root, samm_root, **options)
    if not samples:
        raise ValueError(f"no usable samples in {source}")
    say(samples.summary())
    subjects = len({s.subject for s in samples})
    if num_folds is not None and num_folds > subjects:
        raise ValueError(
            f"num_folds={num_folds} but {source} has {subjects} subjects: give num_folds at most "
            f"{subjects}, or num_folds=None for leave-one-subject-out ({subjects} folds)"
        )
    flows, _ = cache.load_or_compute(samples, flow, cache_dir, cache_name, progress=progress)
    return Data(
        samples,
        flows,
        source,
        labels=np.array([s.label for s in samples], np.int32),
        subjects=[s.subject for s in samples],
        datasets=[s.dataset for s in samples],
    )

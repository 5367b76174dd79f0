"""The data of an experiment: a composite's samples and their flows (:func:`load`), or the long
videos it spots (:func:`load_long_videos`).

From the databases' roots (:class:`Roots`; which ones an experiment needs: the
:class:`~merjax.data.databases.DatabaseSet` it reads) or, with no roots, from the synthetic
databases written into the cache folder; flows come from the flow cache
(:mod:`merjax.data.cache`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from merjax.data import (
    cache,
    casme3,
    clip_table,
    composite,
    databases,
    longvideo,
    synthetic,
    synthetic_long,
)
from merjax.data.databases import DatabaseSet
from merjax.data.sample import SampleList
from merjax.flow import FlowSettings

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Roots:
    """Where the databases are (``--<name>_root``); none given: the synthetic database, which
    holds all four. Which ones an experiment needs, its composite says
    (:meth:`merjax.data.composite.Composite.missing`)."""

    casme2: str | Path | None = None
    samm: str | Path | None = None
    smic: str | Path | None = None
    casme3: str | Path | None = None
    samm_lv: str | Path | None = None
    casme_sq: str | Path | None = None
    csv: str | Path | None = None  # your own clips (merjax.data.clip_table)

    def __post_init__(self):
        seen: dict[Path, str] = {}
        for name, root in self.given().items():
            where = Path(root).expanduser().resolve()
            if where in seen:
                raise ValueError(
                    f"--{seen[where]}_root and --{name}_root are the same folder {str(root)!r}: "
                    "a database given twice"
                )
            seen[where] = name

    def given(self) -> dict[str, str | Path]:
        """``{database: root}`` for the roots given."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) is not None
        }

    def check(self, reads: Sequence[DatabaseSet]) -> None:
        """A ValueError naming what is missing when the roots given do not make the first set
        of ``reads`` (an experiment's headline data), or naming a root none of them reads. No
        roots at all is always fine: the synthetic databases have every database."""
        given = set(self.given())
        if not given:
            return
        if not reads:
            raise ValueError(
                f"--{sorted(given)[0]}_root is not read by this experiment (it makes its own "
                "synthetic videos)"
            )
        why = reads[0].missing(given)
        if why:
            raise ValueError(
                f"{why} (or no root at all: the synthetic database); given: "
                + ", ".join(f"--{d}_root" for d in sorted(given))
            )
        used = {d for s in reads for d in s.needs}
        unused = sorted(given - used)
        if unused:
            raise ValueError(
                f"--{unused[0]}_root is not read by this experiment (it reads the "
                + " and the ".join(s.title for s in reads)
                + ")"
            )


@dataclasses.dataclass
class Data:
    """The composite's samples and their flows, aligned, and the names of its classes."""

    samples: SampleList
    flows: cache.FlowSet
    source: str  # where the frames came from, for reports
    labels: np.ndarray  # [N] int, indices into class_names
    subjects: list[str]
    datasets: list[str]
    class_names: tuple[str, ...]  # the composite's classes, for tables, figures and models

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

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
    """The samples of composite ``name`` (:data:`merjax.data.composite.COMPOSITES`) and their
    flows.

    ``num_folds`` (the folds the data will be split into) is checked against the subjects
    found, before any flow is computed. CAS(ME)^3's 4- and 3-class sets are subsets of its 7
    classes: their flows are the 7-class set's, computed once."""
    say = progress or (lambda _: None)
    spec = composite.spec(name)
    options = dict(apex_policy=apex_policy, on_error=on_error, bit_depth=bit_depth)
    given = roots.given()
    if not given and "csv" in spec.needs:
        raise ValueError(
            f"the {spec.title} are your own: give --csv_root (a CSV of subject, clip, onset, "
            "apex, offset, label; merjax.data.clip_table)"
        )
    if not given:
        written = synthetic.ensure(cache_dir, size=synthetic_size, seed=synthetic_seed)
        given = {d: written[d] for d in spec.needs}
        cache_name = f"synthetic-{synthetic_size}-seed{synthetic_seed}"
        source = (
            f"the synthetic database ({synthetic_size}, seed {synthetic_seed}) in "
            f"{written['casme2'].parent}"
        )
    else:
        cache_name = "real"
        source = ", ".join(f"{databases.NAMES[d]} at {given[d]}" for d in spec.needs if d in given)
    given = {d: r for d, r in given.items() if d in spec.needs}
    why = spec.missing(set(given))
    if why:
        raise ValueError(why)
    source = f"{spec.title}: {source}"
    say(f"reading {source}")
    keep = None
    if name in ("casme3-4", "casme3-3"):  # a subset of the 7 classes: their flows
        every = composite.load("casme3-7", given, **options)
        k = int(name[-1])
        samples = composite.relabel(every, casme3.CLASS_SETS[k], casme3.CLASS_NAMES[k])
        keep = [i for i, s in enumerate(every) if s.emotion in casme3.CLASS_SETS[k]]
        flows_for, cache_name = every, f"{cache_name}-casme3-7"
    else:
        samples = composite.load(name, given, **options)
        flows_for, cache_name = samples, f"{cache_name}-{name}"
    if not samples:
        raise ValueError(f"no usable samples in {source}")
    say(samples.summary())
    subjects = len({s.subject for s in samples})
    if num_folds is not None and num_folds > subjects:
        raise ValueError(
            f"num_folds={num_folds} but {source} has {subjects} subjects: give num_folds at most "
            f"{subjects}, or num_folds=None for leave-one-subject-out ({subjects} folds)"
        )
    flows, _ = cache.load_or_compute(flows_for, flow, cache_dir, cache_name, progress=progress)
    if keep is not None:
        mine = tuple(f"{s.source} ({s.clip}): " for s in samples)
        flows = dataclasses.replace(
            flows.take(keep), notes=tuple(n for n in flows.notes if n.startswith(mine))
        )
    return Data(
        samples,
        flows,
        source,
        labels=np.array([s.label for s in samples], np.int32),
        subjects=[s.subject for s in samples],
        datasets=[s.dataset for s in samples],
        class_names=spec.classes or clip_table.class_names(samples),
    )


@dataclasses.dataclass
class LongVideos:
    """The long videos of each database an experiment spots, and where they came from."""

    videos: dict[str, longvideo.VideoList]  # by database (longvideo.DATABASES)
    source: str  # for reports
    warnings: list[str]  # what a report must say first: annotated videos without frames


def load_long_videos(
    roots: Roots,
    names: Sequence[str],
    cache_dir: str | Path,
    *,
    synthetic_size: str = "full",
    synthetic_seed: int = 0,
    synthetic_faces: str = "drawn",
    progress: Callable[[str], None] | None = log.info,
) -> LongVideos:
    """The long videos of every database whose root is given, or with none given, of the
    synthetic long videos in the layouts of ``names`` (written into the cache folder on first
    use; ``synthetic_faces``: drawn faces or the photograph, :mod:`merjax.data.synthetic_long`).
    Videos a database annotates but whose frames are missing are listed in the warnings, never
    silently dropped."""
    say = progress or (lambda _: None)
    given = {d: r for d, r in roots.given().items() if d in longvideo.DATABASES}
    if given:
        source = ", ".join(f"{longvideo.NAMES[d]} at {r}" for d, r in given.items())
    else:
        written = synthetic_long.ensure(
            cache_dir, size=synthetic_size, seed=synthetic_seed, faces=synthetic_faces
        )
        given = {d: r for d, r in written.items() if d in names}
        source = (
            f"the synthetic long videos ({synthetic_size}, {synthetic_faces} faces, seed "
            f"{synthetic_seed}) in "
            f"{next(iter(given.values())).parent}"
        )
    videos, warnings = {}, []
    for db, root in given.items():
        found = videos[db] = longvideo.load(db, root)
        subjects = len({v.subject for v in found})
        say(f"{longvideo.NAMES[db]}: {len(found)} videos of {subjects} subjects")
        if found.missing:
            warnings.append(
                f"{longvideo.NAMES[db]}: {len(found.missing)} annotated videos have no frames "
                f"below {root} and are not scored (e.g. {', '.join(found.missing[:3])})"
            )
            say(f"warning: {warnings[-1]}")
    return LongVideos(videos, source, warnings)

"""The composites experiments train on: MEGC 2018 (5 objective classes), MEGC 2019 (3 emotion
classes), CAS(ME)^3 Part A (7, 4 or 3 classes) and every database on MEGC 2019's 3 classes.

MEGC 2018 keeps objective classes I-V of CASME II and SAMM (VI and VII are dropped): with the
official spreadsheets that is 185 + 68 = 253 samples from 26 + 21 = 47 subjects (docs/data.md).
The paper reports 241; which 12 it dropped is unknown.

MEGC 2019 maps emotions to negative / positive / surprise over SMIC-HS, CASME II and SAMM.
Its published counts are 164 + 145 + 133 = 442 samples and 16 + 24 + 28 = 68 subjects. The
distributed ``SMIC-HS-E_annotation.xlsx`` annotates 157 of SMIC-HS's 164 clips. With CASME II
negative = disgust + repression (MEGC 2019 lists 88; the spreadsheet has 63 + 27 = 90), these
files give 157 + 147 + 133 = 437 samples.

``three-class`` is MEGC 2019's mapping over every database given, with CAS(ME)^3's 3 classes
(negative = anger, disgust, fear, sad) beside them: the cross-database (leave-one-database-out)
composite. ``casme3-7``, ``casme3-4`` and ``casme3-3`` are CAS(ME)^3 Part A in its class sets
(:data:`merjax.data.casme3.CLASS_SETS`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

from merjax.data import casme2, casme3, clip_table, emotions, samm, smic
from merjax.data.databases import DatabaseSet
from merjax.data.emotions import MEGC2019_CLASSES
from merjax.data.frames import replace
from merjax.data.sample import OBJECTIVE_CLASSES, SampleList

MEGC2018_CLASSES: tuple[str, ...] = OBJECTIVE_CLASSES[:5]

EMOTION_NAMES = ("happiness", "surprise", "anger", "disgust", "sadness")
"""The paper's names for objective classes I-V (its Tables 5-7 and Figures 6-7)."""


@dataclasses.dataclass(frozen=True)
class Composite(DatabaseSet):
    """A composite of clips: the databases it needs (:class:`DatabaseSet`) and its classes."""

    classes: tuple[str, ...] = ()


COMPOSITES: dict[str, Composite] = {
    "megc2018": Composite(
        "MEGC 2018 composite (CASME II + SAMM)",
        ("casme2", "samm"),
        classes=tuple(f"{c} ({n})" for c, n in zip(MEGC2018_CLASSES, EMOTION_NAMES, strict=True)),
    ),
    "megc2019": Composite(
        "MEGC 2019 composite (SMIC-HS + CASME II + SAMM)",
        ("smic", "casme2", "samm"),
        classes=MEGC2019_CLASSES,
    ),
    **{
        f"casme3-{k}": Composite(f"CAS(ME)^3 Part A ({k} classes)", ("casme3",), classes=names)
        for k, names in casme3.CLASS_NAMES.items()
    },
    "csv": Composite("clips of a CSV (--csv_root)", ("csv",)),  # classes: its labels
    "three-class": Composite(
        "MEGC 2019 classes over every database given",
        ("smic", "casme2", "samm", "casme3"),
        at_least=2,
        classes=MEGC2019_CLASSES,
    ),
}
"""Every composite by name (``Config.composite``)."""


def class_labels(composite: str) -> list[str]:
    """Class names for tables and model folders: MEGC 2018's objective classes I-V (with the
    paper's emotion names), MEGC 2019's negative / positive / surprise, CAS(ME)^3's sets."""
    return list(spec(composite).classes)


def spec(name: str) -> Composite:
    """The composite called ``name``, or a ValueError listing them."""
    if name not in COMPOSITES:
        raise ValueError(f"composite must be one of {', '.join(COMPOSITES)}; got {name!r}")
    return COMPOSITES[name]


_DEFAULTS = {
    "casme2_frames": "auto",
    "apex_policy": "midpoint",
    "on_error": "raise",
    "check": True,
    "bit_depth": None,
}


def database(name: str, root: str | Path, **options) -> SampleList:
    """One database on its own labels (objective classes for CASME II and SAMM, SMIC-HS's
    three, CAS(ME)^3's seven emotions); ``options`` as for :func:`megc2018`."""
    options = _DEFAULTS | options
    common = {k: options[k] for k in ("on_error", "check", "bit_depth")}
    if name == "casme2":
        return casme2.load(
            root, frames=options["casme2_frames"], apex_policy=options["apex_policy"], **common
        )
    if name == "samm":
        return samm.load(root, **common)
    if name == "smic":
        return smic.load(root, **common)
    if name == "casme3":
        return casme3.load(root, classes=7, **common)
    raise ValueError(f"unknown database {name!r}; expected one of casme2, samm, smic, casme3")


def megc2018(casme2_root: str | Path, samm_root: str | Path, **options) -> SampleList:
    """CASME II + SAMM, objective classes I-V; ``label`` 0-4, subjects prefixed by database.

    ``options``: ``casme2_frames`` and ``apex_policy`` go to :func:`merjax.data.casme2.load`;
    ``on_error`` ("raise" or "skip"), ``check`` (decode the frames) and ``bit_depth`` to every
    loader.
    """
    both = database("casme2", casme2_root, **options) + database("samm", samm_root, **options)
    return both.filter(lambda x: x.label < len(MEGC2018_CLASSES))


def megc2019(
    smic_root: str | Path, casme2_root: str | Path, samm_root: str | Path, **options
) -> SampleList:
    """SMIC-HS + CASME II + SAMM with labels 0/1/2 = negative/positive/surprise; ``options``
    as for :func:`megc2018`."""
    return three_class({"smic": smic_root, "casme2": casme2_root, "samm": samm_root}, **options)


def three_class(roots: Mapping[str, str | Path], **options) -> SampleList:
    """Every database in ``roots`` (``{"casme2": root, ...}``) on MEGC 2019's classes
    (negative / positive / surprise); ``options`` as for :func:`megc2018`. Samples of other
    emotions are left out (CASME II's and SAMM's others, CAS(ME)^3's ``others``)."""
    out = SampleList()
    for name in ("smic", "casme2", "samm", "casme3"):  # MEGC 2019's order, then CAS(ME)^3
        if name not in roots:
            continue
        loaded = database(name, roots[name], **options)
        if name != "smic":  # SMIC-HS is labelled in these classes already
            loaded = relabel(loaded, emotions.megc2019(name), MEGC2019_CLASSES)
        out = out + loaded
    return out


def relabel(samples: SampleList, mapping: Mapping[str, str], classes: tuple[str, ...]):
    """The samples whose ``emotion`` is in ``mapping``, labelled by the index of its class in
    ``classes``; the others are left out (not skipped: they are not of this task)."""
    kept = [
        replace(s, label=classes.index(mapping[s.emotion]), class_name=mapping[s.emotion])
        for s in samples
        if s.emotion in mapping
    ]
    return SampleList(kept, samples.skipped, samples.rows)


def load(name: str, roots: Mapping[str, str | Path], **options) -> SampleList:
    """The samples of composite ``name`` (:data:`COMPOSITES`) from ``roots`` (by database);
    ``options`` as for :func:`megc2018`."""
    why = spec(name).missing(set(roots))
    if why:
        raise ValueError(why)
    if name == "megc2018":
        return megc2018(roots["casme2"], roots["samm"], **options)
    if name == "megc2019":
        return megc2019(roots["smic"], roots["casme2"], roots["samm"], **options)
    if name == "three-class":
        return three_class(roots, **options)
    if name == "csv":
        options = _DEFAULTS | options
        common = {k: options[k] for k in ("on_error", "check", "bit_depth")}
        return clip_table.load(roots["csv"], **common)
    k = int(name.rpartition("-")[2])
    return relabel(
        database("casme3", roots["casme3"], **options), casme3.CLASS_SETS[k], casme3.CLASS_NAMES[k]
    )

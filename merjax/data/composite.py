"""The MEGC composite databases: 2018 (5 objective classes) and 2019 (3 emotion classes).

MEGC 2018 keeps objective classes I-V of CASME II and SAMM (VI and VII are dropped): with the
official spreadsheets that is 185 + 68 = 253 samples from 26 + 21 = 47 subjects (docs/data.md).
The paper reports 241; which 12 it dropped is unknown.

MEGC 2019 maps emotions to negative / positive / surprise over SMIC-HS, CASME II and SAMM.
Its published counts are 164 + 145 + 133 = 442 samples and 16 + 24 + 28 = 68 subjects. The
distributed ``SMIC-HS-E_annotation.xlsx`` annotates 157 of SMIC-HS's 164 clips. With CASME II
negative = disgust + repression (MEGC 2019 lists 88; the spreadsheet has 63 + 27 = 90), these
files give 157 + 147 + 133 = 437 samples.
"""

from __future__ import annotations

from pathlib import Path

from merjax.data import casme2, samm, smic
from merjax.data.frames import replace
from merjax.data.sample import OBJECTIVE_CLASSES, SampleList

MEGC2018_CLASSES: tuple[str, ...] = OBJECTIVE_CLASSES[:5]
MEGC2019_CLASSES: tuple[str, ...] = ("negative", "positive", "surprise")

EMOTION_NAMES = ("happiness", "surprise", "anger", "disgust", "sadness")
"""The paper's names for objective classes I-V (its Tables 5-7 and Figures 6-7)."""
COMPOSITES = ("megc2018", "megc2019")


def class_labels(composite: str = "megc2018") -> list[str]:
    """Class names for tables and model folders: MEGC 2018's objective classes I-V (with the
    paper's emotion names), or MEGC 2019's negative / positive / surprise."""
    if composite == "megc2019":
        return list(MEGC2019_CLASSES)
    return [f"{c} ({n})" for c, n in zip(MEGC2018_CLASSES, EMOTION_NAMES, strict=True)]


MEGC2019_EMOTIONS: dict[str, dict[str, int]] = {
    "casme2": {"disgust": 0, "repression": 0, "happiness": 1, "surprise": 2},
    "samm": {
        "anger": 0,
        "contempt": 0,
        "disgust": 0,
        "fear": 0,
        "sadness": 0,
        "happiness": 1,
        "surprise": 2,
    },
}


def _casme2_and_samm(
    casme2_root, samm_root, *, casme2_frames, apex_policy, on_error, check, bit_depth
):
    common = dict(on_error=on_error, check=check, bit_depth=bit_depth)
    c = casme2.load(casme2_root, frames=casme2_frames, apex_policy=apex_policy, **common)
    return c, samm.load(samm_root, **common)


def megc2018(
    casme2_root: str | Path,
    samm_root: str | Path,
    *,
    casme2_frames: str = "auto",
    apex_policy: str = "midpoint",
    on_error: str = "raise",
    check: bool = True,
    bit_depth: int | None = None,
) -> SampleList:
    """CASME II + SAMM, objective classes I-V; ``label`` 0-4, subjects prefixed by database.

    ``casme2_frames`` and ``apex_policy`` go to :func:`merjax.data.casme2.load`; ``on_error``
    ("raise" or "skip"), ``check`` (decode the frames) and ``bit_depth`` to every loader.
    """
    c, s = _casme2_and_samm(
        casme2_root,
        samm_root,
        casme2_frames=casme2_frames,
        apex_policy=apex_policy,
        on_error=on_error,
        check=check,
        bit_depth=bit_depth,
    )
    return (c + s).filter(lambda x: x.label < len(MEGC2018_CLASSES))


def megc2019(
    smic_root: str | Path,
    casme2_root: str | Path,
    samm_root: str | Path,
    **options,
) -> SampleList:
    """SMIC-HS + CASME II + SAMM with labels 0/1/2 = negative/positive/surprise; ``options``
    as for :func:`megc2018`."""
    options = {
        "casme2_frames": "auto",
        "apex_policy": "midpoint",
        "on_error": "raise",
        "check": True,
        "bit_depth": None,
        **options,
    }
    common = {k: options[k] for k in ("on_error", "check", "bit_depth")}
    out = smic.load(smic_root, **common)
    loaded = _casme2_and_samm(casme2_root, samm_root, **options)
    for name, samples in zip(("casme2", "samm"), loaded, strict=True):
        mapping = MEGC2019_EMOTIONS[name]
        kept = [
            replace(x, label=mapping[x.emotion], class_name=MEGC2019_CLASSES[mapping[x.emotion]])
            for x in samples
            if x.emotion in mapping
        ]
        out = out + SampleList(kept, samples.skipped, samples.rows)
    return out

"""MEGC 2019's three classes, and which emotion words of each database are which: one table,
read by the composites, by spot-then-recognise (the classes of the long videos' truth) and by
the synthetic writers (the words each layout writes).

MEGC 2019 (Yap et al.) maps each database's estimated emotions to negative / positive /
surprise: CASME II's disgust and repression are negative (its fear and sadness clips are left
out, as MEGC 2019 leaves them), SAMM's anger, contempt, disgust, fear and sadness; SMIC-HS is
annotated in the three classes already; CAS(ME)^3's 3-class set makes anger, disgust, fear and
sad negative; CAS(ME)^2 labels its micro-expressions negative, positive, surprise or others.
SAMM Long Videos takes its emotions from SAMM's spreadsheet. Every other word (others, ...) is
in no class: not a recognition sample.

    emotions.megc2019_class("samm", "Contempt")   # "negative"
    emotions.megc2019("casme3")                   # {"disgust": "negative", ...}
"""

from __future__ import annotations

MEGC2019_CLASSES: tuple[str, ...] = ("negative", "positive", "surprise")

WORDS: dict[str, dict[str, tuple[str, ...]]] = {
    "casme2": {
        "negative": ("disgust", "repression"),
        "positive": ("happiness",),
        "surprise": ("surprise",),
    },
    "samm": {
        "negative": ("anger", "contempt", "disgust", "fear", "sadness"),
        "positive": ("happiness",),
        "surprise": ("surprise",),
    },
    "smic": {c: (c,) for c in MEGC2019_CLASSES},
    "casme3": {
        "negative": ("disgust", "anger", "fear", "sad"),
        "positive": ("happy",),
        "surprise": ("surprise",),
    },
    "casme_sq": {c: (c,) for c in MEGC2019_CLASSES},
}
WORDS["samm_lv"] = WORDS["samm"]
"""Per database (by its ``--<name>_root`` flag), the lower-case emotion words of each class."""


def megc2019(database: str) -> dict[str, str]:
    """``{emotion word: MEGC 2019 class}`` of ``database``'s words that have one."""
    if database not in WORDS:
        raise ValueError(
            f"no emotion words for database {database!r}; expected one of {list(WORDS)}"
        )
    return {w: c for c, words in WORDS[database].items() for w in words}


def megc2019_class(database: str, emotion: str | None) -> str | None:
    """The MEGC 2019 class of ``database``'s emotion word (any case), or None (others, unknown)."""
    return megc2019(database).get((emotion or "").lower())

"""The databases merjax reads, by the name of their ``--<name>_root`` flag, and sets of them an
experiment needs (a composite of clips, or long videos to spot).

    databases.NAMES["casme3"]                              # "CAS(ME)^3", for reports
    DatabaseSet("long videos", ("casme3", "samm_lv"), at_least=1).missing({"casme2"})
"""

from __future__ import annotations

import dataclasses

NAMES = {
    "casme2": "CASME II",
    "samm": "SAMM",
    "smic": "SMIC-HS",
    "casme3": "CAS(ME)^3",
    "samm_lv": "SAMM Long Videos",
    "casme_sq": "CAS(ME)^2",
    "csv": "the clips of a CSV",
}
"""The databases merjax reads, by the name of their ``--<name>_root`` flag and in reports."""


@dataclasses.dataclass(frozen=True)
class DatabaseSet:
    """Databases an experiment reads together: all of ``needs``, or with ``at_least``, that many
    of them."""

    title: str
    needs: tuple[str, ...]
    at_least: int | None = None  # None: every database in needs

    def missing(self, given: set[str]) -> str | None:
        """Why ``given`` databases do not make this set (None when they do)."""
        flags = " and ".join(f"--{d}_root" for d in self.needs)
        if self.at_least is None:
            if not set(self.needs) <= given:
                return f"the {self.title} needs {flags}"
            return None
        if len(given & set(self.needs)) < self.at_least:
            return (
                f"the {self.title} needs at least {self.at_least} of "
                f"{', '.join(f'--{d}_root' for d in self.needs)}"
            )
        return None

"""Care units: does a unit give continuous respiratory monitoring?

Why: the co-prescription rules (opioid + benzodiazepine / gabapentinoid) are about
*unmonitored* settings; in an ICU the same combination is routine sedation. Which units
are monitored differs between hospitals, so the list is data (``data/care_units.json``)
that a hospital replaces via ``load_care_units(path)``. Unit names are matched as whole
tokens or token sequences ("4W MICU", "MICU-2", "Surgical ICU"), monitored names first,
so "ICU step-down" or "Oncology ICU" are monitored. An unknown or missing unit is None:
the caller decides (clinical-rules.md: unknown counts as unmonitored, flagged).
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from typing import Any, Callable, Iterable

from .catalogue import DATA_DIR, tokenize

DEFAULT_CARE_UNITS_PATH = DATA_DIR / "care_units.json"


class CareUnits:
    """Classifies unit names as monitored (True), unmonitored (False) or unknown (None)."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.monitored_names = self._phrases(data.get("monitored", []))
        self.unmonitored_names = self._phrases(data.get("unmonitored", []))
        clash = self.monitored_names & self.unmonitored_names
        if clash:
            raise ValueError(f"unit names listed as both monitored and unmonitored: {sorted(clash)}")
        self._longest = max((len(p) for p in self.monitored_names | self.unmonitored_names), default=0)
        self._cached: Callable[[str], bool | None] = lru_cache(maxsize=4096)(self._lookup)

    @staticmethod
    def _phrases(names: Iterable[str]) -> frozenset[tuple[str, ...]]:
        phrases = frozenset(tokenize(name) for name in names)
        if () in phrases:
            raise ValueError("a unit name has no letters or digits")
        return phrases

    def is_monitored(self, unit: str | None) -> bool | None:
        """True/False for a known unit, None for an unknown or missing one."""
        if not isinstance(unit, str):
            return None
        return self._cached(unit)

    def _lookup(self, unit: str) -> bool | None:
        tokens = tokenize(unit)
        found_unmonitored = False
        for i in range(len(tokens)):
            for size in range(1, min(self._longest, len(tokens) - i) + 1):
                phrase = tokens[i:i + size]
                if phrase in self.monitored_names:
                    return True
                if phrase in self.unmonitored_names:
                    found_unmonitored = True
        return False if found_unmonitored else None


def load_care_units(path: str | os.PathLike[str] | None = None) -> CareUnits:
    """Care units from a JSON file shaped like ``data/care_units.json`` (default: packaged)."""
    if path is None:
        return _default()
    with open(path, encoding="utf-8") as handle:
        return CareUnits(json.load(handle))


@lru_cache(maxsize=1)
def _default() -> CareUnits:
    with open(DEFAULT_CARE_UNITS_PATH, encoding="utf-8") as handle:
        return CareUnits(json.load(handle))


def is_monitored_unit(unit: str | None) -> bool | None:
    """Whether ``unit`` has continuous respiratory monitoring, per the packaged data file."""
    return _default().is_monitored(unit)

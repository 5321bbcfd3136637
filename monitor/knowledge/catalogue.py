"""Drug catalogue: which monitored classes an order's drug belongs to.

Why token matching: drug names arrive as free text ("oxyCODONE-acetaminophen 5/325",
"HYDROmorphone PF inj", "MSO4"). Substring matching classifies look-alikes wrongly
("hydroxyzine" is not hydrocodone, "methylnaltrexone" is not naltrexone), and a
misclassification either raises a false alert or hides a real one. So text is
case-folded (Tall-Man lettering is only case), split into letter and digit runs, and
matched against names as whole tokens or token sequences, longest name first.

Why RxNorm *and* name: a code from the order is used when it is a known ingredient
code, but the name is always classified too and the two are united, so a wrong or
product-level code can never hide an opioid that the text names.

All facts (ingredients, codes, names, brands) live in ``data/drugs.json``.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable

DATA_DIR = Path(__file__).with_name("data")
DEFAULT_DRUGS_PATH = DATA_DIR / "drugs.json"

# Letter runs and digit runs: "PEG3350" -> peg, 3350; "5/325" -> 5, 325; "Senokot-S" -> senokot, s.
_TOKEN_RE = re.compile(r"[^\W\d_]+|\d+")


def tokenize(text: str) -> tuple[str, ...]:
    """Case-folded letter and digit runs of ``text``; punctuation and spaces separate tokens."""
    return tuple(_TOKEN_RE.findall(text.casefold()))


class DrugClass(str, Enum):
    """The monitored classes of clinical-rules.md."""

    OPIOID = "opioid"
    BENZODIAZEPINE = "benzodiazepine"
    GABAPENTINOID = "gabapentinoid"
    LAXATIVE = "laxative"
    NMDA_ANTAGONIST = "nmda_antagonist"


@dataclass(frozen=True, slots=True)
class DrugInfo:
    """What the catalogue knows about one ordered drug."""

    ingredients: tuple[str, ...]
    classes: frozenset[DrugClass]
    opioid: str | None
    bowel_regimen: bool
    softener_only: bool
    matched_by: str


@dataclass(frozen=True, slots=True)
class _Ingredient:
    name: str
    classes: frozenset[DrugClass]
    bowel_regimen: bool
    softener: bool
    suppressed_by: frozenset[str]


@dataclass(frozen=True, slots=True)
class _Alias:
    tokens: tuple[str, ...]
    ingredients: frozenset[str]
    not_followed_by: frozenset[str]


class DrugCatalogue:
    """Classifies drug text (and an optional RxNorm code) into monitored classes."""

    _default: "DrugCatalogue | None" = None

    def __init__(self, data: dict[str, Any]) -> None:
        self._ingredients: dict[str, _Ingredient] = {}
        self._by_code: dict[str, str] = {}
        # First token -> aliases starting with it, longest first (longest match wins).
        self._index: dict[str, list[_Alias]] = {}
        never = {tokenize(name) for name in data.get("never_match", [])}
        for name, spec in data["ingredients"].items():
            self._add_ingredient(name, spec)
            for entry in spec.get("names", []):
                self._add_alias(entry, frozenset({name}), never)
        for product in data.get("products", []):
            ingredients = frozenset(product["ingredients"])
            unknown = ingredients - self._ingredients.keys()
            if unknown:
                raise ValueError(f"product names unknown ingredients: {sorted(unknown)}")
            for entry in product["names"]:
                self._add_alias(entry, ingredients, never)
        for aliases in self._index.values():
            aliases.sort(key=lambda alias: len(alias.tokens), reverse=True)
        self.vocabulary: frozenset[str] = frozenset(
            token for aliases in self._index.values() for alias in aliases for token in alias.tokens
        )
        self._cached: Callable[[str, str | None], DrugInfo | None] = lru_cache(maxsize=1 << 16)(self._classify)

    # -- loading ---------------------------------------------------------------------------
    @classmethod
    def default(cls) -> "DrugCatalogue":
        """The packaged catalogue, loaded once per process."""
        if cls._default is None:
            cls._default = cls.load(DEFAULT_DRUGS_PATH)
        return cls._default

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "DrugCatalogue":
        """A catalogue from a JSON file shaped like ``data/drugs.json``."""
        with open(path, encoding="utf-8") as handle:
            return cls(json.load(handle))

    def _add_ingredient(self, name: str, spec: dict[str, Any]) -> None:
        classes = frozenset(DrugClass(value) for value in spec["classes"])
        if not classes:
            raise ValueError(f"{name}: an ingredient needs at least one class")
        self._ingredients[name] = _Ingredient(
            name=name,
            classes=classes,
            bowel_regimen=bool(spec.get("bowel_regimen", False)),
            softener=bool(spec.get("softener", False)),
            suppressed_by=frozenset(spec.get("suppressed_by", [])),
        )
        for code in spec.get("rxnorm", []):
            if self._by_code.setdefault(str(code), name) != name:
                raise ValueError(f"RxCUI {code} given for two ingredients")

    def _add_alias(self, entry: str | dict[str, Any], ingredients: frozenset[str], never: set[tuple[str, ...]]) -> None:
        text, not_followed = (entry, []) if isinstance(entry, str) else (entry["name"], entry.get("not_followed_by", []))
        tokens = tokenize(text)
        if not tokens:
            raise ValueError(f"name {text!r} has no tokens")
        if tokens in never:
            raise ValueError(f"name {text!r} is on the never_match list (ambiguous or a look-alike)")
        alias = _Alias(tokens, ingredients, frozenset(not_followed))
        bucket = self._index.setdefault(tokens[0], [])
        for other in bucket:
            if other.tokens == tokens:
                if other.ingredients != ingredients or other.not_followed_by != alias.not_followed_by:
                    raise ValueError(f"name {text!r} given twice with different meanings")
                return
        bucket.append(alias)

    # -- classification --------------------------------------------------------------------
    def classify(self, drug: str, rxnorm: str | None = None) -> DrugInfo | None:
        """The monitored classes of ``drug`` (free text) and ``rxnorm`` (an RxCUI); None if none.

        Never raises for any string; results are cached by the exact inputs.
        """
        if not isinstance(drug, str):
            drug = ""
        if rxnorm is not None and not isinstance(rxnorm, str):
            rxnorm = None
        return self._cached(drug, rxnorm)

    def ingredient_for_code(self, rxnorm: str | None) -> str | None:
        """The catalogue ingredient an RxNorm ingredient code stands for, if known."""
        if not rxnorm:
            return None
        return self._by_code.get(rxnorm.strip())

    def ingredients_in(self, drug: str) -> frozenset[str]:
        """Catalogue ingredients named in ``drug`` (whole tokens, longest name first)."""
        tokens = tokenize(drug) if isinstance(drug, str) else ()
        found: set[str] = set()
        i, n = 0, len(tokens)
        while i < n:
            for alias in self._index.get(tokens[i], ()):
                end = i + len(alias.tokens)
                if tokens[i:end] != alias.tokens:
                    continue
                if alias.not_followed_by and end < n and tokens[end] in alias.not_followed_by:
                    continue
                found |= alias.ingredients
                i = end
                break
            else:
                i += 1
        if found:
            present = set(tokens)
            found = {name for name in found if not (self._ingredients[name].suppressed_by & present)}
        return frozenset(found)

    def _classify(self, drug: str, rxnorm: str | None) -> DrugInfo | None:
        by_name = self.ingredients_in(drug)
        by_code = self.ingredient_for_code(rxnorm) if isinstance(rxnorm, str) else None
        names = set(by_name)
        if by_code is not None:
            names.add(by_code)
        if not names:
            return None
        matched_by = "rxnorm+name" if by_code and by_name else ("rxnorm" if by_code else "name")
        return self._info(names, matched_by)

    def _info(self, names: Iterable[str], matched_by: str) -> DrugInfo:
        ingredients = tuple(sorted(names))
        specs = [self._ingredients[name] for name in ingredients]
        classes = frozenset(cls for spec in specs for cls in spec.classes)
        opioids = [spec.name for spec in specs if DrugClass.OPIOID in spec.classes]
        bowel_regimen = any(spec.bowel_regimen for spec in specs)
        laxatives = [spec for spec in specs if DrugClass.LAXATIVE in spec.classes]
        softener_only = bool(laxatives) and all(spec.softener for spec in laxatives)
        return DrugInfo(
            ingredients=ingredients,
            classes=classes,
            opioid=opioids[0] if opioids else None,
            bowel_regimen=bowel_regimen,
            softener_only=softener_only,
            matched_by=matched_by,
        )

    @property
    def ingredient_names(self) -> frozenset[str]:
        """Every canonical ingredient in the catalogue."""
        return frozenset(self._ingredients)

    def classes_of(self, ingredient: str) -> frozenset[DrugClass]:
        """The classes of one canonical ingredient (empty if not in the catalogue)."""
        spec = self._ingredients.get(ingredient)
        return spec.classes if spec else frozenset()

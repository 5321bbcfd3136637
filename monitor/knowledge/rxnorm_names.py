"""Parse RxNorm clinical-drug names into ingredients, strengths and a dose form.

RxNorm names its clinical drugs (SCD), branded drugs (SBD) and their components in a
fixed grammar::

    [duration | quantity] ingredient strength UNIT [/ ingredient strength UNIT ...] [Dose Form] [[Brand]]

for example ``oxycodone hydrochloride 10 MG Oral Tablet``,
``72 HR fentanyl 0.025 MG/HR Transdermal System``,
``1 ML morphine sulfate 4 MG/ML Prefilled Syringe``,
``acetaminophen 325 MG / oxycodone hydrochloride 5 MG Oral Tablet [Percocet]``.

:func:`parse_clinical_drug_name` returns every component so the caller can pick the one
it needs (the FHIR adapter picks the opioid of a combination product). Strength units
are normalised (``MG`` → ``mg``, ``MCG`` → ``mcg``, ``MG/HR`` → ``mg/h``, ``MG/ML`` →
``mg/mL``, ``UNT`` → ``unit``, ``MEQ`` → ``mEq``) but never converted: turning a patch's
``mg/h`` into ``mcg/h`` is the caller's decision. Unit matching is case-insensitive, so
simple free text in the same shape ("oxycodone 5 mg tablet") parses too. Packs
(``{...} Pack``) and names without a strength return ``None``. Never raises.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

__all__ = ["ClinicalDrugName", "Component", "normalize_strength_unit", "parse_clinical_drug_name"]

#: RxNorm unit atoms (upper case) → the project's spelling.
_UNIT_ATOMS: dict[str, str] = {
    "MG": "mg",
    "MCG": "mcg",
    "UG": "mcg",
    "µG": "mcg",
    "G": "g",
    "GM": "g",
    "NG": "ng",
    "KG": "kg",
    "ML": "mL",
    "L": "L",
    "UNT": "unit",
    "UNIT": "unit",
    "UNITS": "unit",
    "MEQ": "mEq",
    "MMOL": "mmol",
    "HR": "h",
    "H": "h",
    "DAY": "d",
    "ACTUAT": "actuat",
    "CM2": "cm2",
    "SQCM": "cm2",
    "%": "%",
}
#: Atoms that only make sense after a slash (a strength of "5 HR" is not a strength).
_DENOMINATOR_ONLY = frozenset({"HR", "H", "DAY"})
#: Leading "72 HR" / "7 DAY": how long one unit (a patch, an extended-release tablet) lasts.
_DURATION_ATOMS = frozenset({"HR", "DAY", "WK", "MIN"})
#: Leading "1 ML" / "10 ACTUAT": the quantity factor of a prefilled device.
_QUANTITY_ATOMS = frozenset({"ML", "L", "G", "GM", "ACTUAT", "MG"})

_NUMBER_RE = re.compile(r"^(?:\d+(?:\.\d+)?|\.\d+|\d{1,3}(?:,\d{3})+(?:\.\d+)?)$")
_BRAND_RE = re.compile(r"\s*\[([^\[\]]*)\]\s*$")
_MAX_NAME_LENGTH = 512


@dataclass(frozen=True, slots=True)
class Component:
    """One active ingredient and its strength (``unit`` normalised, e.g. ``mg/mL``)."""

    ingredient: str
    strength: float
    unit: str


@dataclass(frozen=True, slots=True)
class ClinicalDrugName:
    """A parsed RxNorm clinical-drug name.

    ``duration`` is the leading release duration (``"72 HR"``), ``quantity`` the leading
    quantity factor of a prefilled device (``"1 ML"``), ``brand`` the bracketed brand of a
    branded drug (``"Percocet"``).
    """

    components: tuple[Component, ...]
    dose_form: str | None
    duration: str | None = None
    quantity: str | None = None
    brand: str | None = None


def normalize_strength_unit(unit: str) -> str | None:
    """``MG/HR`` → ``mg/h``; ``None`` if any part is not a known RxNorm unit atom."""
    if not isinstance(unit, str) or not unit:
        return None
    atoms = unit.strip().upper().split("/")
    if not atoms or atoms[0] in _DENOMINATOR_ONLY:
        return None
    out = []
    for atom in atoms:
        norm = _UNIT_ATOMS.get(atom)
        if norm is None:
            return None
        out.append(norm)
    return "/".join(out)


def parse_clinical_drug_name(name: str) -> ClinicalDrugName | None:
    """Parse ``name``; ``None`` when it is not in RxNorm's clinical-drug shape."""
    try:
        return _parse(name)
    except Exception:  # pragma: no cover - defensive: the parser is total by construction
        return None


def _parse(name: object) -> ClinicalDrugName | None:
    if not isinstance(name, str) or not name.strip() or len(name) > _MAX_NAME_LENGTH:
        return None
    text = " ".join(name.split())
    if text.startswith("{") or text.endswith(" Pack"):
        return None  # a pack of several drugs: no single strength
    brand = None
    match = _BRAND_RE.search(text)
    if match:
        brand = match.group(1).strip() or None
        text = text[: match.start()].strip()

    parts = [part.strip() for part in text.split(" / ")]
    if any(not part for part in parts):
        return None

    # Leading duration ("72 HR") or quantity factor ("1 ML") belongs to the whole name;
    # a leading "Abuse-Deterrent" qualifier is not part of the ingredient.
    duration = quantity = None
    first = parts[0].split(" ")
    if len(first) > 3 and first[0].lower() == "abuse-deterrent":
        first = first[1:]
    if len(first) > 3 and _is_number(first[0]) and first[1].upper() in _DURATION_ATOMS:
        duration = f"{first[0]} {first[1].upper()}"
        first = first[2:]
    if len(first) > 3 and _is_number(first[0]) and first[1].upper() in _QUANTITY_ATOMS:
        if _find_strength(first[2:], last=len(parts) == 1) is not None:
            quantity = f"{first[0]} {first[1].upper()}"
            first = first[2:]
    tokens_per_part = [first] + [part.split(" ") for part in parts[1:]]

    components: list[Component] = []
    dose_form: str | None = None
    for index, tokens in enumerate(tokens_per_part):
        last = index == len(tokens_per_part) - 1
        found = _find_strength(tokens, last=last)
        if found is None:
            return None
        position, value, unit = found
        ingredient = " ".join(tokens[:position]).strip()
        if not ingredient:
            return None
        components.append(Component(ingredient=ingredient, strength=value, unit=unit))
        if last:
            rest = " ".join(tokens[position + 2 :]).strip()
            dose_form = rest or None
    return ClinicalDrugName(
        components=tuple(components), dose_form=dose_form, duration=duration, quantity=quantity, brand=brand
    )


def _find_strength(tokens: list[str], *, last: bool) -> tuple[int, float, str] | None:
    """Where "<number> <UNIT>" sits in a component's tokens.

    A middle component must end with its strength; the last one may be followed by the
    dose form, so its strength is the last number–unit pair (ingredient names may hold
    numbers themselves: "polyethylene glycol 3350 17000 MG").
    """
    candidates = range(len(tokens) - 2, 0, -1) if last else [len(tokens) - 2]
    for position in candidates:
        if position < 1:
            continue
        if not _is_number(tokens[position]):
            continue
        unit = normalize_strength_unit(tokens[position + 1])
        if unit is None:
            continue
        value = float(tokens[position].replace(",", ""))
        if not math.isfinite(value) or value <= 0:
            return None
        return position, value, unit
    return None


def _is_number(token: str) -> bool:
    return bool(_NUMBER_RE.match(token))

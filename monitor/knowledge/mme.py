"""Morphine milligram equivalents: an order's daily dose, and a patient's total.

Why it is built this way:
- Dose arithmetic (``daily_dose``) knows units, not drugs: it turns an order into a mass
  per day (or a transdermal rate) and says *why* when it cannot. It never raises: a
  malformed order must make the total "incomplete", not crash the monitor.
- Factors (``FactorSet``) are data, in ``data/mme_factors.json``, with their sources.
  A missing factor is ``None`` (unknown MME), never 0: buprenorphine is exposure too.
- ``patient_mme`` applies the counting rules of clinical-rules.md: PRN orders at their
  maximum, alternative PRN tiers of one drug and route counted once (the highest),
  opioid-use-disorder treatment left out, and any counted unknown makes the total
  incomplete so that rules comparing MME only ever compare complete totals.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterable

from .catalogue import DATA_DIR, tokenize
from .routes import normalize_route

DEFAULT_FACTORS_PATH = DATA_DIR / "mme_factors.json"

# -- units -------------------------------------------------------------------------------

_MASS_MG: dict[str, float] = {  # mg per unit
    "mg": 1.0, "milligram": 1.0, "milligrams": 1.0, "milligramme": 1.0, "milligrammes": 1.0,
    "mcg": 1e-3, "ug": 1e-3, "microgram": 1e-3, "micrograms": 1e-3, "microgramme": 1e-3, "microgrammes": 1e-3,
    "g": 1e3, "gm": 1e3, "gram": 1e3, "grams": 1e3, "gramme": 1e3, "grammes": 1e3,
}
_COUNT: dict[str, str] = {
    **dict.fromkeys(("tablet", "tablets", "tab", "tabs", "tbl"), "tablet"),
    **dict.fromkeys(("capsule", "capsules", "cap", "caps"), "capsule"),
    **dict.fromkeys(("patch", "patches"), "patch"),
    **dict.fromkeys(("ml", "milliliter", "milliliters", "millilitre", "millilitres"), "ml"),
    **dict.fromkeys(("film", "films"), "film"),
    **dict.fromkeys(("lozenge", "lozenges", "troche", "troches"), "lozenge"),
    **dict.fromkeys(("suppository", "suppositories", "supp", "supps"), "suppository"),
    **dict.fromkeys(("spray", "sprays"), "spray"),
    **dict.fromkeys(("each", "ea", "unit dose"), "each"),
}
_PER_HOUR = frozenset({"h", "hr", "hrs", "hour", "hours"})
_PER_DAY = frozenset({"d", "day", "days", "24h", "24 h", "24hr", "24 hr", "24 hours"})


@dataclass(frozen=True, slots=True)
class _Unit:
    """A parsed unit: a mass or a countable, optionally per time or per quantity."""

    mass_mg: float | None = None     # mg per mass unit (None: countable)
    count: str | None = None         # countable dose form
    per_time: str | None = None      # "h" or "day"
    per_qty: float = 1.0             # "mg/5 mL": 5
    per_count: str | None = None     # "mg/5 mL": "ml"


_DOTS = re.compile(r"(?<!\d)\.|\.(?!\d)")


def _parse_unit(text: Any) -> _Unit | None:
    return _parse_unit_text(text) if isinstance(text, str) else None


@lru_cache(maxsize=1024)
def _parse_unit_text(text: str) -> _Unit | None:
    cleaned = _DOTS.sub("", text.casefold().replace("\u03bc", "u").replace("\u00b5", "u"))
    cleaned = re.sub(r"\s+", " ", cleaned).strip()
    parts = re.split(r"\s*(?:/|\bper\b)\s*", cleaned, maxsplit=1)
    head = parts[0].strip()
    if head in _MASS_MG:
        unit = _Unit(mass_mg=_MASS_MG[head])
    elif head in _COUNT:
        unit = _Unit(count=_COUNT[head])
    else:
        return None
    if len(parts) == 1:
        return unit
    tail = parts[1].strip()
    if tail in _PER_HOUR:
        return _Unit(unit.mass_mg, unit.count, per_time="h")
    if tail in _PER_DAY:
        return _Unit(unit.mass_mg, unit.count, per_time="day")
    match = re.fullmatch(r"(\d+(?:\.\d+)?)?\s*([a-z ]*)", tail)
    if not match:
        return None
    qty = float(match.group(1)) if match.group(1) else 1.0
    word = match.group(2).strip()
    if not (qty > 0 and math.isfinite(qty)):
        return None
    if word in _PER_HOUR and qty == 24:
        return _Unit(unit.mass_mg, unit.count, per_time="day")
    if word == "" or word in _COUNT:
        return _Unit(unit.mass_mg, unit.count, per_qty=qty, per_count=_COUNT.get(word))
    return None  # mg/kg, mg/m2, units/mL...: needs patient data or is not a mass


def _positive(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) and value > 0 else None


# -- daily dose ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DailyDose:
    """An order's daily amount: mg or mcg per day, or a transdermal rate in mcg/h."""

    amount: float | None
    unit: str | None
    note: str


def _unknown(note: str) -> DailyDose:
    return DailyDose(None, None, note)


def daily_dose(
    *,
    dose: float | None,
    dose_max: float | None,
    dose_unit: str | None,
    strength: float | None,
    strength_unit: str | None,
    frequency_per_day: float | None,
    max_frequency_per_day: float | None,
    prn: bool,
    one_time: bool,
    route: str | None,
) -> DailyDose:
    """The daily dose of one order, or why it cannot be computed (never raises)."""
    try:
        return _daily_dose(dose, dose_max, dose_unit, strength, strength_unit, frequency_per_day,
                           max_frequency_per_day, bool(prn), bool(one_time), route)
    except (ArithmeticError, TypeError, ValueError):  # pragma: no cover - defensive
        return _unknown("dose could not be computed from the order's fields")


def _daily_dose(dose: Any, dose_max: Any, dose_unit: Any, strength: Any, strength_unit: Any, frequency: Any,
                max_frequency: Any, prn: bool, one_time: bool, route: Any) -> DailyDose:
    base, top = _positive(dose), _positive(dose_max)
    if base is None:
        return _unknown("no usable dose (missing, zero, negative or not finite)")
    per_admin = max(base, top) if (prn or one_time) and top is not None else base
    unit = _parse_unit(dose_unit)
    if unit is None:
        return _unknown("dose unit is not a mass, rate or countable unit (e.g. units, mEq, puff, mg/kg): cannot convert")
    route_n = normalize_route(route) if isinstance(route, str) else None

    # Resolve a countable (tablets, mL, patches...) into mass with the strength.
    per_time = unit.per_time
    if unit.mass_mg is not None:
        if unit.per_count is not None:
            return _unknown("dose unit is a concentration, not a dose")
        mass_mg, amount = unit.mass_mg, per_admin
    else:
        s_value, s_unit = _positive(strength), _parse_unit(strength_unit)
        if s_value is None or s_unit is None or s_unit.mass_mg is None:
            return _unknown(f"a dose in {unit.count} needs a strength in a mass unit (per {unit.count})")
        if s_unit.per_time is not None:
            # A patch labelled by its delivery rate (25 mcg/h): the dose is a rate.
            if unit.count not in ("patch", "each") or per_time is not None:
                return _unknown(f"a strength per hour only applies to patches, not to {unit.count}")
            rate = per_admin * s_value * _to_mcg(s_unit.mass_mg) / (24 if s_unit.per_time == "day" else 1)
            return _finite(DailyDose(rate, "mcg/h", f"{_fmt(per_admin)} patch(es) x {_fmt(rate / per_admin)} mcg/h: "
                                     "transdermal rate (not multiplied by 24)"))
        if s_unit.per_count not in (None, "each", unit.count):
            return _unknown(f"strength is per {s_unit.per_count}, dose is in {unit.count}")
        mass_mg = s_unit.mass_mg
        amount = per_admin * s_value / s_unit.per_qty

    # Report in mcg when the order is in mcg (fentanyl), otherwise in mg.
    out_unit = "mcg" if mass_mg == 1e-3 else "mg"
    amount_out = amount * _to_mcg(mass_mg) / (1 if out_unit == "mcg" else 1000)

    if per_time is not None:
        if route_n == "transdermal":
            rate = amount * _to_mcg(mass_mg) / (24 if per_time == "day" else 1)
            return _finite(DailyDose(rate, "mcg/h", "transdermal rate (not multiplied by 24)"))
        per_day = amount_out * (24 if per_time == "h" else 1)
        note = "continuous rate x 24 h" if per_time == "h" else "dose per day"
        if one_time:
            note += " (one-time order with a rate unit: counted as a full day)"
        return _finite(DailyDose(per_day, out_unit, note))

    if route_n == "transdermal":
        return _unknown("a transdermal dose needs a delivery rate (mcg/h), not a mass")
    if one_time:
        return _finite(DailyDose(amount_out, out_unit, "one-time order: single dose"))
    if prn:
        times = _positive(max_frequency) or _positive(frequency)
        if times is None:
            return _unknown("PRN order without a (maximum) frequency")
        return _finite(DailyDose(amount_out * times, out_unit,
                                 f"PRN at its maximum: {_fmt(amount_out)} {out_unit} x {_fmt(times)}/day"))
    times = _positive(frequency)
    if times is None:
        return _unknown("scheduled order without a frequency")
    return _finite(DailyDose(amount_out * times, out_unit,
                             f"{_fmt(amount_out)} {out_unit} x {_fmt(times)}/day"))


def _to_mcg(mass_mg: float) -> float:
    """mcg per mass unit, exact for mcg, mg and g (avoids 0.001 * 1000 rounding)."""
    return {1e-3: 1.0, 1.0: 1000.0, 1e3: 1e6}[mass_mg]


def _finite(result: DailyDose) -> DailyDose:
    if result.amount is None or (math.isfinite(result.amount) and result.amount > 0):
        return result
    return _unknown("dose over- or underflows: not a plausible daily amount")


def _fmt(value: float) -> str:
    return f"{value:g}"


# -- factors ---------------------------------------------------------------------------

with open(DEFAULT_FACTORS_PATH, encoding="utf-8") as _handle:
    _FACTOR_DATA: dict[str, Any] = json.load(_handle)

FACTOR_SET_NAMES: tuple[str, ...] = tuple(_FACTOR_DATA["sets"])
DEFAULT_FACTOR_SET: str = _FACTOR_DATA["default"]
_PER_MG = {"mg": 1.0, "mcg": 1e-3}


@dataclass(frozen=True, slots=True)
class _Entry:
    per: str                                   # "mg", "mcg" or "mcg/h"
    factor: float | None
    tiers: tuple[tuple[float | None, float], ...] = ()


class FactorSet:
    """A named set of MME conversion factors (see ``data/mme_factors.json``)."""

    __slots__ = ("name", "title", "sources", "_entries", "_route_missing_oral")

    def __init__(self, name: str, data: dict[str, Any]) -> None:
        spec = data["sets"][name]
        self.name = name
        self.title: str = spec.get("title", name)
        self._entries: dict[tuple[str, str], _Entry] = {}
        sources = [spec["source"]]
        for table_name in spec.get("include", []):
            table = data["shared_tables"][table_name]
            sources.append(table["source"])
            self._add(table["entries"])
        self._add(spec["entries"])  # the set's own entries win over shared tables
        self.sources: tuple[str, ...] = tuple(sources)
        self._route_missing_oral = frozenset(data.get("route_missing_is_oral", {}).get("ingredients", []))

    def _add(self, entries: Iterable[dict[str, Any]]) -> None:
        for item in entries:
            tiers = tuple((tier["up_to_mg_per_day"], float(tier["factor"])) for tier in item.get("tiers", []))
            entry = _Entry(item["per"], float(item["factor"]) if "factor" in item else None, tiers)
            for route in item["routes"]:
                self._entries[(item["ingredient"], route)] = entry

    @classmethod
    def named(cls, name: str) -> "FactorSet":
        """The packaged set called ``name`` (cached); ValueError names the available sets."""
        if name not in FACTOR_SET_NAMES:
            raise ValueError(f"unknown MME factor set {name!r}; available: {', '.join(FACTOR_SET_NAMES)}")
        return _named(name)

    def factor(self, ingredient: str, route: str | None, unit: str | None,
               methadone_mg_per_day: float = 0.0) -> float | None:
        """Oral morphine mg per one ``unit`` of daily dose; None when unknown.

        ``unit`` is the daily-dose unit ("mg", "mcg" per day, or "mcg/h" for a
        transdermal rate); the factor is scaled to it (fentanyl IV per mg = 300).
        A missing route counts as oral only for drugs that have no parenteral form.
        """
        parsed = _parse_unit(unit)
        if parsed is None or parsed.mass_mg is None or parsed.per_count is not None:
            return None
        name = ingredient.strip().casefold() if isinstance(ingredient, str) else ""
        route_n = normalize_route(route) if isinstance(route, str) else None
        if parsed.per_time == "h":
            if route_n not in (None, "transdermal"):
                return None
            entry = self._entries.get((name, "transdermal"))
            if entry is None or entry.factor is None or entry.per != "mcg/h":
                return None
            return entry.factor * parsed.mass_mg * 1e3  # per mcg/h; mg/h is 1000 mcg/h
        if parsed.per_time is not None:
            return None
        if route_n is None:
            if name not in self._route_missing_oral:
                return None
            route_n = "oral"
        entry = self._entries.get((name, route_n))
        if entry is None or entry.per not in _PER_MG:
            return None
        base = entry.factor
        if entry.tiers:
            base = _tier(entry.tiers, methadone_mg_per_day)
        if base is None:
            return None
        return base * parsed.mass_mg / _PER_MG[entry.per]

    def resolves_oral(self, ingredient: str, route: str | None) -> bool:
        """Whether an order of ``ingredient`` by ``route`` is converted with the oral table."""
        route_n = normalize_route(route) if isinstance(route, str) else None
        return route_n == "oral" or (route_n is None and ingredient in self._route_missing_oral)

    def __repr__(self) -> str:
        return f"FactorSet({self.name!r})"


def _tier(tiers: tuple[tuple[float | None, float], ...], mg_per_day: float) -> float | None:
    for limit, factor in tiers:
        if limit is None or mg_per_day <= limit:
            return factor
    return None


@lru_cache(maxsize=None)
def _named(name: str) -> FactorSet:
    return FactorSet(name, _FACTOR_DATA)


# -- patient totals --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OpioidExposure:
    """One active opioid order as the MME rules see it."""

    order_id: str
    ingredient: str
    route: str | None
    daily: DailyDose
    prn: bool
    for_oud: bool


@dataclass(frozen=True, slots=True)
class OrderMME:
    """One order's contribution to the patient's total."""

    order_id: str
    ingredient: str
    route: str | None
    daily_dose: float | None
    daily_dose_unit: str | None
    factor: float | None
    mme: float | None
    counted: bool


@dataclass(frozen=True, slots=True)
class PatientMME:
    """A patient's total daily MME; ``complete`` is False if a counted order is unknown."""

    total: float
    complete: bool
    orders: tuple[OrderMME, ...]


_NO_OPIOID = PatientMME(0.0, True, ())


#: What an order's MME depends on: (ingredient, route, daily amount, daily unit, prn,
#: for_oud), as in :class:`OpioidExposure`. The order id is only carried into results.
Dose = tuple[Any, Any, Any, Any, Any, Any]
#: One order's computed part of the result: (normalized route, factor, mme, counted).
_OrderPart = tuple[str | None, float | None, float | None, bool]


def patient_mme(exposures: Iterable[OpioidExposure], factors: FactorSet) -> PatientMME:
    """Total daily MME of a patient's active opioid orders under ``factors``."""
    items = tuple(exposures)
    if not items:
        return _NO_OPIOID
    doses = tuple(_dose(e) for e in items)
    memoisable = all(map(_memoisable, doses))
    total, complete, parts = _memoised_totals(doses, factors) if memoisable else _totals(doses, factors)
    return PatientMME(total, complete, tuple(
        OrderMME(exposure.order_id, exposure.ingredient, route, exposure.daily.amount, exposure.daily.unit,
                 factor, value, counted)
        for exposure, (route, factor, value, counted) in zip(items, parts)))


@dataclass(frozen=True, slots=True)
class MmeTotal:
    """A patient's total without the per-order breakdown: what the detectors compare."""

    total: float
    complete: bool
    exposed: bool  # any order counted (opioid-use-disorder treatment alone is not exposure)


_NO_OPIOID_TOTAL = MmeTotal(0.0, True, False)


def _dose(exposure: OpioidExposure) -> Dose:
    return (exposure.ingredient, exposure.route, exposure.daily.amount, exposure.daily.unit, exposure.prn,
            exposure.for_oud)


def mme_total(doses: tuple[Dose, ...], factors: FactorSet) -> MmeTotal:
    """:func:`patient_mme`'s total, completeness and exposure for these doses (one
    :data:`Dose` per active opioid order, in order).

    The engine asks for it several times per event (before and after an order, at every
    point of the OIH window's timeline), for many patients on the same regimens, so it is
    memoised on everything the arithmetic reads: the factor set and the doses. Order ids
    are not read (they are only copied into :func:`patient_mme`'s breakdown).
    """
    if not doses:
        return _NO_OPIOID_TOTAL
    if all(map(_memoisable, doses)):
        return _memoised_total(doses, factors)
    return _total(doses, factors)


def _memoisable(dose: Dose) -> bool:
    """Whether equal keys are bound to give identical results: exact types only, so 60 and
    60.0 (equal, same hash, but written differently) or -0.0 and 0.0 never share an entry."""
    ingredient, route, amount, unit, prn, for_oud = dose
    return (type(ingredient) is str and (route is None or type(route) is str)
            and (amount is None or (type(amount) is float and amount > 0))
            and (unit is None or type(unit) is str) and type(prn) is bool and type(for_oud) is bool)


@lru_cache(maxsize=8192)
def _memoised_total(doses: tuple[Dose, ...], factors: FactorSet) -> MmeTotal:
    return _total(doses, factors)


@lru_cache(maxsize=4096)
def _memoised_totals(doses: tuple[Dose, ...], factors: FactorSet) -> tuple[float, bool, tuple[_OrderPart, ...]]:
    """:func:`_totals` for :func:`patient_mme` (every alert record asks it for the MME of each
    order in its evidence); the parts are immutable tuples, safe to share."""
    return _totals(doses, factors)


def _total(doses: tuple[Dose, ...], factors: FactorSet) -> MmeTotal:
    total, complete, parts = _totals(doses, factors)
    return MmeTotal(total, complete, any(counted for *_, counted in parts))


def _totals(doses: tuple[Dose, ...], factors: FactorSet) -> tuple[float, bool, tuple[_OrderPart, ...]]:
    """The counting rules of :func:`patient_mme` (total, complete, per-order parts)."""
    routes = [normalize_route(route) if isinstance(route, str) else None for _, route, *_ in doses]
    names = [ingredient.strip().casefold() if isinstance(ingredient, str) else "" for ingredient, *_ in doses]

    def mme_with(i: int, methadone_mg: float) -> tuple[float | None, float | None]:
        amount, unit = doses[i][2], doses[i][3]
        if amount is None or unit is None:
            return None, None
        factor = factors.factor(names[i], routes[i], unit, methadone_mg)
        return factor, (amount * factor if factor is not None else None)

    counted = [not for_oud for *_, for_oud in doses]
    # PRN tiers: per (ingredient, route) count the highest known PRN, plus any unknown one
    # (it might be the highest), so the total is a lower bound flagged incomplete.
    best: dict[tuple[str, str | None], tuple[float, int]] = {}
    for i, (_, _, _, _, prn, _) in enumerate(doses):
        if not prn or not counted[i]:
            continue
        _, value = mme_with(i, 0.0)  # the methadone tier is patient-wide: it cannot change the ranking
        if value is None:
            continue
        key = (names[i], routes[i])
        counted[i] = False
        if key not in best or value > best[key][0]:
            best[key] = (value, i)
    for _, i in best.values():
        counted[i] = True

    methadone_mg = 0.0
    for i, (_, _, amount, unit, _, _) in enumerate(doses):
        if (counted[i] and names[i] == "methadone" and amount is not None
                and unit in _PER_MG and factors.resolves_oral(names[i], routes[i])):
            methadone_mg += amount * _PER_MG[unit]

    total, complete, parts = 0.0, True, []
    for i in range(len(doses)):
        factor, value = mme_with(i, methadone_mg)
        if counted[i]:
            if value is None:
                complete = False
            else:
                total += value
        parts.append((routes[i], factor, value, counted[i]))
    return total, complete, tuple(parts)


# -- indication ------------------------------------------------------------------------

_OUD_PHRASES: frozenset[tuple[str, ...]] = frozenset(tuple(p.split()) for p in (
    "opioid use disorder", "opioid use disorders", "opiate use disorder", "oud", "moud", "mat", "maot",
    "opioid dependence", "opiate dependence", "opioid dependency", "opiate dependency",
    "opioid addiction", "opiate addiction", "narcotic addiction", "heroin addiction", "heroin dependence",
    "medication assisted treatment", "medication assisted therapy", "medications for opioid use disorder",
    "opioid agonist therapy", "opioid agonist treatment", "opioid substitution", "opioid replacement",
    "opioid maintenance", "methadone maintenance", "buprenorphine maintenance", "f 11",
))
_PAIN_WORDS = frozenset({"pain", "analgesia", "analgesic", "painful"})
_MAX_OUD_PHRASE = max(len(p) for p in _OUD_PHRASES)


def is_oud_indication(indication: str | None) -> bool:
    """Whether an order's indication is opioid-use-disorder treatment (not pain therapy).

    Recognises the usual phrases, abbreviations (OUD, MOUD, MAT) and ICD-10 F11 codes.
    An indication that also names pain ("OUD and chronic pain") is pain therapy too, so
    it stays in the MME rules (returns False).
    """
    return _is_oud(indication) if isinstance(indication, str) else False


@lru_cache(maxsize=1024)
def _is_oud(indication: str) -> bool:
    tokens = tokenize(indication)
    if not tokens or _PAIN_WORDS.intersection(tokens):
        return False
    for i in range(len(tokens)):
        for size in range(1, min(_MAX_OUD_PHRASE, len(tokens) - i) + 1):
            if tokens[i:i + size] in _OUD_PHRASES:
                return True
    return False

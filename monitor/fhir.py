"""FHIR R4 adapter: MedicationRequest, Observation, Patient and Encounter → canonical events.

Pure Python, no network. :class:`FhirAdapter` maps one parsed resource (a ``Bundle``
maps to one result per entry, recursively) into :class:`FhirResult` records: a validated
canonical event, a :class:`~monitor.validation.Rejection`, or a reason the resource was
skipped on purpose. It never raises for any input, and no rejection detail or skip reason
carries input values (patient ids, drug names, doses): details name FHIR paths and rules.

The adapter is stateful, like the stream it reads: it remembers per patient the birth
date (from ``Patient``) and the current unit (from ``Encounter``), which orders it has
seen (so the first ``active`` version of an order is ``new`` and later ones ``modify``),
and ``Medication``/``Location`` resources that later resources reference.

Mapping decisions (also in the project README):

==========================  ===============================================================
FHIR                        canonical
==========================  ===============================================================
MedicationRequest           ``prescription``; ``order_id`` = resource ``id`` (kept by FHIR
                            across versions; ``identifier`` is ignored)
event_id                    ``<Type>/<id>/_history/<versionId>``; without a versionId
                            ``<Type>/<id>@<meta.lastUpdated in UTC>``; else ``<Type>/<id>``;
                            ids over 128 characters become ``<Type>/sha256-<digest>``
status active               ``new`` the first time the adapter sees the order (versionId 1 or
                            absent, or only drafts of it seen before), ``modify`` afterwards
                            (or versionId > 1 on first sight: the stream started mid-order);
                            ``new`` again after a discontinue (a resumed on-hold order); a
                            replayed version keeps the action it first got
status on-hold, stopped,    ``discontinue``
completed, cancelled
status entered-in-error     ``entered_in_error``
status draft, unknown       ignored
intent proposal/plan/option ignored (not an order); ``doNotPerform: true`` ignored
category                    ``inpatient`` or none → mapped; outpatient, community or
                            discharge without inpatient → ignored (not inpatient exposure)
occurred_at                 ``new``: ``authoredOn``, else ``meta.lastUpdated``; modify,
                            discontinue, entered_in_error and a resumed ``new`` (after a
                            discontinue): ``meta.lastUpdated`` (when the change was
                            recorded), else ``authoredOn``. A dateTime without a timezone
                            offset, a date only, or one outside years 1-9999 in UTC is rejected
drug                        medicationCodeableConcept ``text``, else the RxNorm coding's
                            display, else any coding display; medicationReference → the
                            contained/earlier-seen Medication's code, else the reference
                            ``display``; none → rejected (a discontinue of a known order
                            reuses the remembered name)
rxnorm                      code of the coding with system
                            http://www.nlm.nih.gov/research/umls/rxnorm (digits only; other
                            codes are dropped, the name still classifies)
dose                        ``dosageInstruction[0].doseAndRate[0]``: doseQuantity; doseRange
                            low → dose, high → dose_max; rateQuantity / rateRatio / rateRange
                            → a rate (per min or per day converted to per hour). The dose is
                            used when the timing gives a frequency (or one_time), else the
                            rate. ``unit`` text, else ``code``; units normalised (mcg, mL,
                            mg/h, tablet, patch, ...). A rate in mL/h with an mg/mL or
                            mcg/mL strength becomes mg/h or mcg/h
strength                    for doses in tablets, capsules, patches, films, mL, actuations:
                            from a contained/known Medication's ``ingredient.strength``, else
                            parsed from the RxNorm name (RxNorm display, then text, then other
                            displays); combination products take the opioid component
                            (``DrugCatalogue``, with a local opioid-name fallback);
                            transdermal mg/h is converted to mcg/h
frequency_per_day           timing.repeat frequency/period/periodUnit (s, min, h, d, wk, mo,
                            a); with periodMax the slower rate, and the faster one becomes
                            max_frequency_per_day; frequencyMax → max_frequency_per_day;
                            timeOfDay → its length; when → its length (AC/PC/C count 3); else
                            timing.code (BID, TID, QID, QD, QOD, QHS, Q<n>H, Q<a>-<b>H, ...)
one_time                    repeat.count 1, or timing.code ONCE/STAT/NOW
prn                         asNeededBoolean true, asNeededCodeableConcept, or "PRN" in
                            timing.code
maxDosePerPeriod            a daily cap: when lower than dose_max (or dose) × the maximum
                            frequency, max_frequency_per_day = cap / dose_max (and
                            frequency_per_day is lowered to it); with no frequency at all it
                            supplies both. Applied when its unit matches the dose unit (mg,
                            mcg, g convert; tablets via the strength)
route                       dosageInstruction[0].route coding display, else text, else code;
                            absent → inferred from an oral/transdermal/sublingual/buccal/
                            rectal/nasal dose form
end_at                      timing.repeat.boundsPeriod.end, else
                            dispenseRequest.validityPeriod.end, else authoredOn +
                            boundsDuration
indication                  reasonCode texts/displays and reasonReference displays, "; "
Observation                 ``pain_score`` only for LOINC 72514-3 (0–10 NRS); 38208-5 and other
                            codes are ignored (their values are not guaranteed to be 0–10)
value                       valueInteger or valueQuantity.value; an integer 0–10 (7.0 is 7);
                            otherwise rejected; dataAbsentReason without a value → ignored
status                      final/amended/corrected/preliminary mapped; entered-in-error,
                            cancelled, registered, unknown ignored (a retracted score cannot
                            be withdrawn from the canonical stream)
occurred_at                 effectiveDateTime, effectiveInstant, effectivePeriod.start, issued
body_site                   bodySite text, else a coding display, else code
allodynia                   a ``component`` whose code text/display/code contains "allodynia",
                            with valueBoolean
Patient                     ``patient_update`` with ``patient.birth_date`` (a full date; a
                            partial date is rejected); deceased[x] → ``discharged``;
                            occurred_at = meta.lastUpdated (else deceasedDateTime); without
                            it the birth date is kept as context and the resource ignored
Encounter                   ``patient_update``: ``patient.unit`` = display of the last
                            ``active`` location (else the last not planned/reserved), or the
                            name of an earlier-seen Location; ``monitored`` only when explicit
                            (Location type ICU/CCU/PICU/NICU/PACU codes, or the extension
                            :data:`MONITORED_EXTENSION_URL`), otherwise unset so the monitor
                            derives it from the unit name
status finished             ``discharged: true`` for inpatient classes (IMP, ACUTE, NONAC, SS,
                            or no class); an emergency/observation encounter's end is not a
                            discharge (it often ends by admission); AMB/HH/VR/FLD/PRENC
                            encounters are ignored; planned/cancelled/entered-in-error/unknown
                            ignored
dischargeDisposition        hospice (HL7 code ``hosp`` or text "hospice") → comfort_care;
                            ``exp`` (expired) → discharged
occurred_at                 finished: period.end, else meta.lastUpdated; otherwise
                            meta.lastUpdated, else the current location's period.start, else
                            period.start
patient                     ``subject.reference`` Patient/<id> (relative, absolute or
                            ``_history``; ``urn:uuid`` resolved inside its Bundle); other
                            subjects are rejected. Every event carries the remembered
                            ``birth_date``; the remembered unit is not copied onto other events
                            (it changes over time and events may be reordered)
Bundle                      one result per entry, in entry order (history Bundles are
                            processed oldest first); Patient, Medication and Location entries
                            are read as context first; DELETE requests and entries without a
                            resource are ignored; an entry without ``id`` takes it from its
                            ``fullUrl``
Medication, Location        ignored (kept as context); any other resourceType ignored
==========================  ===============================================================
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Iterable

from .events import AnyEvent, OrderAction
from .knowledge.rxnorm_names import Component, parse_clinical_drug_name
from .validation import REASONS, Rejection, validate_event_object

__all__ = [
    "FhirAdapter",
    "FhirResult",
    "MONITORED_EXTENSION_URL",
    "PatientContext",
    "is_fhir_resource",
]

RXNORM_SYSTEM = "http://www.nlm.nih.gov/research/umls/rxnorm"
LOINC_SYSTEM = "http://loinc.org"
PAIN_NRS_LOINC = "72514-3"
MR_CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/medicationrequest-category"
DISCHARGE_DISPOSITION_SYSTEM = "http://terminology.hl7.org/CodeSystem/discharge-disposition"
#: Project-defined extension (valueBoolean) on Encounter or Encounter.location stating
#: continuous respiratory monitoring explicitly.
MONITORED_EXTENSION_URL = "urn:medsafety:fhir:StructureDefinition:continuous-respiratory-monitoring"

_MAX_BUNDLE_DEPTH = 8
_MAX_TEXT = 256

_ID_RE = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_RXNORM_CODE_RE = re.compile(r"^\d{1,12}$")
_DATETIME_RE = re.compile(
    r"^(\d{4})(?:-(\d{2})(?:-(\d{2})"
    r"(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$"
)
_DATE_RE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")
_UUID_URN_RE = re.compile(r"^urn:(?:uuid|oid):([A-Za-z0-9\-.]{1,64})$")

# --- vocabularies -------------------------------------------------------------------------

_MR_ACTIONS = {
    "on-hold": OrderAction.DISCONTINUE,
    "stopped": OrderAction.DISCONTINUE,
    "completed": OrderAction.DISCONTINUE,
    "cancelled": OrderAction.DISCONTINUE,
    "entered-in-error": OrderAction.ENTERED_IN_ERROR,
}
_MR_IGNORED_STATUSES = ("draft", "unknown")
_MR_IGNORED_INTENTS = ("proposal", "plan", "option")
_NON_INPATIENT_CATEGORIES = ("outpatient", "community", "discharge")

_OBS_MAPPED_STATUSES = ("final", "amended", "corrected", "preliminary")
_OBS_IGNORED_STATUSES = ("entered-in-error", "cancelled", "registered", "unknown")

_ENC_STATUSES = ("arrived", "triaged", "in-progress", "onleave", "finished")
_ENC_IGNORED_STATUSES = ("planned", "cancelled", "entered-in-error", "unknown")
_ENC_NOT_A_STAY = ("AMB", "HH", "VR", "FLD", "PRENC")
_ENC_END_IS_NOT_DISCHARGE = ("EMER", "OBSENC")
#: Location.type codes (v3 RoleCode and common local codes) that mean continuous monitoring.
_MONITORED_LOCATION_CODES = frozenset({"ICU", "CCU", "PEDICU", "PEDNICU", "NCCU", "PICU", "NICU", "SICU", "MICU", "PACU"})

#: Occurrences of a period unit per day.
_PER_DAY = {"s": 86400.0, "min": 1440.0, "h": 24.0, "d": 1.0, "wk": 1 / 7, "mo": 1 / 30, "a": 1 / 365}
_PERIOD_UNIT_ALIASES = {
    "s": "s", "sec": "s", "second": "s", "seconds": "s",
    "min": "min", "minute": "min", "minutes": "min",
    "h": "h", "hr": "h", "hour": "h", "hours": "h",
    "d": "d", "day": "d", "days": "d",
    "wk": "wk", "week": "wk", "weeks": "wk",
    "mo": "mo", "month": "mo", "months": "mo",
    "a": "a", "year": "a", "years": "a",
}  # fmt: skip

#: timing.code → administrations per day.
_TIMING_CODES = {
    "QD": 1.0, "DAILY": 1.0, "ONCEDAILY": 1.0, "QDAY": 1.0, "Q24H": 1.0, "AM": 1.0, "QAM": 1.0,
    "PM": 1.0, "QPM": 1.0, "QHS": 1.0, "HS": 1.0, "BED": 1.0, "QNOON": 1.0, "QEVENING": 1.0,
    "BID": 2.0, "TID": 3.0, "QID": 4.0, "QOD": 0.5, "WK": 1 / 7, "QWK": 1 / 7, "MO": 1 / 30,
}  # fmt: skip
_ONE_TIME_CODES = frozenset({"ONCE", "STAT", "NOW", "X1", "ONETIME", "1X"})
_Q_HOURS_RE = re.compile(r"^Q(\d+(?:\.\d+)?)(?:-(\d+(?:\.\d+)?))?(H|HR|HRS|MIN)$")
_WHEN_THREE_A_DAY = frozenset({"C", "AC", "PC"})

_UNIT_ALIASES = {
    "mg": "mg", "milligram": "mg", "milligrams": "mg",
    "mcg": "mcg", "ug": "mcg", "µg": "mcg", "μg": "mcg", "microgram": "mcg", "micrograms": "mcg",
    "g": "g", "gram": "g", "grams": "g", "ng": "ng",
    "ml": "mL", "cc": "mL", "milliliter": "mL", "milliliters": "mL", "millilitre": "mL",
    "l": "L",
    "mg/h": "mg/h", "mg/hr": "mg/h", "mg/hour": "mg/h",
    "mcg/h": "mcg/h", "mcg/hr": "mcg/h", "mcg/hour": "mcg/h", "ug/h": "mcg/h", "ug/hr": "mcg/h",
    "µg/h": "mcg/h", "μg/h": "mcg/h", "microgram/h": "mcg/h", "microgram/hr": "mcg/h",
    "ml/h": "mL/h", "ml/hr": "mL/h", "ml/hour": "mL/h",
    "tab": "tablet", "tabs": "tablet", "tablet": "tablet", "tablets": "tablet", "{tbl}": "tablet",
    "{tab}": "tablet", "{tablet}": "tablet", "{tablets}": "tablet",
    "cap": "capsule", "caps": "capsule", "capsule": "capsule", "capsules": "capsule",
    "{cap}": "capsule", "{capsule}": "capsule",
    "patch": "patch", "patches": "patch", "{patch}": "patch",
    "film": "film", "films": "film", "{film}": "film",
    "actuat": "spray", "actuation": "spray", "actuations": "spray",
    "spray": "spray", "sprays": "spray",
    "suppository": "suppository", "suppositories": "suppository", "{suppository}": "suppository",
    "lozenge": "lozenge", "lozenges": "lozenge", "each": "each", "{each}": "each",
}  # fmt: skip
_MASS_IN_MG = {"mg": 1.0, "mcg": 0.001, "g": 1000.0, "ng": 0.000001}
_COUNT_UNITS = frozenset({"tablet", "capsule", "patch", "film", "suppository", "lozenge", "each"})
_PER_DOSE_UNITS = frozenset({"mL", "spray"})
_PER_HOUR_FROM = {"h": 1.0, "min": 60.0, "s": 3600.0, "d": 1 / 24}

_ROUTE_FROM_DOSE_FORM = (
    ("transdermal", "transdermal"),
    ("sublingual", "sublingual"),
    ("buccal", "buccal"),
    ("rectal", "rectal"),
    ("nasal", "nasal"),
    ("oral", "oral"),
)

#: Fallback when monitor.knowledge.DrugCatalogue is unavailable: opioid ingredient names
#: (clinical-rules.md), matched as whole words.
_FALLBACK_OPIOIDS = frozenset(
    {
        "morphine", "hydromorphone", "oxycodone", "hydrocodone", "oxymorphone", "codeine",
        "fentanyl", "sufentanil", "remifentanil", "alfentanil", "methadone", "buprenorphine",
        "tramadol", "tapentadol", "meperidine", "pethidine", "levorphanol", "butorphanol",
        "nalbuphine", "pentazocine", "dihydrocodeine",
    }
)  # fmt: skip


# --- results ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FhirResult:
    """What one resource became: exactly one of ``event``, ``rejection``, ``ignored``."""

    event: AnyEvent | None = None
    rejection: Rejection | None = None
    ignored: str | None = None

    def __post_init__(self) -> None:
        if sum(part is not None for part in (self.event, self.rejection, self.ignored)) != 1:
            raise ValueError("FhirResult holds exactly one of event, rejection, ignored")


@dataclass(slots=True)
class PatientContext:
    """What the adapter remembers about one patient."""

    birth_date: date | None = None
    unit: str | None = None
    monitored: bool | None = None


@dataclass(slots=True)
class _OrderState:
    action: OrderAction
    drug: str
    rxnorm: str | None


class _Reject(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        assert reason in REASONS
        self.reason = reason
        self.detail = detail


class _Ignore(Exception):
    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


@dataclass(slots=True)
class _Scope:
    """Where a resource sits: its Bundle's fullUrl map and the entry's own fullUrl."""

    full_urls: dict[str, tuple[str, str]] = field(default_factory=dict)
    full_url: str | None = None


def is_fhir_resource(obj: object) -> bool:
    """A FHIR resource is a JSON object with ``resourceType`` (canonical events have ``type``)."""
    return isinstance(obj, dict) and "resourceType" in obj


# --- the adapter --------------------------------------------------------------------------


class FhirAdapter:
    """Maps FHIR R4 resources to canonical events, keeping context between resources."""

    def __init__(self) -> None:
        self._patients: dict[str, PatientContext] = {}
        self._orders: dict[str, _OrderState] = {}
        self._event_actions: dict[str, tuple[OrderAction, bool]] = {}  # event_id -> (action, resumed)
        self._drafts: set[str] = set()
        self._medications: dict[str, dict[str, Any]] = {}
        self._locations: dict[str, dict[str, Any]] = {}

    # public ---------------------------------------------------------------------------

    def map_resource(self, resource: dict) -> list[FhirResult]:
        """Map one resource; a Bundle gives one result per entry (recursively). Never raises."""
        try:
            return self._map(resource, _Scope(), depth=0)
        except Exception:  # pragma: no cover - defensive: _map already wraps each resource
            return [FhirResult(rejection=Rejection("invalid_value", "resource could not be mapped"))]

    def patient_context(self, patient_id: str) -> PatientContext | None:
        """A copy of what is remembered about a patient (birth date, latest unit)."""
        ctx = self._patients.get(patient_id)
        return None if ctx is None else PatientContext(ctx.birth_date, ctx.unit, ctx.monitored)

    # dispatch -------------------------------------------------------------------------

    def _map(self, resource: Any, scope: _Scope, depth: int) -> list[FhirResult]:
        if not isinstance(resource, dict):
            return [FhirResult(rejection=Rejection("not_an_object", "a FHIR resource must be a JSON object"))]
        rtype = resource.get("resourceType")
        if rtype is None:
            return [FhirResult(rejection=Rejection("missing_field", "resourceType: field required"))]
        if not isinstance(rtype, str):
            return [FhirResult(rejection=Rejection("wrong_type", "resourceType: must be a string"))]
        if rtype == "Bundle":
            try:
                return self._map_bundle(resource, scope, depth)
            except _Reject as exc:
                return [FhirResult(rejection=Rejection(exc.reason, exc.detail))]
            except Exception:
                return [FhirResult(rejection=Rejection("invalid_value", "Bundle: could not be mapped"))]
        handler = {
            "MedicationRequest": self._medication_request,
            "Observation": self._observation,
            "Patient": self._patient,
            "Encounter": self._encounter,
            "Medication": self._remember_medication,
            "Location": self._remember_location,
        }.get(rtype)
        if handler is None:
            return [FhirResult(ignored="unsupported resourceType")]
        try:
            return [handler(resource, scope)]
        except _Reject as exc:
            return [FhirResult(rejection=Rejection(exc.reason, exc.detail))]
        except _Ignore as exc:
            return [FhirResult(ignored=exc.why)]
        except Exception:
            return [FhirResult(rejection=Rejection("invalid_value", f"{rtype}: could not be mapped"))]

    def _map_bundle(self, bundle: dict, scope: _Scope, depth: int) -> list[FhirResult]:
        if depth >= _MAX_BUNDLE_DEPTH:
            raise _Reject("invalid_value", "Bundle: nested too deeply")
        entries = _list(bundle.get("entry"), "Bundle.entry")
        inner = _Scope(full_urls=dict(scope.full_urls))
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            full_url, resource = entry.get("fullUrl"), entry.get("resource")
            if isinstance(full_url, str) and isinstance(resource, dict):
                rtype, rid = resource.get("resourceType"), resource.get("id")
                if not isinstance(rid, str):
                    rid = _id_from_full_url(full_url)
                if isinstance(rtype, str) and isinstance(rid, str) and _ID_RE.match(rid):
                    inner.full_urls[full_url] = (rtype, rid)
        for entry in entries:  # context first, so entry order within a Bundle does not matter
            if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
                self._learn_context(entry["resource"], entry.get("fullUrl"), inner)

        results: list[list[FhirResult]] = [[] for _ in entries]
        order = range(len(entries))
        if bundle.get("type") == "history":  # newest first in a history Bundle: replay oldest first
            order = reversed(order)
        for index in order:
            results[index] = self._map_entry(entries[index], index, inner, depth)
        return [result for per_entry in results for result in per_entry]

    def _map_entry(self, entry: Any, index: int, scope: _Scope, depth: int) -> list[FhirResult]:
        where = f"Bundle.entry[{index}]"
        if not isinstance(entry, dict):
            return [FhirResult(rejection=Rejection("wrong_type", f"{where}: must be an object"))]
        request = entry.get("request")
        if isinstance(request, dict) and request.get("method") == "DELETE":
            return [FhirResult(ignored="Bundle entry DELETE request")]
        resource = entry.get("resource")
        if resource is None:
            return [FhirResult(ignored="Bundle entry without a resource")]
        if not isinstance(resource, dict):
            return [FhirResult(rejection=Rejection("wrong_type", f"{where}.resource: must be an object"))]
        full_url = entry.get("fullUrl")
        child = _Scope(full_urls=scope.full_urls, full_url=full_url if isinstance(full_url, str) else None)
        out = []
        for result in self._map(resource, child, depth + 1):
            if result.rejection is not None:
                result = FhirResult(rejection=Rejection(result.rejection.reason, f"{where}: {result.rejection.detail}"))
            out.append(result)
        return out

    def _learn_context(self, resource: dict, full_url: Any, scope: _Scope) -> None:
        """Read Patient birth dates and Medication/Location resources ahead of a Bundle's events."""
        try:
            rtype = resource.get("resourceType")
            sub_scope = _Scope(full_urls=scope.full_urls, full_url=full_url if isinstance(full_url, str) else None)
            if rtype in ("Medication", "Location"):
                self._remember(resource, sub_scope)
            elif rtype == "Patient":
                rid = _resource_id(resource, "Patient", sub_scope)
                birth = _birth_date(resource)
                if birth is not None:
                    self._context(rid).birth_date = birth
        except Exception:
            pass  # the entry's own mapping reports what is wrong with it

    # context --------------------------------------------------------------------------

    def _context(self, patient_id: str) -> PatientContext:
        ctx = self._patients.get(patient_id)
        if ctx is None:
            ctx = self._patients[patient_id] = PatientContext()
        return ctx

    def _patient_ref(self, patient_id: str) -> dict[str, Any]:
        ref: dict[str, Any] = {"id": patient_id}
        ctx = self._patients.get(patient_id)
        if ctx is not None and ctx.birth_date is not None:
            ref["birth_date"] = ctx.birth_date.isoformat()
        return ref

    def _remember(self, resource: dict, scope: _Scope) -> str:
        rtype = resource["resourceType"]
        rid = _resource_id(resource, rtype, scope)
        store = self._medications if rtype == "Medication" else self._locations
        store[f"{rtype}/{rid}"] = resource
        if scope.full_url:
            store[scope.full_url] = resource
        return rtype

    def _remember_medication(self, resource: dict, scope: _Scope) -> FhirResult:
        self._remember(resource, scope)
        raise _Ignore("Medication kept as context for medicationReference")

    def _remember_location(self, resource: dict, scope: _Scope) -> FhirResult:
        self._remember(resource, scope)
        raise _Ignore("Location kept as context for Encounter.location")

    def _lookup(self, store: dict[str, dict[str, Any]], reference: str, rtype: str) -> dict[str, Any] | None:
        if reference in store:
            return store[reference]
        target = _parse_reference(reference, rtype)
        return store.get(f"{rtype}/{target}") if target else None

    # MedicationRequest ----------------------------------------------------------------

    def _medication_request(self, res: dict, scope: _Scope) -> FhirResult:
        rt = "MedicationRequest"
        status = _required_str(res, "status", rt)
        if status in _MR_IGNORED_STATUSES:
            if status == "draft":  # its first active version is the order's start
                try:
                    self._drafts.add(_resource_id(res, rt, scope))
                except _Reject:
                    pass
            raise _Ignore(f"{status} MedicationRequest")
        if status == "active":
            action: OrderAction | None = None  # decided below from what the adapter has seen
        elif status in _MR_ACTIONS:
            action = _MR_ACTIONS[status]
        else:
            raise _Reject("invalid_value", f"{rt}.status: not a MedicationRequest status code")
        intent = _str(res.get("intent"), f"{rt}.intent")
        if intent in _MR_IGNORED_INTENTS:
            raise _Ignore(f"MedicationRequest intent {intent}: not an order")
        if res.get("doNotPerform") is True:
            raise _Ignore("MedicationRequest doNotPerform: not an order to give")
        categories = _codes(_list(res.get("category"), f"{rt}.category"), f"{rt}.category", lower=True)
        if "inpatient" not in categories:
            for code in _NON_INPATIENT_CATEGORIES:
                if code in categories:
                    raise _Ignore(f"{code} MedicationRequest: not inpatient exposure")

        rid = _resource_id(res, rt, scope)
        patient_id = _subject_patient(res, rt, scope)
        meta = _meta(res, rt)
        event_id = _event_id(rt, rid, meta)
        order_id = rid
        known = self._orders.get(order_id)
        resumed = False  # active again after a discontinue: it starts when that was recorded
        if action is None:
            if event_id in self._event_actions:
                action, resumed = self._event_actions[event_id]
            elif known is None:
                first_seen = order_id in self._drafts or _version_number(meta) <= 1
                action = OrderAction.NEW if first_seen else OrderAction.MODIFY
            elif known.action in (OrderAction.DISCONTINUE, OrderAction.ENTERED_IN_ERROR):
                action, resumed = OrderAction.NEW, True
            else:
                action = OrderAction.MODIFY
        active = action in (OrderAction.NEW, OrderAction.MODIFY)

        # occurred_at: when the order was written, or when a change to it was recorded. A
        # resumed order's authoredOn is the original one, from before the hold it resumes.
        if action is OrderAction.NEW and not resumed:
            sources = (("authoredOn", res.get("authoredOn")), ("meta.lastUpdated", meta.get("lastUpdated")))
        else:
            sources = (("meta.lastUpdated", meta.get("lastUpdated")), ("authoredOn", res.get("authoredOn")))
        occurred_at = _first_datetime(sources, rt, "authoredOn: required (or meta.lastUpdated)")

        drug = self._drug(res, scope)
        if drug.name is None:
            if not active and known is not None:
                drug.name, drug.rxnorm = known.drug, drug.rxnorm or known.rxnorm
            else:
                raise _Reject(
                    "missing_field", f"{rt}.medication[x]: a drug name (text, coding display or reference display) is required"
                )

        event: dict[str, Any] = {
            "type": "prescription",
            "event_id": event_id,
            "occurred_at": occurred_at.isoformat(),
            "patient": self._patient_ref(patient_id),
            "order_id": order_id,
            "action": action.value,
            "drug": drug.name,
        }
        if drug.rxnorm:
            event["rxnorm"] = drug.rxnorm
        try:
            event.update(self._dosage(res, drug, active))
        except _Reject:
            if active:
                raise
            # A stop must get through: its dose is irrelevant, drop what cannot be read.
        try:
            end_at = _end_at(res)
        except _Reject:
            if active:
                raise
            end_at = None
        if end_at is not None:
            event["end_at"] = end_at.isoformat()
        try:
            indication = _indication(res)
        except _Reject:
            if active:
                raise
            indication = None
        if indication:
            event["indication"] = indication

        result = _validated(event, rt)
        if result.event is not None:
            self._orders[order_id] = _OrderState(action, drug.name, drug.rxnorm or (known.rxnorm if known else None))
            self._event_actions[event_id] = (action, resumed)
        return result

    def _drug(self, res: dict, scope: _Scope) -> "_Drug":
        rt = "MedicationRequest"
        concept = _dict(res.get("medicationCodeableConcept"), f"{rt}.medicationCodeableConcept")
        reference = _dict(res.get("medicationReference"), f"{rt}.medicationReference")
        medication: dict[str, Any] | None = None
        ref_display = None
        if concept is None and reference is not None:
            ref_display = _str(reference.get("display"), f"{rt}.medicationReference.display")
            target = _str(reference.get("reference"), f"{rt}.medicationReference.reference")
            if target and target.startswith("#"):
                for contained in _list(res.get("contained"), f"{rt}.contained"):
                    if (
                        isinstance(contained, dict)
                        and contained.get("resourceType") == "Medication"
                        and contained.get("id") == target[1:]
                    ):
                        medication = contained
                        break
            elif target:
                medication = self._lookup(self._medications, target, "Medication")
            if medication is not None:
                concept = _dict(medication.get("code"), "Medication.code")
        drug = _Drug()
        names: list[str] = []
        if concept is not None:
            text = _str(concept.get("text"), f"{rt}.medication[x].text")
            rx_display = any_display = None
            for coding in _list(concept.get("coding"), f"{rt}.medication[x].coding"):
                if not isinstance(coding, dict):
                    continue
                display = coding.get("display") if isinstance(coding.get("display"), str) else None
                display = display.strip() if display and display.strip() else None
                if coding.get("system") == RXNORM_SYSTEM:
                    code = coding.get("code")
                    if drug.rxnorm is None and isinstance(code, str) and _RXNORM_CODE_RE.match(code):
                        drug.rxnorm = code
                    if rx_display is None and display:
                        rx_display = display
                elif display and any_display is None:
                    any_display = display
            drug.name = text or rx_display or any_display
            names = [n for n in (rx_display, text, any_display) if n]
        if drug.name is None:
            drug.name = ref_display
        if ref_display:
            names.append(ref_display)
        if medication is not None:
            form = _dict(medication.get("form"), "Medication.form")
            drug.dose_form = _concept_text(form) if form else None
            drug.strength = _ingredient_strength(medication)
        for name in names:
            parsed = parse_clinical_drug_name(name)
            if parsed is None:
                continue
            if drug.dose_form is None:
                drug.dose_form = parsed.dose_form
            if drug.strength is None:
                component = _pick_component(parsed.components)
                if component is not None:
                    drug.strength = (component.strength, component.unit)
            break
        return drug

    def _dosage(self, res: dict, drug: "_Drug", active: bool) -> dict[str, Any]:
        rt = "MedicationRequest"
        base = f"{rt}.dosageInstruction"
        instructions = _list(res.get("dosageInstruction"), base)
        if not instructions:
            if active:
                raise _Reject("missing_field", f"{base}: required for an active order")
            return {}
        base = f"{base}[0]"
        di = _dict(instructions[0], base)
        if di is None:
            raise _Reject("wrong_type", f"{base}: must be an object")
        out: dict[str, Any] = {}

        prn = di.get("asNeededBoolean") is True or isinstance(di.get("asNeededCodeableConcept"), dict)
        route_cc = _dict(di.get("route"), f"{base}.route")
        route = _concept_display_first(route_cc) if route_cc else None
        if route is None and drug.dose_form:
            form = drug.dose_form.lower()
            route = next((r for key, r in _ROUTE_FROM_DOSE_FORM if key in form), None)
        if route:
            out["route"] = route[:64]

        timing = _timing(_dict(di.get("timing"), f"{base}.timing"), f"{base}.timing")
        prn = prn or timing.prn

        # dose or rate
        dar_list = _list(di.get("doseAndRate"), f"{base}.doseAndRate")
        dar = _dict(dar_list[0], f"{base}.doseAndRate[0]") if dar_list else None
        dose = dose_max = None
        dose_unit = None
        rate = rate_max = None
        rate_unit = None
        if dar is not None:
            p = f"{base}.doseAndRate[0]"
            if dar.get("doseQuantity") is not None:
                dose, dose_unit = _quantity(dar.get("doseQuantity"), f"{p}.doseQuantity")
            elif dar.get("doseRange") is not None:
                dose, dose_max, dose_unit = _range(dar.get("doseRange"), f"{p}.doseRange")
            if dar.get("rateQuantity") is not None:
                rate, rate_unit = _quantity(dar.get("rateQuantity"), f"{p}.rateQuantity")
            elif dar.get("rateRatio") is not None:
                rate, rate_unit = _rate_ratio(dar.get("rateRatio"), f"{p}.rateRatio")
            elif dar.get("rateRange") is not None:
                rate, rate_max, rate_unit = _range(dar.get("rateRange"), f"{p}.rateRange")
            if rate is not None:
                factor, rate_unit = _hourly(rate_unit)
                rate = _clean(rate * factor)
                rate_max = _clean(rate_max * factor) if rate_max is not None else None
        use_rate = rate is not None and (dose is None or (timing.frequency is None and not timing.one_time))
        if use_rate:
            dose, dose_max, dose_unit = rate, rate_max, rate_unit
        if dose is None and active:
            raise _Reject("missing_field", f"{base}.doseAndRate[0].dose[x]: a dose or rate is required for an active order")

        # strength: a dose in tablets, patches or mL needs it; a rate in mL/h is converted
        strength = _fit_strength(drug, dose_unit)
        if dose is not None and dose_unit == "mL/h" and drug.strength is not None:
            value, unit = drug.strength
            if unit in ("mg/mL", "mcg/mL"):
                dose = _clean(dose * value)
                dose_max = _clean(dose_max * value) if dose_max is not None else None
                dose_unit = unit.split("/")[0] + "/h"
        continuous = dose_unit in ("mg/h", "mcg/h")
        if use_rate and not continuous and active:
            raise _Reject(
                "invalid_value",
                f"{base}.doseAndRate[0].rate[x]: a rate must be in mg/h or mcg/h "
                "(or mL/h with an mg/mL or mcg/mL strength)",
            )

        frequency, max_frequency = timing.frequency, timing.max_frequency
        if (
            active
            and dose is not None
            and frequency is None
            and not continuous
            and not timing.one_time
            and di.get("maxDosePerPeriod") is None
        ):
            raise _Reject(
                "missing_field",
                f"{base}.timing: a frequency is required (repeat frequency/period, timeOfDay, when or a known code)",
            )
        if dose is not None and not continuous and not timing.one_time and di.get("maxDosePerPeriod") is not None:
            cap = _daily_cap(di.get("maxDosePerPeriod"), f"{base}.maxDosePerPeriod", dose_unit, strength)
            per_administration = dose_max if dose_max is not None else dose
            if cap is not None and per_administration > 0:
                cap_frequency = _clean(cap / per_administration)
                highest = max_frequency if max_frequency is not None else frequency
                if cap_frequency > 0 and (highest is None or cap_frequency < highest):
                    max_frequency = cap_frequency
                    frequency = cap_frequency if frequency is None else min(frequency, cap_frequency)
            if frequency is None and active:
                raise _Reject(
                    "missing_field",
                    f"{base}.timing: a frequency is required (maxDosePerPeriod could not be used)",
                )

        if dose is not None:
            out["dose"] = dose
            out["dose_unit"] = dose_unit
        if dose_max is not None:
            out["dose_max"] = dose_max
        if strength is not None:
            out["strength"], out["strength_unit"] = strength
        if frequency is not None and not continuous:
            out["frequency_per_day"] = frequency
        if max_frequency is not None and not continuous:
            out["max_frequency_per_day"] = max_frequency
        out["prn"] = prn
        out["one_time"] = timing.one_time
        return out

    # Observation ----------------------------------------------------------------------

    def _observation(self, res: dict, scope: _Scope) -> FhirResult:
        rt = "Observation"
        code = _dict(res.get("code"), f"{rt}.code")
        codings = _list(code.get("coding"), f"{rt}.code.coding") if code else []
        if not any(
            isinstance(c, dict) and c.get("system") == LOINC_SYSTEM and c.get("code") == PAIN_NRS_LOINC for c in codings
        ):
            raise _Ignore("Observation not LOINC 72514-3")
        status = _required_str(res, "status", rt)
        if status in _OBS_IGNORED_STATUSES:
            raise _Ignore(f"{status} Observation")
        if status not in _OBS_MAPPED_STATUSES:
            raise _Reject("invalid_value", f"{rt}.status: not an Observation status code")
        rid = _resource_id(res, rt, scope)
        patient_id = _subject_patient(res, rt, scope)
        meta = _meta(res, rt)

        if "valueInteger" in res:
            score = _pain_value(res.get("valueInteger"), f"{rt}.valueInteger")
        elif "valueQuantity" in res:
            quantity = _dict(res.get("valueQuantity"), f"{rt}.valueQuantity")
            score = _pain_value(quantity.get("value") if quantity else None, f"{rt}.valueQuantity.value")
        elif res.get("dataAbsentReason") is not None:
            raise _Ignore("Observation without a value (dataAbsentReason)")
        else:
            raise _Reject("missing_field", f"{rt}.value[x]: valueInteger or valueQuantity required")

        occurred_at = None
        period = _dict(res.get("effectivePeriod"), f"{rt}.effectivePeriod")
        for name, value in (
            ("effectiveDateTime", res.get("effectiveDateTime")),
            ("effectiveInstant", res.get("effectiveInstant")),
            ("effectivePeriod.start", period.get("start") if period else None),
            ("issued", res.get("issued")),
        ):
            if value is not None:
                occurred_at = _datetime(value, f"{rt}.{name}")
                break
        if occurred_at is None:
            raise _Reject("missing_field", f"{rt}.effective[x]: required (or issued)")

        event: dict[str, Any] = {
            "type": "pain_score",
            "event_id": _event_id(rt, rid, meta),
            "occurred_at": occurred_at.isoformat(),
            "patient": self._patient_ref(patient_id),
            "score": score,
        }
        site = _dict(res.get("bodySite"), f"{rt}.bodySite")
        body_site = _concept_text(site) if site else None
        if body_site:
            event["body_site"] = body_site[:128]
        allodynia = _allodynia(res)
        if allodynia is not None:
            event["allodynia"] = allodynia
        return _validated(event, rt)

    # Patient --------------------------------------------------------------------------

    def _patient(self, res: dict, scope: _Scope) -> FhirResult:
        rt = "Patient"
        rid = _resource_id(res, rt, scope)
        birth = _birth_date(res)
        deceased = res.get("deceasedBoolean") is True or res.get("deceasedDateTime") is not None
        if birth is None and not deceased:
            raise _Ignore("Patient without birthDate or deceased[x]")
        if birth is not None:
            self._context(rid).birth_date = birth
        meta = _meta(res, rt)
        occurred_at = None
        if meta.get("lastUpdated") is not None:
            occurred_at = _datetime(meta.get("lastUpdated"), f"{rt}.meta.lastUpdated")
        elif res.get("deceasedDateTime") is not None:
            occurred_at = _datetime(res.get("deceasedDateTime"), f"{rt}.deceasedDateTime")
        if occurred_at is None:
            raise _Ignore("Patient without meta.lastUpdated: birth date kept as context")
        event: dict[str, Any] = {
            "type": "patient_update",
            "event_id": _event_id(rt, rid, meta),
            "occurred_at": occurred_at.isoformat(),
            "patient": self._patient_ref(rid),
        }
        if deceased:
            event["discharged"] = True
        return _validated(event, rt)

    # Encounter ------------------------------------------------------------------------

    def _encounter(self, res: dict, scope: _Scope) -> FhirResult:
        rt = "Encounter"
        status = _required_str(res, "status", rt)
        if status in _ENC_IGNORED_STATUSES:
            raise _Ignore(f"{status} Encounter")
        if status not in _ENC_STATUSES:
            raise _Reject("invalid_value", f"{rt}.status: not an Encounter status code")
        enc_class = _dict(res.get("class"), f"{rt}.class")
        class_code = enc_class.get("code") if enc_class else None
        class_code = class_code.upper() if isinstance(class_code, str) else None
        if class_code in _ENC_NOT_A_STAY:
            raise _Ignore("Encounter class is not a hospital stay")
        rid = _resource_id(res, rt, scope)
        patient_id = _subject_patient(res, rt, scope)
        meta = _meta(res, rt)

        # the current location
        locations = [loc for loc in _list(res.get("location"), f"{rt}.location") if isinstance(loc, dict)]
        current = next((loc for loc in reversed(locations) if loc.get("status") == "active"), None)
        if current is None:
            current = next((loc for loc in reversed(locations) if loc.get("status") not in ("planned", "reserved")), None)
        unit = None
        monitored = _monitored_extension(res.get("extension"))
        location_start = None
        if current is not None:
            ref = _dict(current.get("location"), f"{rt}.location.location")
            known = None
            if ref is not None:
                unit = _str(ref.get("display"), f"{rt}.location.location.display")
                target = ref.get("reference")
                if isinstance(target, str):
                    known = self._lookup(self._locations, target, "Location")
            if known is not None:
                if unit is None:
                    unit = _str(known.get("name"), "Location.name")
                if monitored is None and _monitored_location(known):
                    monitored = True
            explicit = _monitored_extension(current.get("extension"))
            if explicit is not None:
                monitored = explicit
            period = _dict(current.get("period"), f"{rt}.location.period")
            location_start = period.get("start") if period else None

        hospitalization = _dict(res.get("hospitalization"), f"{rt}.hospitalization")
        disposition = _dict(hospitalization.get("dischargeDisposition"), f"{rt}.hospitalization.dischargeDisposition") if hospitalization else None
        comfort_care = expired = False
        if disposition is not None:
            codes = _codes([disposition], f"{rt}.hospitalization.dischargeDisposition", lower=True, system=DISCHARGE_DISPOSITION_SYSTEM)
            words = (_concept_text(disposition) or "").lower()
            comfort_care = "hosp" in codes or "hospice" in words
            expired = "exp" in codes
        finished = status == "finished"
        discharged = (finished and class_code not in _ENC_END_IS_NOT_DISCHARGE) or expired

        if unit is None and monitored is None and not discharged and not comfort_care:
            raise _Ignore("Encounter without a location, discharge or disposition")

        period = _dict(res.get("period"), f"{rt}.period")
        if finished:
            sources = (("period.end", period.get("end") if period else None), ("meta.lastUpdated", meta.get("lastUpdated")))
        else:
            sources = (
                ("meta.lastUpdated", meta.get("lastUpdated")),
                ("location.period.start", location_start),
                ("period.start", period.get("start") if period else None),
            )
        occurred_at = _first_datetime(sources, rt, "period: a start, end or meta.lastUpdated is required")

        patient = self._patient_ref(patient_id)
        if unit:
            patient["unit"] = unit[:_MAX_TEXT]
        if monitored is not None:
            patient["monitored"] = monitored
        event: dict[str, Any] = {
            "type": "patient_update",
            "event_id": _event_id(rt, rid, meta),
            "occurred_at": occurred_at.isoformat(),
            "patient": patient,
        }
        if discharged:
            event["discharged"] = True
        if comfort_care:
            event["comfort_care"] = True
        result = _validated(event, rt)
        if result.event is not None and unit:
            ctx = self._context(patient_id)
            ctx.unit, ctx.monitored = unit[:_MAX_TEXT], monitored
        return result


# --- helpers: drugs -----------------------------------------------------------------------


@dataclass(slots=True)
class _Drug:
    name: str | None = None
    rxnorm: str | None = None
    dose_form: str | None = None
    strength: tuple[float, str] | None = None


_catalogue_cache: list[Any] = []


def _catalogue() -> Any:
    """``DrugCatalogue.default()`` if the knowledge package provides it, else ``None`` (once)."""
    if not _catalogue_cache:
        try:
            from monitor.knowledge import DrugCatalogue  # type: ignore[attr-defined]

            _catalogue_cache.append(DrugCatalogue.default())
        except Exception:
            _catalogue_cache.append(None)
    return _catalogue_cache[0]


def _is_opioid(ingredient: str) -> bool:
    catalogue = _catalogue()
    if catalogue is not None:
        try:
            info = catalogue.classify(ingredient, None)
            if info is not None and getattr(info, "opioid", None):
                return True
        except Exception:
            pass
    words = set(re.split(r"[^a-z]+", ingredient.lower()))
    return bool(words & _FALLBACK_OPIOIDS)


def _pick_component(components: Iterable[Component]) -> Component | None:
    """The only component, or the (first) opioid of a combination product."""
    components = tuple(components)
    if len(components) == 1:
        return components[0]
    return next((c for c in components if _is_opioid(c.ingredient)), None)


def _ingredient_strength(medication: dict[str, Any]) -> tuple[float, str] | None:
    """Strength from ``Medication.ingredient[].strength`` (a Ratio), opioid first."""
    components: list[Component] = []
    ingredients = medication.get("ingredient")
    if not isinstance(ingredients, list):
        return None
    for ingredient in ingredients:
        if not isinstance(ingredient, dict):
            continue
        item = ingredient.get("itemCodeableConcept") or ingredient.get("itemReference")
        name = None
        if isinstance(item, dict):
            name = _concept_text(item) if "itemCodeableConcept" in ingredient else _plain_str(item.get("display"))
        ratio = ingredient.get("strength")
        if not name or not isinstance(ratio, dict):
            continue
        try:
            num_value, num_unit = _quantity(ratio.get("numerator"), "Medication.ingredient.strength.numerator")
            den = ratio.get("denominator")
            den_value, den_unit = (1.0, "each") if den is None else _quantity(den, "Medication.ingredient.strength.denominator")
        except _Reject:
            continue
        value = _clean(num_value / den_value)
        if den_unit in _COUNT_UNITS or den_unit in ("1", "{unit}", "{dose}"):
            unit = num_unit
        else:
            unit = _normalize_unit(f"{num_unit}/{den_unit}")
            unit = {"mg/hr": "mg/h", "mcg/hr": "mcg/h"}.get(unit, unit)
        if value > 0:
            components.append(Component(name, value, unit))
    component = _pick_component(components)
    return None if component is None else (component.strength, component.unit)


def _fit_strength(drug: _Drug, dose_unit: str | None) -> tuple[float, str] | None:
    """The strength that turns this dose unit into mass, if it fits (tablet ↔ mg, mL ↔ mg/mL)."""
    if drug.strength is None or dose_unit is None:
        return None
    value, unit = drug.strength
    transdermal = "transdermal" in (drug.dose_form or "").lower() or dose_unit == "patch"
    if unit == "mg/h" and transdermal:
        value, unit = _clean(value * 1000), "mcg/h"
    mass, _, per = unit.partition("/")
    if mass not in _MASS_IN_MG:
        return None
    if dose_unit in _COUNT_UNITS and per in ("", "h"):
        return value, unit
    if dose_unit == "spray" and per in ("actuat", "spray"):
        return value, f"{mass}/spray"  # RxNorm strengths are per actuation
    if dose_unit in _PER_DOSE_UNITS and per == dose_unit:
        return value, unit
    if dose_unit == "mL/h" and per == "mL":
        return None  # converted into a mass rate by the caller
    return None


# --- helpers: dosage ----------------------------------------------------------------------


@dataclass(slots=True)
class _Timing:
    frequency: float | None = None
    max_frequency: float | None = None
    one_time: bool = False
    prn: bool = False


def _timing(timing: dict[str, Any] | None, path: str) -> _Timing:
    out = _Timing()
    if timing is None:
        return out
    repeat = _dict(timing.get("repeat"), f"{path}.repeat")
    if repeat is not None:
        p = f"{path}.repeat"
        count = _number(repeat.get("count"), f"{p}.count")
        if count is not None and count == 1:
            out.one_time = True
        frequency = _number(repeat.get("frequency"), f"{p}.frequency")
        frequency_max = _number(repeat.get("frequencyMax"), f"{p}.frequencyMax")
        period = _number(repeat.get("period"), f"{p}.period")
        period_max = _number(repeat.get("periodMax"), f"{p}.periodMax")
        for name, value in (("frequency", frequency), ("frequencyMax", frequency_max), ("period", period), ("periodMax", period_max)):
            if value is not None and value <= 0:
                raise _Reject("invalid_value", f"{p}.{name}: must be positive")
        if frequency is not None or period is not None:
            if period is None:
                raise _Reject("missing_field", f"{p}.period: required with frequency")
            raw_unit = _str(repeat.get("periodUnit"), f"{p}.periodUnit")
            if raw_unit is None:
                raise _Reject("missing_field", f"{p}.periodUnit: required with period")
            unit = _PERIOD_UNIT_ALIASES.get(raw_unit.lower())
            if unit is None:
                raise _Reject("invalid_value", f"{p}.periodUnit: one of s, min, h, d, wk, mo, a")
            per_day = _PER_DAY[unit]
            times = frequency if frequency is not None else 1.0
            fastest = times * per_day / period
            if period_max is not None and period_max > period:
                out.frequency = _clean(times * per_day / period_max)
                out.max_frequency = _clean((frequency_max or times) * per_day / period)
            else:
                out.frequency = _clean(fastest)
                if frequency_max is not None and frequency_max > times:
                    out.max_frequency = _clean(frequency_max * per_day / period)
        else:
            time_of_day = _codes_list(repeat.get("timeOfDay"), f"{p}.timeOfDay")
            when = _codes_list(repeat.get("when"), f"{p}.when")
            if time_of_day:
                out.frequency = float(len(time_of_day))
            elif when:
                out.frequency = float(sum(3 if w in _WHEN_THREE_A_DAY else 1 for w in when))
    code = _dict(timing.get("code"), f"{path}.code")
    if code is not None:
        candidates = [c.get("code") for c in _list(code.get("coding"), f"{path}.code.coding") if isinstance(c, dict)]
        candidates += [c.get("display") for c in code.get("coding") or [] if isinstance(c, dict)]
        candidates.append(code.get("text"))
        for candidate in candidates:
            if not isinstance(candidate, str) or not candidate.strip():
                continue
            parsed = _timing_code(candidate)
            if parsed is None:
                continue
            frequency, max_frequency, one_time, prn = parsed
            out.prn = out.prn or prn
            if out.frequency is None and not out.one_time:
                out.frequency, out.one_time = frequency, one_time
                if out.max_frequency is None:
                    out.max_frequency = max_frequency
            break
    return out


def _codes_list(value: Any, path: str) -> list[str]:
    """An array of code strings (timing.repeat.when, timeOfDay); anything else is rejected."""
    items = _list(value, path)
    if not all(isinstance(item, str) for item in items):
        raise _Reject("wrong_type", f"{path}: must be an array of strings")
    return items


def _timing_code(text: str) -> tuple[float | None, float | None, bool, bool] | None:
    """``"Q4H PRN"`` → (6, None, False, True); unknown codes → ``None``."""
    tokens = text.upper().replace(".", "").split()
    prn = "PRN" in tokens
    rest = "".join(token for token in tokens if token != "PRN")
    if not rest:
        return (None, None, False, True) if prn else None
    if rest in _TIMING_CODES:
        return _TIMING_CODES[rest], None, False, prn
    if rest in _ONE_TIME_CODES:
        return None, None, True, prn
    match = _Q_HOURS_RE.match(rest)
    if match:
        low, high = float(match.group(1)), float(match.group(2)) if match.group(2) else None
        per_day = 1440.0 if match.group(3) == "MIN" else 24.0
        if low <= 0 or (high is not None and high < low):
            return None
        if high is not None:
            return _clean(per_day / high), _clean(per_day / low), False, prn
        return _clean(per_day / low), None, False, prn
    return None


def _quantity(value: Any, path: str) -> tuple[float, str]:
    quantity = _dict(value, path)
    if quantity is None:
        raise _Reject("missing_field", f"{path}: required")
    number = _number(quantity.get("value"), f"{path}.value")
    if number is None:
        raise _Reject("missing_field", f"{path}.value: required")
    if number <= 0:
        raise _Reject("invalid_value", f"{path}.value: must be positive")
    unit = _str(quantity.get("unit"), f"{path}.unit") or _str(quantity.get("code"), f"{path}.code")
    if unit is None:
        raise _Reject("missing_field", f"{path}.unit: unit or code required")
    return number, _normalize_unit(unit)


def _range(value: Any, path: str) -> tuple[float, float | None, str]:
    rng = _dict(value, path)
    if rng is None:
        raise _Reject("missing_field", f"{path}: required")
    low, low_unit = _quantity(rng.get("low"), f"{path}.low")
    if rng.get("high") is None:
        return low, None, low_unit
    high, high_unit = _quantity(rng.get("high"), f"{path}.high")
    if high_unit != low_unit:
        raise _Reject("invalid_value", f"{path}: low and high must have the same unit")
    if high < low:
        raise _Reject("invalid_value", f"{path}: high is below low")
    return low, high, low_unit


def _rate_ratio(value: Any, path: str) -> tuple[float, str]:
    ratio = _dict(value, path)
    if ratio is None:
        raise _Reject("missing_field", f"{path}: required")
    num, num_unit = _quantity(ratio.get("numerator"), f"{path}.numerator")
    den, den_unit = _quantity(ratio.get("denominator"), f"{path}.denominator")
    per_hour = _PER_HOUR_FROM.get(_PERIOD_UNIT_ALIASES.get(den_unit.lower(), ""))
    if per_hour is None:
        raise _Reject("invalid_value", f"{path}.denominator: a time unit (s, min, h, d) is required")
    return _clean(num / den * per_hour), f"{num_unit}/h"


def _hourly(unit: str) -> tuple[float, str]:
    """``mg/min`` → (60, ``mg/h``): rates per s, min or d become per hour; others unchanged."""
    amount, slash, per = unit.partition("/")
    if not slash or "/" in per:
        return 1.0, unit
    per_hour = _PER_HOUR_FROM.get(_PERIOD_UNIT_ALIASES.get(per.strip().lower(), ""))
    if per_hour is None:
        return 1.0, unit
    return per_hour, _normalize_unit(f"{_normalize_unit(amount)}/h")


def _daily_cap(value: Any, path: str, dose_unit: str | None, strength: tuple[float, str] | None) -> float | None:
    """maxDosePerPeriod as a daily maximum in the dose's unit, or ``None`` if it cannot be."""
    ratio = _dict(value, path)
    if ratio is None or dose_unit is None:
        return None
    num, num_unit = _quantity(ratio.get("numerator"), f"{path}.numerator")
    if ratio.get("denominator") is None:
        den, den_unit = 1.0, "d"
    else:
        den, den_unit = _quantity(ratio.get("denominator"), f"{path}.denominator")
    unit = _PERIOD_UNIT_ALIASES.get(den_unit.lower())
    if unit is None:
        raise _Reject("invalid_value", f"{path}.denominator: a time unit is required")
    per_day = num * _PER_DAY[unit] / den
    if num_unit == dose_unit:
        return per_day
    if num_unit in _MASS_IN_MG and dose_unit in _MASS_IN_MG:
        return per_day * _MASS_IN_MG[num_unit] / _MASS_IN_MG[dose_unit]
    if num_unit in _MASS_IN_MG and strength is not None and strength[1] in _MASS_IN_MG:
        return per_day * _MASS_IN_MG[num_unit] / _MASS_IN_MG[strength[1]] / strength[0]
    return None


def _end_at(res: dict) -> datetime | None:
    rt = "MedicationRequest"
    instructions = res.get("dosageInstruction")
    repeat = None
    if isinstance(instructions, list) and instructions and isinstance(instructions[0], dict):
        timing = instructions[0].get("timing")
        repeat = timing.get("repeat") if isinstance(timing, dict) else None
        repeat = repeat if isinstance(repeat, dict) else None
    bounds = _dict(repeat.get("boundsPeriod"), f"{rt}.dosageInstruction[0].timing.repeat.boundsPeriod") if repeat else None
    if bounds is not None and bounds.get("end") is not None:
        return _datetime(bounds.get("end"), f"{rt}.dosageInstruction[0].timing.repeat.boundsPeriod.end")
    dispense = _dict(res.get("dispenseRequest"), f"{rt}.dispenseRequest")
    validity = _dict(dispense.get("validityPeriod"), f"{rt}.dispenseRequest.validityPeriod") if dispense else None
    if validity is not None and validity.get("end") is not None:
        return _datetime(validity.get("end"), f"{rt}.dispenseRequest.validityPeriod.end")
    if repeat is not None and repeat.get("boundsDuration") is not None and res.get("authoredOn") is not None:
        path = f"{rt}.dosageInstruction[0].timing.repeat.boundsDuration"
        amount, unit = _quantity(repeat.get("boundsDuration"), path)
        canonical = _PERIOD_UNIT_ALIASES.get(unit.lower())
        if canonical is None or canonical in ("mo", "a"):
            raise _Reject("invalid_value", f"{path}: a unit of s, min, h, d or wk is required")
        start = _datetime(res.get("authoredOn"), f"{rt}.authoredOn")
        return start + timedelta(days=amount / _PER_DAY[canonical])
    return None


def _indication(res: dict) -> str | None:
    rt = "MedicationRequest"
    texts: list[str] = []
    for reason in _list(res.get("reasonCode"), f"{rt}.reasonCode"):
        if isinstance(reason, dict):
            text = _concept_text(reason)
            if text and text not in texts:
                texts.append(text)
    for reason in _list(res.get("reasonReference"), f"{rt}.reasonReference"):
        if isinstance(reason, dict):
            text = _plain_str(reason.get("display"))
            if text and text not in texts:
                texts.append(text)
    joined = "; ".join(texts)
    return joined[:_MAX_TEXT].strip() or None


# --- helpers: observations and encounters -------------------------------------------------


def _pain_value(value: Any, path: str) -> int:
    if value is None:
        raise _Reject("missing_field", f"{path}: required")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Reject("wrong_type", f"{path}: must be a number")
    if isinstance(value, float) and (not math.isfinite(value) or not value.is_integer()):
        raise _Reject("invalid_value", f"{path}: pain score must be an integer from 0 to 10")
    score = int(value)
    if not 0 <= score <= 10:
        raise _Reject("invalid_value", f"{path}: pain score must be an integer from 0 to 10")
    return score


def _allodynia(res: dict) -> bool | None:
    for component in _list(res.get("component"), "Observation.component"):
        if not isinstance(component, dict) or not isinstance(component.get("code"), dict):
            continue
        code = component["code"]
        codings = _list(code.get("coding"), "Observation.component.code.coding")
        words = [code.get("text")] + [
            part for c in codings if isinstance(c, dict) for part in (c.get("display"), c.get("code"))
        ]
        if any(isinstance(w, str) and "allodynia" in w.lower() for w in words):
            value = component.get("valueBoolean")
            if isinstance(value, bool):
                return value
    return None


def _monitored_extension(extensions: Any) -> bool | None:
    if not isinstance(extensions, list):
        return None
    for extension in extensions:
        if isinstance(extension, dict) and extension.get("url") == MONITORED_EXTENSION_URL:
            value = extension.get("valueBoolean")
            if isinstance(value, bool):
                return value
    return None


def _monitored_location(location: dict[str, Any]) -> bool:
    explicit = _monitored_extension(location.get("extension"))
    if explicit is not None:
        return explicit
    types = location.get("type")
    if not isinstance(types, list):
        return False
    for concept in types:
        if not isinstance(concept, dict):
            continue
        codings = concept.get("coding")
        for coding in codings if isinstance(codings, list) else ():  # context: tolerate bad shapes
            if isinstance(coding, dict) and isinstance(coding.get("code"), str):
                if coding["code"].upper() in _MONITORED_LOCATION_CODES:
                    return True
    return False


# --- helpers: identity, references, time --------------------------------------------------


def _resource_id(res: dict, rt: str, scope: _Scope) -> str:
    rid = res.get("id")
    if rid is None and scope.full_url:
        rid = _id_from_full_url(scope.full_url)
    if rid is None:
        raise _Reject("missing_field", f"{rt}.id: required (or the Bundle entry's fullUrl)")
    if not isinstance(rid, str):
        raise _Reject("wrong_type", f"{rt}.id: must be a string")
    if not _ID_RE.match(rid):
        raise _Reject("invalid_value", f"{rt}.id: not a valid FHIR id")
    return rid


def _id_from_full_url(full_url: str) -> str | None:
    match = _UUID_URN_RE.match(full_url)
    if match:
        return match.group(1)
    parts = [p for p in full_url.split("/") if p]
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    return parts[-1] if len(parts) >= 2 and _ID_RE.match(parts[-1]) else None


def _parse_reference(reference: str, rtype: str) -> str | None:
    """``Patient/123``, ``https://host/fhir/Patient/123/_history/2`` → ``123``."""
    parts = reference.strip().split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    if len(parts) >= 2 and parts[-2] == rtype and _ID_RE.match(parts[-1]):
        return parts[-1]
    return None


def _subject_patient(res: dict, rt: str, scope: _Scope) -> str:
    subject = _dict(res.get("subject"), f"{rt}.subject")
    if subject is None:
        raise _Reject("missing_field", f"{rt}.subject: a Patient reference is required")
    reference = _str(subject.get("reference"), f"{rt}.subject.reference")
    if reference is None:
        raise _Reject("missing_field", f"{rt}.subject.reference: a Patient reference is required")
    if reference.startswith("urn:"):
        target = scope.full_urls.get(reference)
        if target is None:
            raise _Reject("invalid_value", f"{rt}.subject.reference: urn reference not resolvable in its Bundle")
        if target[0] != "Patient":
            raise _Reject("invalid_value", f"{rt}.subject.reference: must reference a Patient")
        return target[1]
    patient_id = _parse_reference(reference, "Patient")
    if patient_id is None:
        raise _Reject("invalid_value", f"{rt}.subject.reference: must be a Patient reference (Patient/<id>)")
    return patient_id


def _meta(res: dict, rt: str) -> dict[str, Any]:
    return _dict(res.get("meta"), f"{rt}.meta") or {}


def _version_number(meta: dict[str, Any]) -> int:
    version = meta.get("versionId")
    return int(version) if isinstance(version, str) and version.isdigit() and len(version) < 10 else 0


def _event_id(rt: str, rid: str, meta: dict[str, Any]) -> str:
    version = meta.get("versionId")
    if version is not None:
        if not isinstance(version, str):
            raise _Reject("wrong_type", f"{rt}.meta.versionId: must be a string")
        if not _ID_RE.match(version):
            raise _Reject("invalid_value", f"{rt}.meta.versionId: not a valid FHIR id")
        event_id = f"{rt}/{rid}/_history/{version}"
    elif meta.get("lastUpdated") is not None:
        instant = _datetime(meta.get("lastUpdated"), f"{rt}.meta.lastUpdated")
        stamp = instant.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
        event_id = f"{rt}/{rid}@{stamp}"
    else:
        event_id = f"{rt}/{rid}"
    if len(event_id) > 128:
        event_id = f"{rt}/sha256-{hashlib.sha256(event_id.encode()).hexdigest()[:48]}"
    return event_id


def _first_datetime(sources: Iterable[tuple[str, Any]], rt: str, missing: str) -> datetime:
    """The first present (name, value) in ``sources`` as a datetime, by order of preference;
    a ``missing_field`` rejection (``rt.missing``) when none is present."""
    for name, value in sources:
        if value is not None:
            return _datetime(value, f"{rt}.{name}")
    raise _Reject("missing_field", f"{rt}.{missing}")


def _datetime(value: Any, path: str) -> datetime:
    """A FHIR dateTime/instant with a time and a timezone offset."""
    if not isinstance(value, str):
        raise _Reject("wrong_type", f"{path}: must be a string")
    match = _DATETIME_RE.match(value.strip())
    if match is None:
        raise _Reject("invalid_value", f"{path}: not a FHIR dateTime")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    if hour is None:
        raise _Reject("invalid_value", f"{path}: a date without a time; a time with a timezone offset is required")
    if offset is None:
        raise _Reject("invalid_value", f"{path}: timezone offset required")
    try:
        if offset == "Z":
            tz = timezone.utc
        else:
            sign = -1 if offset[0] == "-" else 1
            hours, minutes = int(offset[1:3]), int(offset[4:6])
            if hours > 14 or minutes > 59:
                raise ValueError
            tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
        micro = int((fraction or "0")[:6].ljust(6, "0"))
        instant = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0), micro, tzinfo=tz)
        instant.astimezone(timezone.utc)  # event ids and event-time order work in UTC: must be representable
        return instant
    except (ValueError, OverflowError):
        raise _Reject("invalid_value", f"{path}: not a valid date and time") from None


def _birth_date(res: dict) -> date | None:
    value = res.get("birthDate")
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Reject("wrong_type", "Patient.birthDate: must be a string")
    match = _DATE_RE.match(value.strip())
    if match is None:
        raise _Reject("invalid_value", "Patient.birthDate: not a FHIR date")
    if match.group(3) is None:
        raise _Reject("invalid_value", "Patient.birthDate: a full date (YYYY-MM-DD) is required")
    try:
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        raise _Reject("invalid_value", "Patient.birthDate: not a valid date") from None


# --- helpers: JSON shapes -----------------------------------------------------------------


def _dict(value: Any, path: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _Reject("wrong_type", f"{path}: must be an object")
    return value


def _list(value: Any, path: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Reject("wrong_type", f"{path}: must be an array")
    return value


def _str(value: Any, path: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Reject("wrong_type", f"{path}: must be a string")
    return value.strip() or None


def _plain_str(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _required_str(res: dict, name: str, rt: str) -> str:
    value = _str(res.get(name), f"{rt}.{name}")
    if value is None:
        raise _Reject("missing_field", f"{rt}.{name}: field required")
    return value


def _number(value: Any, path: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Reject("wrong_type", f"{path}: must be a number")
    try:
        number = float(value)
    except OverflowError:
        raise _Reject("invalid_value", f"{path}: out of range") from None
    if not math.isfinite(number):
        raise _Reject("invalid_value", f"{path}: must be finite")
    return number


def _clean(value: float) -> float:
    """Round away binary noise (0.025 × 1000 → 25.0, 24 / 3 → 8.0)."""
    return round(value, 9)


def _normalize_unit(unit: str) -> str:
    key = unit.strip()
    return _UNIT_ALIASES.get(key.lower(), _UNIT_ALIASES.get(key, key))


def _codes(concepts: list[Any], path: str, *, lower: bool = False, system: str | None = None) -> set[str]:
    """Codes of a list of CodeableConcepts (optionally of one system)."""
    out: set[str] = set()
    for concept in concepts:
        if not isinstance(concept, dict):
            continue
        for coding in _list(concept.get("coding"), f"{path}.coding"):
            if not isinstance(coding, dict) or not isinstance(coding.get("code"), str):
                continue
            if system is not None and coding.get("system") != system:
                continue
            out.add(coding["code"].lower() if lower else coding["code"])
    return out


def _concept_text(concept: dict[str, Any]) -> str | None:
    """A CodeableConcept's text, else a coding display, else a coding code."""
    text = _plain_str(concept.get("text"))
    if text:
        return text
    return _first_coding(concept, "display") or _first_coding(concept, "code")


def _concept_display_first(concept: dict[str, Any]) -> str | None:
    """A coding display, else the text, else a coding code (routes: SNOMED displays)."""
    return _first_coding(concept, "display") or _plain_str(concept.get("text")) or _first_coding(concept, "code")


def _first_coding(concept: dict[str, Any], key: str) -> str | None:
    codings = concept.get("coding")
    if not isinstance(codings, list):
        return None
    for coding in codings:
        if isinstance(coding, dict):
            value = _plain_str(coding.get(key))
            if value:
                return value
    return None


def _validated(event: dict[str, Any], rt: str) -> FhirResult:
    result = validate_event_object(event)
    if isinstance(result, Rejection):
        return FhirResult(rejection=Rejection(result.reason, f"{rt} as {event['type']}: {result.detail}"))
    return FhirResult(event=result)

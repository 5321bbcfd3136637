"""FHIR R4 adapter: MedicationRequest, Observation, Patient, Encounter and Bundles → canonical events.

Each test builds a small resource (helpers below), maps it with ``FhirAdapter`` and asserts
the canonical fields, the daily dose the knowledge module derives from them, or the
alerts and MME that ``medmon`` prints for the sample files in ``tests/data/fhir``.
"""

from __future__ import annotations

import copy
import json
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.alerts import AlertRecord
from monitor.cli import main
from monitor.engine import Engine
from monitor.events import OrderAction, PainScore, PatientUpdate, Prescription
from monitor.fhir import MONITORED_EXTENSION_URL, FhirAdapter, FhirResult, is_fhir_resource
from monitor.knowledge import daily_dose, normalize_route
from monitor.replay import read_file, read_inputs
from monitor.validation import REASONS
from tests.feeds import rules

DATA = Path(__file__).parent / "data" / "fhir"
BUNDLE = DATA / "bundle_inpatient_stay.json"
STREAM = DATA / "stream.ndjson"

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
#: A patient id that must never appear in a rejection detail or a skip reason.
SECRET = "MRN-SECRET-4242"

OXY_10 = "oxycodone hydrochloride 10 MG Oral Tablet"
OXY_5 = "oxycodone hydrochloride 5 MG Oral Tablet"
FENTANYL_25 = "72 HR fentanyl 0.025 MG/HR Transdermal System"
PERCOCET = "acetaminophen 325 MG / oxycodone hydrochloride 5 MG Oral Tablet"


# --- builders -----------------------------------------------------------------------------


def qty(value: Any, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit}


def rx_concept(display: str | None = OXY_10, code: str | None = "1049683", text: str | None = None) -> dict[str, Any]:
    concept: dict[str, Any] = {}
    if display is not None or code is not None:
        concept["coding"] = [{"system": RXNORM, "code": code, "display": display}]
    if text is not None:
        concept["text"] = text
    return concept


def every(frequency: float, period: float, unit: str = "h", **more: Any) -> dict[str, Any]:
    return {"repeat": {"frequency": frequency, "period": period, "periodUnit": unit, **more}}


def code(text: str) -> dict[str, Any]:
    return {"code": {"text": text}}


def dosage(dose: dict[str, Any] | None = None, timing: dict[str, Any] | None = None, **more: Any) -> dict[str, Any]:
    """One dosageInstruction: 1 tablet every 4 hours unless told otherwise."""
    out: dict[str, Any] = {"timing": every(1, 4) if timing is None else timing, **more}
    out["doseAndRate"] = [{"doseQuantity": qty(1, "tablet")} if dose is None else dose]
    return out


def med_request(rid: str = "mr-1", version: str | None = "1", status: str = "active", **fields: Any) -> dict[str, Any]:
    """An order of oxycodone 10 mg tablets, 1 tablet q4h; ``fields`` override (``None`` removes one)."""
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": rid,
        "meta": {"lastUpdated": "2024-03-04T10:00:00Z"} | ({"versionId": version} if version else {}),
        "status": status,
        "intent": "order",
        "subject": {"reference": f"Patient/{SECRET}"},
        "authoredOn": "2024-03-04T09:00:00+01:00",
        "medicationCodeableConcept": rx_concept(),
        "dosageInstruction": [dosage()],
    }
    resource.update(fields)
    return {k: v for k, v in resource.items() if v is not None}


def pain_observation(value: Any = 7, *, loinc: str = "72514-3", value_key: str = "valueInteger",
                     **fields: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": "obs-1",
        "meta": {"versionId": "1", "lastUpdated": "2024-03-04T09:02:00+01:00"},
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": loinc}]},
        "subject": {"reference": f"Patient/{SECRET}"},
        "effectiveDateTime": "2024-03-04T09:00:00+01:00",
        value_key: value,
    }
    resource.update(fields)
    return {k: v for k, v in resource.items() if v is not None}


def patient(birth_date: str = "1951-08-02", **fields: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": SECRET, "birthDate": birth_date, **fields}


def encounter(status: str = "in-progress", class_code: str = "IMP", locations: list[dict] | None = None,
              **fields: Any) -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "id": "enc-1",
        "meta": {"versionId": "1", "lastUpdated": "2024-03-04T08:15:00Z"},
        "status": status,
        "class": {"code": class_code},
        "subject": {"reference": f"Patient/{SECRET}"},
        "period": {"start": "2024-03-03T22:40:00Z", "end": "2024-03-06T10:00:00Z"},
        "location": locations if locations is not None else [],
        **fields,
    }


def bundle(*resources: dict[str, Any], kind: str = "collection", base: str = "http://hospital.example/fhir") -> dict:
    entries = [{"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r} for r in resources]
    return {"resourceType": "Bundle", "type": kind, "entry": entries}


# --- mapping helpers ----------------------------------------------------------------------


def map_one(resource: Any, adapter: FhirAdapter | None = None) -> FhirResult:
    [result] = (adapter or FhirAdapter()).map_resource(resource)
    return result


def event_of(resource: dict[str, Any], adapter: FhirAdapter | None = None) -> Any:
    result = map_one(resource, adapter)
    assert result.event is not None, result
    return result.event


def rejection_of(resource: Any, adapter: FhirAdapter | None = None):  # type: ignore[no-untyped-def]
    result = map_one(resource, adapter)
    assert result.rejection is not None, result
    assert result.rejection.reason in REASONS
    assert SECRET not in result.rejection.detail
    return result.rejection


def daily(event: Prescription) -> tuple[float | None, str | None]:
    """The daily dose monitor.knowledge derives from the mapped fields (mg/day or mcg/h)."""
    result = daily_dose(
        dose=event.dose, dose_max=event.dose_max, dose_unit=event.dose_unit, strength=event.strength,
        strength_unit=event.strength_unit, frequency_per_day=event.frequency_per_day,
        max_frequency_per_day=event.max_frequency_per_day, prn=event.prn, one_time=event.one_time,
        route=event.route,
    )
    return result.amount, result.unit


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


# --- MedicationRequest: drug, strength, dose --------------------------------------------


def test_rxnorm_coding_gives_drug_code_and_tablet_strength() -> None:
    event = event_of(med_request())
    assert isinstance(event, Prescription)
    assert (event.drug, event.rxnorm, event.order_id) == (OXY_10, "1049683", "mr-1")
    assert (event.dose, event.dose_unit, event.strength, event.strength_unit) == (1, "tablet", 10, "mg")
    assert (event.frequency_per_day, event.prn, event.route) == (6, False, "oral")  # route from "Oral Tablet"
    assert event.patient.id == SECRET
    assert daily(event) == (60, "mg")


def test_text_names_the_drug_but_strength_comes_from_the_rxnorm_display() -> None:
    resource = med_request(
        medicationCodeableConcept=rx_concept(FENTANYL_25, "245134", text="Duragesic patch"),
        dosageInstruction=[dosage(dose={"doseQuantity": qty(1, "patch")}, timing=every(1, 72))],
    )
    event = event_of(resource)
    assert (event.drug, event.rxnorm) == ("Duragesic patch", "245134")
    assert (event.dose, event.dose_unit, event.strength, event.strength_unit) == (1, "patch", 25, "mcg/h")
    assert event.route == "transdermal"
    assert event.is_continuous is False  # the patch is the dose; the strength is the rate
    assert daily(event) == (25, "mcg/h")


def test_text_only_medication_is_parsed_too() -> None:
    event = event_of(med_request(medicationCodeableConcept={"text": OXY_5}))
    assert (event.drug, event.rxnorm, event.strength, event.strength_unit) == (OXY_5, None, 5, "mg")


def test_combination_product_takes_the_opioid_component() -> None:
    resource = med_request(medicationCodeableConcept=rx_concept(PERCOCET, "1049621"),
                           dosageInstruction=[dosage(dose={"doseQuantity": qty(2, "tablet")}, timing=every(1, 6))])
    event = event_of(resource)
    assert (event.strength, event.strength_unit) == (5, "mg")  # oxycodone, not 325 mg acetaminophen
    assert daily(event) == (40, "mg")


def test_non_rxnorm_codes_are_dropped_but_the_display_still_names_the_drug() -> None:
    concept = {"coding": [{"system": "http://hl7.org/fhir/sid/ndc", "code": "0406-0552-01", "display": OXY_5}]}
    event = event_of(med_request(medicationCodeableConcept=concept))
    assert (event.drug, event.rxnorm, event.strength) == (OXY_5, None, 5)


def test_medication_reference_to_a_contained_medication() -> None:
    contained = {"resourceType": "Medication", "id": "med", "code": rx_concept(OXY_5, "1049621")}
    resource = med_request(medicationCodeableConcept=None, medicationReference={"reference": "#med"},
                           contained=[contained])
    event = event_of(resource)
    assert (event.drug, event.rxnorm, event.strength, event.strength_unit) == (OXY_5, "1049621", 5, "mg")


def test_contained_medication_ingredient_strength_wins_and_picks_the_opioid() -> None:
    contained = {
        "resourceType": "Medication", "id": "med", "code": {"text": "Percocet"},
        "ingredient": [
            {"itemCodeableConcept": {"text": "acetaminophen"},
             "strength": {"numerator": qty(325, "mg"), "denominator": qty(1, "tablet")}},
            {"itemCodeableConcept": {"text": "oxycodone hydrochloride"},
             "strength": {"numerator": qty(7.5, "mg"), "denominator": qty(1, "tablet")}},
        ],
    }
    resource = med_request(medicationCodeableConcept=None, medicationReference={"reference": "#med"},
                           contained=[contained])
    event = event_of(resource)
    assert (event.drug, event.strength, event.strength_unit) == ("Percocet", 7.5, "mg")


def test_medication_reference_to_a_bundled_medication_in_any_entry_order() -> None:
    medication = {"resourceType": "Medication", "id": "med-7", "code": rx_concept(FENTANYL_25, "245134")}
    order = med_request(medicationCodeableConcept=None, medicationReference={"reference": "Medication/med-7"},
                        dosageInstruction=[dosage(dose={"doseQuantity": qty(1, "patch")}, timing=every(1, 72))])
    results = FhirAdapter().map_resource(bundle(order, medication))  # the Medication comes after the order
    assert results[1].ignored is not None
    event = results[0].event
    assert event is not None, results[0]
    assert (event.drug, event.rxnorm, event.strength, event.strength_unit) == (FENTANYL_25, "245134", 25, "mcg/h")


def test_medication_reference_display_when_the_medication_is_unknown() -> None:
    event = event_of(med_request(medicationCodeableConcept=None,
                                 medicationReference={"reference": "Medication/elsewhere", "display": OXY_5}))
    assert (event.drug, event.strength) == (OXY_5, 5)


def test_no_drug_name_is_a_rejection() -> None:
    rejection = rejection_of(med_request(medicationCodeableConcept=None))
    assert rejection.reason == "missing_field"
    assert "medication[x]" in rejection.detail


@pytest.mark.parametrize(
    ("timing", "frequency", "max_frequency"),
    [
        pytest.param(every(1, 4), 6, None, id="q4h"),
        pytest.param(every(1, 8), 3, None, id="every 8 hours"),
        pytest.param(every(1, 12), 2, None, id="twice daily as 1 per 12 h"),
        pytest.param(every(2, 1, "d"), 2, None, id="2 per day"),
        pytest.param(every(1, 4, periodMax=6), 4, 6, id="q4-6h as period/periodMax"),
        pytest.param(every(1, 12, frequencyMax=2), 2, 4, id="1-2 per 12 h"),
        pytest.param(code("Q4-6H"), 4, 6, id="timing.code Q4-6H"),
        pytest.param({"code": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation",
                                           "code": "BID"}]}}, 2, None, id="timing.code BID"),
        pytest.param(code("TID"), 3, None, id="TID"),
        pytest.param({"repeat": {"timeOfDay": ["08:00:00", "14:00:00", "20:00:00"]}}, 3, None, id="timeOfDay"),
        pytest.param({"repeat": {"when": ["AC"]}}, 3, None, id="when AC"),
        pytest.param({"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}, "code": {"text": "BID"}}, 1, None,
                     id="repeat wins over code"),
    ],
)
def test_timing_gives_frequency_per_day(timing: dict, frequency: float, max_frequency: float | None) -> None:
    event = event_of(med_request(dosageInstruction=[dosage(timing=timing)]))
    assert (event.frequency_per_day, event.max_frequency_per_day) == (frequency, max_frequency)
    assert event.one_time is False


@pytest.mark.parametrize("timing", [{"repeat": {"count": 1}}, code("STAT"), code("once")])
def test_one_time_orders(timing: dict) -> None:
    event = event_of(med_request(dosageInstruction=[dosage(timing=timing)]))
    assert (event.one_time, event.frequency_per_day) == (True, None)
    assert daily(event) == (10, "mg")


def test_prn_dose_range_counts_at_its_high_end_and_maximum_frequency() -> None:
    """1-2 tablets of oxycodone 5 mg every 4-6 hours as needed: at most 2 × 5 mg × 6 = 60 mg/day."""
    dose = {"doseRange": {"low": qty(1, "tablet"), "high": qty(2, "tablet")}}
    resource = med_request(medicationCodeableConcept=rx_concept(OXY_5),
                           dosageInstruction=[dosage(dose=dose, timing=every(1, 4, periodMax=6), asNeededBoolean=True)])
    event = event_of(resource)
    assert (event.dose, event.dose_max, event.prn) == (1, 2, True)
    assert (event.frequency_per_day, event.max_frequency_per_day) == (4, 6)
    assert daily(event) == (60, "mg")


@pytest.mark.parametrize(
    ("extra", "timing", "prn"),
    [
        pytest.param({"asNeededBoolean": True}, every(1, 4), True, id="asNeededBoolean"),
        pytest.param({"asNeededBoolean": False}, every(1, 4), False, id="asNeededBoolean false"),
        pytest.param({"asNeededCodeableConcept": {"text": "pain"}}, every(1, 4), True, id="asNeededCodeableConcept"),
        pytest.param({}, code("Q6H PRN"), True, id="PRN in timing.code"),
        pytest.param({}, every(1, 4), False, id="scheduled"),
    ],
)
def test_prn(extra: dict, timing: dict, prn: bool) -> None:
    assert event_of(med_request(dosageInstruction=[dosage(timing=timing, **extra)])).prn is prn


def test_scheduled_dose_range_counts_its_low_end() -> None:
    dose = {"doseRange": {"low": qty(1, "tablet"), "high": qty(2, "tablet")}}
    event = event_of(med_request(dosageInstruction=[dosage(dose=dose)]))
    assert (event.dose, event.dose_max, event.prn) == (1, 2, False)
    assert daily(event) == (60, "mg")  # 1 × 10 mg × 6: the high end counts for PRN orders only


@pytest.mark.parametrize(
    ("route", "mapped", "normalized"),
    [
        pytest.param({"coding": [{"system": SNOMED, "code": "47625008", "display": "Intravenous route"}]},
                     "Intravenous route", "iv", id="SNOMED display"),
        pytest.param({"coding": [{"system": SNOMED, "code": "26643006"}]}, "26643006", "oral", id="SNOMED code only"),
        pytest.param({"text": "by mouth"}, "by mouth", "oral", id="text"),
        pytest.param(None, "oral", "oral", id="inferred from the dose form"),
    ],
)
def test_route(route: dict | None, mapped: str, normalized: str) -> None:
    extra = {"route": route} if route is not None else {}
    event = event_of(med_request(dosageInstruction=[dosage(**extra)]))
    assert event.route == mapped
    assert normalize_route(event.route) == normalized


def test_continuous_rate_in_ml_per_hour_becomes_mg_per_hour() -> None:
    resource = med_request(
        medicationCodeableConcept=rx_concept("morphine sulfate 1 MG/ML Injectable Solution", "1730193"),
        dosageInstruction=[{"route": {"text": "IV"}, "doseAndRate": [{"rateQuantity": qty(2, "mL/h")}]}],
    )
    event = event_of(resource)
    assert (event.dose, event.dose_unit, event.frequency_per_day, event.is_continuous) == (2, "mg/h", None, True)
    assert daily(event) == (48, "mg")


def test_max_dose_per_period_caps_a_prn_order() -> None:
    dose = {"doseRange": {"low": qty(1, "tablet"), "high": qty(2, "tablet")}}
    cap = {"numerator": qty(30, "mg"), "denominator": qty(1, "d")}  # 30 mg/day = 6 tablets of 5 mg
    resource = med_request(medicationCodeableConcept=rx_concept(OXY_5), dosageInstruction=[
        dosage(dose=dose, timing=every(1, 4), asNeededBoolean=True, maxDosePerPeriod=cap)])
    event = event_of(resource)
    assert (event.frequency_per_day, event.max_frequency_per_day) == (3, 3)
    assert daily(event) == (30, "mg")


@pytest.mark.parametrize(
    ("instructions", "where"),
    [
        pytest.param(None, "dosageInstruction", id="no dosage"),
        pytest.param([dosage(timing={})], "timing", id="no frequency"),
        pytest.param([{"timing": every(1, 4)}], "dose", id="no dose"),
        pytest.param([dosage(timing={"repeat": {"frequency": 1, "period": 4, "periodUnit": "fortnight"}})],
                     "periodUnit", id="unknown periodUnit"),
        pytest.param([dosage(dose={"doseQuantity": qty(0, "tablet")})], "doseQuantity.value", id="zero dose"),
    ],
)
def test_active_order_without_a_usable_dosage_is_rejected(instructions: list | None, where: str) -> None:
    rejection = rejection_of(med_request(dosageInstruction=instructions))
    assert where in rejection.detail


# --- MedicationRequest: status, versions, identity, time ---------------------------------


@pytest.mark.parametrize(
    ("status", "action"),
    [
        ("on-hold", OrderAction.DISCONTINUE),
        ("stopped", OrderAction.DISCONTINUE),
        ("completed", OrderAction.DISCONTINUE),
        ("cancelled", OrderAction.DISCONTINUE),
        ("entered-in-error", OrderAction.ENTERED_IN_ERROR),
    ],
)
def test_status_ends_or_retracts_the_order(status: str, action: OrderAction) -> None:
    event = event_of(med_request(version="2", status=status))
    assert event.action is action
    assert event.occurred_at == utc("2024-03-04T10:00:00Z")  # when the change was recorded


@pytest.mark.parametrize("status", ["draft", "unknown"])
def test_draft_and_unknown_are_ignored_not_rejected(status: str) -> None:
    result = map_one(med_request(status=status))
    assert result.ignored == f"{status} MedicationRequest"


def test_unknown_status_code_is_rejected() -> None:
    assert rejection_of(med_request(status="paused")).detail == \
        "MedicationRequest.status: not a MedicationRequest status code"


def test_first_version_is_new_later_versions_modify() -> None:
    adapter = FhirAdapter()
    first = event_of(med_request(version="1"), adapter)
    second = event_of(med_request(version="2", meta={"versionId": "2", "lastUpdated": "2024-03-05T07:30:00Z"},
                                  dosageInstruction=[dosage(dose={"doseQuantity": qty(2, "tablet")})]), adapter)
    assert (first.action, second.action) == (OrderAction.NEW, OrderAction.MODIFY)
    assert first.event_id == "MedicationRequest/mr-1/_history/1"
    assert second.event_id == "MedicationRequest/mr-1/_history/2"
    assert first.order_id == second.order_id == "mr-1"
    assert first.occurred_at == utc("2024-03-04T08:00:00Z")  # new: authoredOn (09:00+01:00)
    assert second.occurred_at == utc("2024-03-05T07:30:00Z")  # modify: meta.lastUpdated
    assert second.dose == 2


def test_a_later_version_seen_first_is_a_modify() -> None:
    assert event_of(med_request(version="3")).action is OrderAction.MODIFY


def test_first_active_version_after_drafts_is_new() -> None:
    adapter = FhirAdapter()
    assert map_one(med_request(version="1", status="draft"), adapter).ignored is not None
    assert event_of(med_request(version="2"), adapter).action is OrderAction.NEW


def test_same_version_twice_is_the_same_event_and_the_engine_drops_the_duplicate() -> None:
    adapter, engine = FhirAdapter(), Engine(rules())
    v1, v2 = med_request(version="1"), med_request(version="2", status="stopped")
    events = [event_of(r, adapter) for r in (v1, v1, v2, v2)]
    assert events[0] == events[1] and events[2] == events[3]
    assert events[0].event_id != events[2].event_id
    for event in events:
        engine.submit(event)
    engine.finish()
    assert engine.stats.duplicates == 2


def test_replayed_version_keeps_its_first_action() -> None:
    adapter = FhirAdapter()
    first = event_of(med_request(version="1"), adapter)
    event_of(med_request(version="2"), adapter)
    assert event_of(med_request(version="1"), adapter) == first  # still "new", not "modify"


def test_resumed_order_starts_when_it_was_resumed_not_when_first_authored() -> None:
    """Regression: a resumed order (active after on-hold) took the original authoredOn, so it
    sorted before the hold and the engine dropped it as stale: the active opioid went missing."""
    adapter, engine = FhirAdapter(), Engine(rules())
    versions = [
        med_request(version="1", meta={"versionId": "1", "lastUpdated": "2024-03-04T08:00:00Z"}),
        med_request(version="2", status="on-hold", meta={"versionId": "2", "lastUpdated": "2024-03-05T08:00:00Z"}),
        med_request(version="3", meta={"versionId": "3", "lastUpdated": "2024-03-06T08:00:00Z"}),
    ]
    events = [event_of(r, adapter) for r in versions]
    assert [e.action for e in events] == [OrderAction.NEW, OrderAction.DISCONTINUE, OrderAction.NEW]
    assert events[2].occurred_at == utc("2024-03-06T08:00:00Z")
    assert event_of(versions[2], adapter) == events[2]  # a replay is the same event
    for event in events:
        engine.submit(event)
    engine.finish()
    state = engine.states[SECRET]
    mme = engine.processor.mme(state, state.clock)
    assert [(o.order_id, o.mme) for o in mme.orders] == [("mr-1", 90)]  # 60 mg oxycodone × 1.5


def test_discontinue_of_a_known_order_without_medication_reuses_its_name() -> None:
    adapter = FhirAdapter()
    event_of(med_request(version="1"), adapter)
    stop = event_of(med_request(version="2", status="stopped", medicationCodeableConcept=None,
                                dosageInstruction=None), adapter)
    assert (stop.action, stop.drug, stop.rxnorm) == (OrderAction.DISCONTINUE, OXY_10, "1049683")


def test_stop_gets_through_even_with_an_unreadable_dosage() -> None:
    broken = [dosage(timing={"repeat": {"frequency": 1, "period": 4, "periodUnit": "fortnight"}})]
    assert event_of(med_request(status="stopped", dosageInstruction=broken)).action is OrderAction.DISCONTINUE


def test_event_id_without_version_uses_last_updated_in_utc() -> None:
    resource = med_request(version=None, meta={"lastUpdated": "2024-03-04T11:00:00+01:00"})
    assert event_of(resource).event_id == "MedicationRequest/mr-1@2024-03-04T10:00:00Z"


def test_occurred_at_falls_back_to_last_updated_and_is_required() -> None:
    assert event_of(med_request(authoredOn=None)).occurred_at == utc("2024-03-04T10:00:00Z")
    rejection = rejection_of(med_request(authoredOn=None, meta=None))
    assert rejection.reason == "missing_field"


@pytest.mark.parametrize(
    ("category", "mapped"),
    [
        pytest.param(None, True, id="none"),
        pytest.param(["inpatient"], True, id="inpatient"),
        pytest.param(["discharge", "inpatient"], True, id="discharge and inpatient"),
        pytest.param(["outpatient"], False, id="outpatient"),
        pytest.param(["community"], False, id="community"),
        pytest.param(["discharge"], False, id="discharge"),
    ],
)
def test_category_only_inpatient_exposure_is_mapped(category: list[str] | None, mapped: bool) -> None:
    concepts = None if category is None else [
        {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/medicationrequest-category", "code": c}]}
        for c in category
    ]
    result = map_one(med_request(category=concepts))
    if mapped:
        assert result.event is not None, result
    else:
        assert result.ignored == f"{category[0]} MedicationRequest: not inpatient exposure"  # type: ignore[index]


@pytest.mark.parametrize("fields", [{"intent": "proposal"}, {"intent": "plan"}, {"doNotPerform": True}])
def test_proposals_plans_and_do_not_perform_are_ignored(fields: dict) -> None:
    assert map_one(med_request(**fields)).ignored is not None


def test_end_at_and_indication() -> None:
    timing = every(1, 4, boundsPeriod={"start": "2024-03-04T08:00:00Z", "end": "2024-03-07T08:00:00Z"})
    event = event_of(med_request(dosageInstruction=[dosage(timing=timing)],
                                 reasonCode=[{"text": "Acute low back pain"}]))
    assert event.end_at == utc("2024-03-07T08:00:00Z")
    assert event.indication == "Acute low back pain"


# --- Observation ----------------------------------------------------------------------------


def test_pain_score_with_body_site() -> None:
    resource = pain_observation(7, bodySite={"coding": [{"system": SNOMED, "code": "37822005",
                                                          "display": "Lower back structure"}], "text": "Lower back"})
    event = event_of(resource)
    assert isinstance(event, PainScore)
    assert (event.score, event.body_site, event.patient.id) == (7, "Lower back", SECRET)
    assert event.occurred_at == utc("2024-03-04T08:00:00Z")  # effectiveDateTime
    assert event.event_id == "Observation/obs-1/_history/1"


def test_pain_score_from_value_quantity_and_body_site_display() -> None:
    resource = pain_observation({"value": 6.0, "unit": "{score}"}, value_key="valueQuantity",
                                bodySite={"coding": [{"display": "Left knee"}]})
    event = event_of(resource)
    assert (event.score, event.body_site) == (6, "Left knee")


def test_pain_score_allodynia_component() -> None:
    component = [{"code": {"text": "Allodynia present"}, "valueBoolean": True}]
    assert event_of(pain_observation(5, component=component)).allodynia is True


@pytest.mark.parametrize(
    ("value", "value_key", "reason"),
    [
        (11, "valueInteger", "invalid_value"),
        (-1, "valueInteger", "invalid_value"),
        (3.5, "valueInteger", "invalid_value"),
        ({"value": 3.5}, "valueQuantity", "invalid_value"),
        ({"value": 11}, "valueQuantity", "invalid_value"),
        ("7", "valueInteger", "wrong_type"),
        (True, "valueInteger", "wrong_type"),
    ],
)
def test_out_of_range_or_fractional_pain_score_is_rejected_without_echoing(value: Any, value_key: str,
                                                                          reason: str) -> None:
    rejection = rejection_of(pain_observation(value, value_key=value_key))
    assert rejection.reason == reason
    assert rejection.detail.startswith(f"Observation.{value_key}")
    assert "3.5" not in rejection.detail and "11" not in rejection.detail


@pytest.mark.parametrize("loinc", ["38208-5", "8867-4", "72133-2"])
def test_other_loinc_codes_are_ignored(loinc: str) -> None:
    assert map_one(pain_observation(7, loinc=loinc)).ignored == "Observation not LOINC 72514-3"


@pytest.mark.parametrize("status", ["entered-in-error", "cancelled"])
def test_retracted_pain_scores_are_ignored(status: str) -> None:
    assert map_one(pain_observation(7, status=status)).ignored is not None


def test_pain_score_without_effective_time_is_rejected() -> None:
    rejection = rejection_of(pain_observation(7, effectiveDateTime=None))
    assert (rejection.reason, rejection.detail) == ("missing_field", "Observation.effective[x]: required (or issued)")


# --- Patient and Encounter ----------------------------------------------------------------


def test_patient_with_last_updated_is_a_patient_update_carrying_the_birth_date() -> None:
    adapter = FhirAdapter()
    update = event_of(patient(meta={"versionId": "1", "lastUpdated": "2024-03-04T08:00:00Z"}), adapter)
    assert isinstance(update, PatientUpdate)
    assert (update.patient.id, update.patient.birth_date) == (SECRET, date(1951, 8, 2))
    assert update.discharged is None
    assert event_of(med_request(), adapter).patient.birth_date == date(1951, 8, 2)


def test_patient_without_last_updated_is_context_for_later_events() -> None:
    adapter = FhirAdapter()
    assert map_one(patient(), adapter).ignored == "Patient without meta.lastUpdated: birth date kept as context"
    assert event_of(pain_observation(4), adapter).patient.birth_date == date(1951, 8, 2)
    assert event_of(med_request(), adapter).patient.birth_date == date(1951, 8, 2)


def test_partial_birth_date_is_rejected() -> None:
    assert rejection_of(patient("1951")).detail == "Patient.birthDate: a full date (YYYY-MM-DD) is required"


def test_encounter_at_a_known_icu_location_is_a_monitored_transfer() -> None:
    adapter = FhirAdapter()
    location = {"resourceType": "Location", "id": "loc-micu", "name": "Medical ICU 4 West",
                "type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "ICU"}]}]}
    assert map_one(location, adapter).ignored is not None
    stay = encounter(locations=[
        {"location": {"reference": "Location/loc-ed", "display": "Emergency Department"}, "status": "completed"},
        {"location": {"reference": "Location/loc-micu"}, "status": "active"},
    ])
    update = event_of(stay, adapter)
    assert isinstance(update, PatientUpdate)
    assert (update.patient.unit, update.patient.monitored, update.discharged) == ("Medical ICU 4 West", True, None)
    assert update.occurred_at == utc("2024-03-04T08:15:00Z")
    context = adapter.patient_context(SECRET)
    assert context is not None and (context.unit, context.monitored) == ("Medical ICU 4 West", True)
    later = event_of(med_request(), adapter)
    assert (later.patient.unit, later.patient.monitored) == (None, None)  # the unit is not copied onto orders


def test_encounter_location_display_only_leaves_monitoring_to_the_unit_name() -> None:
    update = event_of(encounter(locations=[{"location": {"display": "ICU"}, "status": "active"}]))
    assert (update.patient.unit, update.patient.monitored) == ("ICU", None)


def test_explicit_monitoring_extension() -> None:
    ext = [{"url": MONITORED_EXTENSION_URL, "valueBoolean": True}]
    update = event_of(encounter(locations=[{"location": {"display": "4 West"}, "status": "active", "extension": ext}]))
    assert (update.patient.unit, update.patient.monitored) == ("4 West", True)


def test_finished_inpatient_encounter_is_a_discharge_at_period_end() -> None:
    update = event_of(encounter(status="finished"))
    assert update.discharged is True
    assert update.occurred_at == utc("2024-03-06T10:00:00Z")


def test_finished_encounter_to_hospice_is_comfort_care() -> None:
    disposition = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/discharge-disposition",
                               "code": "hosp"}]}
    update = event_of(encounter(status="finished", hospitalization={"dischargeDisposition": disposition}))
    assert (update.discharged, update.comfort_care) == (True, True)


@pytest.mark.parametrize(
    ("status", "class_code"),
    [("finished", "EMER"), ("in-progress", "AMB"), ("planned", "IMP"), ("in-progress", "IMP")],
)
def test_encounters_that_say_nothing_about_the_stay_are_ignored(status: str, class_code: str) -> None:
    assert map_one(encounter(status=status, class_code=class_code)).ignored is not None


# --- rejections ---------------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, [], "MedicationRequest", 42, [med_request()]])
def test_non_object_is_rejected(value: Any) -> None:
    assert rejection_of(value).reason == "not_an_object"


def test_missing_or_non_string_resource_type_is_rejected() -> None:
    resource = med_request()
    del resource["resourceType"]
    assert rejection_of(resource).reason == "missing_field"
    assert rejection_of(med_request(resourceType=["MedicationRequest"])).reason == "wrong_type"
    assert not is_fhir_resource(resource) and is_fhir_resource(med_request()) and not is_fhir_resource([])


def test_unsupported_resource_types_are_ignored_not_rejected() -> None:
    assert map_one({"resourceType": "Condition", "id": "c1"}).ignored == "unsupported resourceType"


@pytest.mark.parametrize(
    ("subject", "reason"),
    [
        (None, "missing_field"),
        ({"display": "somebody"}, "missing_field"),
        ({"reference": "Group/ward-7"}, "invalid_value"),
        ({"reference": "urn:uuid:not-in-this-bundle"}, "invalid_value"),
        ("Patient/x", "wrong_type"),
    ],
)
def test_subject_must_reference_a_patient(subject: Any, reason: str) -> None:
    for resource in (med_request(subject=subject), pain_observation(subject=subject)):
        rejection = rejection_of(resource)
        assert rejection.reason == reason
        assert ".subject" in rejection.detail


def test_subject_reference_forms() -> None:
    for reference in ("Patient/p-9", "https://fhir.example/r4/Patient/p-9", "Patient/p-9/_history/3"):
        assert event_of(med_request(subject={"reference": reference})).patient.id == "p-9"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("2024-03-04", "invalid_value"),  # a date only
        ("2024-03-04T09:00:00", "invalid_value"),  # no timezone offset
        ("2024-13-04T09:00:00Z", "invalid_value"),
        ("2024-02-30T09:00:00Z", "invalid_value"),
        ("yesterday", "invalid_value"),
        ("0001-01-01T00:00:00+14:00", "invalid_value"),  # before year 1 in UTC
        (20240304, "wrong_type"),
    ],
)
def test_unparseable_dates_are_rejected(value: Any, reason: str) -> None:
    for resource, path in ((med_request(authoredOn=value), "MedicationRequest.authoredOn"),
                           (pain_observation(effectiveDateTime=value), "Observation.effectiveDateTime"),
                           (pain_observation(meta={"lastUpdated": value}), "Observation.meta.lastUpdated")):
        rejection = rejection_of(resource)
        assert rejection.reason == reason
        assert rejection.detail.startswith(path), rejection


@pytest.mark.parametrize(
    ("resource", "where"),
    [
        pytest.param(med_request(dosageInstruction=[dosage(timing={"repeat": {"when": [{"code": "HS"}]}})]),
                     "timing.repeat.when", id="when holds an object"),
        pytest.param(med_request(dosageInstruction=[dosage(timing={"repeat": {"timeOfDay": [8]}})]),
                     "timing.repeat.timeOfDay", id="timeOfDay holds a number"),
        pytest.param(med_request(reasonCode=5), "reasonCode", id="reasonCode not an array"),
        pytest.param(pain_observation(component=1.5), "Observation.component", id="component not an array"),
        pytest.param(pain_observation(component=[{"code": {"coding": "allodynia"}}]), "component.code.coding",
                     id="component coding not an array"),
    ],
)
def test_malformed_fields_are_rejected_with_their_path(resource: dict, where: str) -> None:
    """Regression: these raised TypeError inside the adapter (caught only as "could not be mapped")."""
    rejection = rejection_of(resource)
    assert rejection.reason == "wrong_type"
    assert where in rejection.detail


def test_malformed_location_type_is_tolerated_as_context() -> None:
    adapter = FhirAdapter()
    map_one({"resourceType": "Location", "id": "loc-x", "name": "Ward X", "type": [{"coding": 7}]}, adapter)
    update = event_of(encounter(locations=[{"location": {"reference": "Location/loc-x"}, "status": "active"}]), adapter)
    assert (update.patient.unit, update.patient.monitored) == ("Ward X", None)


def test_rejection_in_a_bundle_names_the_entry() -> None:
    results = FhirAdapter().map_resource(bundle(med_request(), pain_observation(12)))
    assert results[0].event is not None
    assert results[1].rejection is not None
    assert results[1].rejection.detail == \
        "Bundle.entry[1]: Observation.valueInteger: pain score must be an integer from 0 to 10"


# --- Bundles, NDJSON, replay and medmon ----------------------------------------------------


@pytest.mark.parametrize("kind", ["transaction", "collection", "searchset"])
def test_bundle_types_map_every_entry_in_order(kind: str) -> None:
    doc = bundle(patient(meta={"lastUpdated": "2024-03-04T07:00:00Z"}), med_request(), pain_observation(3),
                 {"resourceType": "Condition", "id": "c1"}, kind=kind)
    if kind == "searchset":
        for entry in doc["entry"]:
            entry["search"] = {"mode": "match"}
    results = FhirAdapter().map_resource(doc)
    assert [type(r.event).__name__ if r.event else "ignored" for r in results] == \
        ["PatientUpdate", "Prescription", "PainScore", "ignored"]
    assert all(r.event.patient.birth_date == date(1951, 8, 2) for r in results[:3])  # type: ignore[union-attr]


def test_transaction_bundle_resolves_urn_uuid_subjects_and_skips_deletes() -> None:
    pt_urn = "urn:uuid:6f1c9a52-7d4e-4b0a-9d3e-2c1f6b8a4e11"
    order = med_request(subject={"reference": pt_urn})
    doc = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": pt_urn, "resource": {"resourceType": "Patient", "birthDate": "1940-01-01"},
         "request": {"method": "POST", "url": "Patient"}},
        {"fullUrl": "urn:uuid:mr-1", "resource": order, "request": {"method": "POST", "url": "MedicationRequest"}},
        {"request": {"method": "DELETE", "url": "MedicationRequest/mr-0"}},
    ]}
    results = FhirAdapter().map_resource(doc)
    assert results[0].ignored is not None and results[2].ignored == "Bundle entry DELETE request"
    event = results[1].event
    assert event is not None, results[1]
    assert (event.patient.id, event.patient.birth_date) == ("6f1c9a52-7d4e-4b0a-9d3e-2c1f6b8a4e11", date(1940, 1, 1))


def test_history_bundle_is_replayed_oldest_first() -> None:
    newest = med_request(version="2", status="stopped", meta={"versionId": "2", "lastUpdated": "2024-03-05T08:00:00Z"})
    oldest = med_request(version="1")
    doc = {"resourceType": "Bundle", "type": "history", "entry": [
        {"fullUrl": "http://h/fhir/MedicationRequest/mr-1/_history/2", "resource": newest},
        {"fullUrl": "http://h/fhir/MedicationRequest/mr-1/_history/1", "resource": oldest},
    ]}
    results = FhirAdapter().map_resource(doc)
    assert [r.event.action for r in results] == [OrderAction.DISCONTINUE, OrderAction.NEW]  # type: ignore[union-attr]


def test_read_file_maps_the_sample_bundle() -> None:
    items = list(read_file(BUNDLE, FhirAdapter()))
    assert [item.location for item in items] == [f"{BUNDLE}:1#{n}" for n in range(1, 11)]
    assert all(item.rejection is None for item in items)
    events = [item.event for item in items if item.event is not None]
    assert [type(e).__name__ for e in events] == \
        ["PatientUpdate", "PatientUpdate", "Prescription", "Prescription", "Prescription", "PainScore"]
    stay = events[1]
    assert (stay.patient.unit, stay.patient.monitored) == ("Medical ICU 4 West", True)
    oxy, fentanyl, senna = events[2:5]
    assert (oxy.dose, oxy.dose_max, oxy.strength, oxy.prn, oxy.frequency_per_day) == (1, 2, 5, True, 6)
    assert (fentanyl.strength, fentanyl.strength_unit, fentanyl.route) == (25, "mcg/h", "transdermal")
    assert (senna.frequency_per_day, senna.route) == (1, "oral")
    assert (events[5].score, events[5].body_site) == (7, "Lower back")
    assert [item.ignored for item in items if item.ignored] == [
        "Location kept as context for Encounter.location", "Observation not LOINC 72514-3",
        "discharge MedicationRequest: not inpatient exposure", "Bundle entry DELETE request"]


def test_read_file_maps_the_sample_ndjson_line_by_line() -> None:
    items = list(read_file(STREAM, FhirAdapter()))
    assert [item.location for item in items] == [f"{STREAM}:{n}" for n in range(1, 10)]
    kinds = [item.event.type if item.event else ("rejected" if item.rejection else "ignored") for item in items]
    assert kinds == ["ignored", "patient_update", "ignored", "prescription", "pain_score", "prescription",
                     "rejected", "prescription", "patient_update"]
    actions = [item.event.action for item in items if isinstance(item.event, Prescription)]
    assert actions == [OrderAction.NEW, OrderAction.MODIFY, OrderAction.DISCONTINUE]
    morphine = items[3].event
    assert (morphine.strength, morphine.strength_unit, morphine.prn, morphine.route) == \
        (2, "mg/mL", True, "Intravenous route")
    assert daily(morphine) == (16, "mg")  # 1 mL of 2 mg/mL every 3 hours
    assert items[6].rejection is not None and items[6].rejection.reason == "invalid_value"  # a score of 12
    assert items[8].event.discharged is True


def test_canonical_and_fhir_lines_mix_in_one_ndjson_file(tmp_path: Path) -> None:
    canonical = {"type": "pain_score", "event_id": "c-1", "occurred_at": "2024-03-04T12:00:00Z",
                 "patient": {"id": SECRET}, "score": 2}
    path = tmp_path / "mixed.ndjson"
    path.write_text("\n".join(json.dumps(obj) for obj in (med_request(), canonical, pain_observation(11))) + "\n")
    items = list(read_file(path, FhirAdapter()))
    assert [i.event.type if i.event else i.rejection.reason for i in items] == \
        ["prescription", "pain_score", "invalid_value"]  # type: ignore[union-attr]


def test_single_line_bundle_file_is_read_too(tmp_path: Path) -> None:
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle(med_request(), pain_observation(3))))
    items = list(read_file(path, FhirAdapter()))
    assert [item.location for item in items] == [f"{path}:1#1", f"{path}:1#2"]
    assert all(item.event is not None for item in items)


def test_read_inputs_merges_bundle_and_ndjson_by_event_time() -> None:
    times = [item.event.occurred_at for item in read_inputs([STREAM, BUNDLE]) if item.event is not None]
    assert len(times) == 12
    assert times == sorted(times)


def records_of(text: str) -> list[AlertRecord]:
    return [AlertRecord.model_validate_json(line) for line in text.splitlines()]


def test_medmon_mme_on_the_sample_bundle(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mme", str(BUNDLE)]) == 0
    out, err = capsys.readouterr()
    rows = [json.loads(line) for line in out.splitlines()]
    pid = "0f1c9a52-7d4e-4b0a-9d3e-2c1f6b8a4e11"
    assert rows == [
        {"patient_id": pid, "order_id": "mr-oxy-1", "ingredient": "oxycodone", "route": "oral", "daily_dose": 60.0,
         "daily_dose_unit": "mg", "factor": 1.5, "mme": 90.0, "counted": True},
        {"patient_id": pid, "order_id": "mr-fent-1", "ingredient": "fentanyl", "route": "transdermal",
         "daily_dose": 25.0, "daily_dose_unit": "mcg/h", "factor": 2.4, "mme": 60.0, "counted": True},
        {"patient_id": pid, "total_mme": 150.0, "mme_complete": True},
    ]
    assert err == ""


def test_medmon_evaluate_on_the_sample_bundle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", str(BUNDLE)]) == 0
    assert capsys.readouterr() == ("", "")

    # Without the senna order, and with a pain score 30 h later (offline time stops at the
    # last event), the opioids run for over 24 h without a bowel regimen.
    doc = json.loads(BUNDLE.read_text())
    doc["entry"] = [e for e in doc["entry"] if e.get("resource", {}).get("id") != "mr-senna-1"]
    later = pain_observation(3, id="obs-pain-2", effectiveDateTime="2024-03-05T15:00:00+01:00",
                             subject={"reference": "Patient/0f1c9a52-7d4e-4b0a-9d3e-2c1f6b8a4e11"})
    doc["entry"].append({"fullUrl": "urn:uuid:obs-pain-2", "resource": later})
    without_senna = tmp_path / "no_senna.json"
    without_senna.write_text(json.dumps(doc, indent=2))
    assert main(["evaluate", str(without_senna)]) == 0
    out, err = capsys.readouterr()
    [record] = records_of(out)
    assert (record.kind.value, record.status.value, record.unit) == ("missing_laxative", "open", "Medical ICU 4 West")
    assert record.raised_at == utc("2024-03-05T07:18:00Z")  # 24 h after the oxycodone order was authored
    assert record.details["age"] == 72
    assert err == ""


def test_medmon_evaluate_on_the_sample_stream(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "-v", str(STREAM)]) == 0
    out, err = capsys.readouterr()
    records = records_of(out)
    assert [(r.kind.value, r.status.value) for r in records] == [("missing_laxative", "open"),
                                                                  ("missing_laxative", "resolved")]
    opened, resolved = records
    assert opened.raised_at == utc("2024-05-11T14:34:00Z")  # 24 h after the order's first active version
    assert (opened.unit, opened.details["age"]) == ("Ward 7B Orthopaedics", 83)  # birth date from the Patient line
    assert opened.evidence == ["MedicationRequest/mr-morph-9/_history/3"]
    assert resolved.trigger_event_id == "MedicationRequest/mr-morph-9/_history/4"
    lines = err.splitlines()
    assert f"{STREAM}:7: invalid_value: Observation.valueInteger: pain score must be an integer from 0 to 10" in lines
    assert "pt-4411" not in err and "MRN" not in err and "Sample" not in err
    summary = json.loads(lines[-1].removeprefix("summary: "))
    assert (summary["rejected"], summary["skipped"], summary["duplicates"]) == (1, 2, 0)


def test_medmon_reads_a_bundle_and_ndjson_together(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "-v", str(BUNDLE), str(STREAM)]) == 0
    out, err = capsys.readouterr()
    assert [(r.patient_id, r.kind.value) for r in records_of(out)] == [("pt-4411", "missing_laxative")] * 2
    summary = json.loads(err.splitlines()[-1].removeprefix("summary: "))
    assert summary["events"] == {"pain_score": 2, "patient_update": 4, "prescription": 6}
    assert (summary["rejected"], summary["skipped"]) == (1, 6)


# --- never raises -------------------------------------------------------------------------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8)
    | st.sampled_from(["", "h", "d", "mg", "tablet", "patch", "mL/h", "BID", "Q4-6H PRN", "#med", "Patient/x",
                       "urn:uuid:x", "2024-03-04T09:00:00Z", "2024-03-04", "9999-12-31T23:59:59-14:00"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)

#: Valid MedicationRequests using every element the adapter reads; the property tests
#: replace a few of their elements (at any depth) with arbitrary JSON values.
KITCHEN_SINK = [
    med_request(
        category=[{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/medicationrequest-category",
                               "code": "inpatient"}], "text": "Inpatient"}],
        medicationCodeableConcept=rx_concept(PERCOCET, "1049621", text="Percocet"),
        dosageInstruction=[dosage(
            dose={"doseRange": {"low": qty(1, "tablet"), "high": qty(2, "tablet")}},
            timing={"repeat": {"frequency": 1, "frequencyMax": 2, "period": 4, "periodMax": 6, "periodUnit": "h",
                               "count": 20, "boundsDuration": qty(3, "d")},
                    "code": {"coding": [{"code": "Q4-6H"}], "text": "Q4-6H PRN"}},
            asNeededCodeableConcept={"text": "pain"},
            route={"coding": [{"system": SNOMED, "code": "26643006", "display": "Oral route"}], "text": "PO"},
            maxDosePerPeriod={"numerator": qty(30, "mg"), "denominator": qty(1, "d")},
        )],
        dispenseRequest={"validityPeriod": {"end": "2024-03-10T08:00:00Z"}},
        reasonCode=[{"coding": [{"display": "Back pain"}]}], reasonReference=[{"display": "Fracture"}],
    ),
    med_request(
        "mr-2", "2", contained=[{"resourceType": "Medication", "id": "med", "code": rx_concept(FENTANYL_25, "245134"),
                                 "form": {"text": "Transdermal System"},
                                 "ingredient": [{"itemCodeableConcept": {"text": "fentanyl"},
                                                 "strength": {"numerator": qty(25, "mcg"),
                                                              "denominator": qty(1, "h")}}]}],
        medicationCodeableConcept=None, medicationReference={"reference": "#med", "display": "fentanyl patch"},
        dosageInstruction=[dosage(dose={"doseQuantity": {"value": 1, "code": "{patch}"}},
                                  timing={"repeat": {"timeOfDay": ["08:00:00"], "when": ["MORN"],
                                                     "boundsPeriod": {"end": "2024-03-10T08:00:00Z"}}},
                                  asNeededBoolean=False)],
    ),
    med_request(
        "mr-3", "3", "on-hold",
        medicationCodeableConcept=rx_concept("morphine sulfate 1 MG/ML Injectable Solution", "1730193"),
        dosageInstruction=[{"route": {"text": "IV"}, "doseAndRate": [
            {"doseQuantity": qty(2, "mL"), "rateRatio": {"numerator": qty(2, "mL"), "denominator": qty(1, "h")}},
            {"rateRange": {"low": qty(1, "mg/h"), "high": qty(2, "mg/h")}}],
            "timing": {"repeat": {"when": ["AC", "HS"]}}}],
    ),
]
_SAMPLES = [json.loads(BUNDLE.read_text())] + [json.loads(line) for line in STREAM.read_text().splitlines()]


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every element's path in a JSON document (keys and list indexes)."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    return ([prefix] if prefix else []) + [p for key, child in items for p in _paths(child, (*prefix, key))]


@st.composite
def mutated(draw: st.DrawFn, bases: list[dict[str, Any]]) -> dict[str, Any]:
    """One of ``bases`` with one to three elements replaced by arbitrary JSON values."""
    resource = copy.deepcopy(draw(st.sampled_from(bases)))
    for path in draw(st.lists(st.sampled_from(_paths(resource)), min_size=1, max_size=3)):
        node = resource
        try:
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = draw(_JSON)
        except (KeyError, IndexError, TypeError):
            pass  # an earlier replacement removed this path
    return resource


def _assert_well_formed(results: list[FhirResult], resource: Any) -> None:
    assert isinstance(results, list)
    assert results or resource.get("resourceType") == "Bundle"  # only an empty Bundle gives no result
    for result in results:
        assert isinstance(result, FhirResult)
        assert sum(part is not None for part in (result.event, result.rejection, result.ignored)) == 1
        if result.rejection is not None:
            assert result.rejection.reason in REASONS
            # every failure names a FHIR path: the catch-all means an unexpected exception inside
            assert "could not be mapped" not in result.rejection.detail, result.rejection
            assert SECRET not in result.rejection.detail
        if result.ignored is not None:
            assert SECRET not in result.ignored


def test_kitchen_sink_orders_map() -> None:
    adapter = FhirAdapter()
    for resource in KITCHEN_SINK:
        assert event_of(resource, adapter) is not None


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(resources=st.lists(mutated(KITCHEN_SINK), min_size=1, max_size=3))
def test_medication_request_shaped_input_never_raises(resources: list[dict[str, Any]]) -> None:
    adapter = FhirAdapter()  # stateful: later versions meet what earlier ones left behind
    for resource in resources:
        _assert_well_formed(adapter.map_resource(resource), resource)
    doc = {"resourceType": "Bundle", "type": "history", "entry": [{"resource": r} for r in resources]}
    _assert_well_formed(FhirAdapter().map_resource(doc), doc)


@settings(max_examples=200, deadline=None)
@given(resource=st.dictionaries(st.sampled_from(sorted(KITCHEN_SINK[0]) + ["medicationReference", "contained"]),
                                _JSON).map(lambda d: {**d, "resourceType": "MedicationRequest"}))
def test_any_json_under_medication_request_keys_never_raises(resource: dict[str, Any]) -> None:
    _assert_well_formed(FhirAdapter().map_resource(resource), resource)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(resource=mutated(_SAMPLES))
def test_sample_resources_with_any_element_replaced_never_raise(resource: dict[str, Any]) -> None:
    _assert_well_formed(FhirAdapter().map_resource(resource), resource)

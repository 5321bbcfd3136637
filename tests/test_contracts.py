"""The event and alert contracts: schemas in sync with models, examples valid, edge rules."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from monitor.alerts import AlertRecord
from monitor.events import AlertAction, PainScore, PatientUpdate, Prescription
from monitor.schemas import SCHEMA_DIR, generated_schemas, render
from monitor.validation import decode_event

EXAMPLES = SCHEMA_DIR / "examples"


@pytest.mark.parametrize("name", sorted(generated_schemas()))
def test_checked_in_schema_matches_model(name: str) -> None:
    checked_in = (SCHEMA_DIR / name).read_text(encoding="utf-8")
    assert checked_in == render(generated_schemas()[name]), (
        f"schemas/{name} drifted from its model: run `python -m monitor.schemas`"
    )


@pytest.mark.parametrize(
    ("example", "model", "schema"),
    [
        ("prescription.json", Prescription, "prescription.schema.json"),
        ("pain_score.json", PainScore, "pain_score.schema.json"),
        ("patient_update.json", PatientUpdate, "patient_update.schema.json"),
        ("alert_action.json", AlertAction, "alert_action.schema.json"),
        ("alert.json", AlertRecord, "alert.schema.json"),
    ],
)
def test_examples_validate_against_model_and_schema(example: str, model: type, schema: str) -> None:
    document = json.loads((EXAMPLES / example).read_text(encoding="utf-8"))
    model.model_validate(document)
    jsonschema.validate(document, json.loads((SCHEMA_DIR / schema).read_text(encoding="utf-8")))
    if model is not AlertRecord:
        event = decode_event(json.dumps(document).encode())
        assert isinstance(event, model)
        jsonschema.validate(document, json.loads((SCHEMA_DIR / "event.schema.json").read_text(encoding="utf-8")))


def test_schema_rejects_what_the_model_rejects() -> None:
    document = json.loads((EXAMPLES / "pain_score.json").read_text(encoding="utf-8"))
    document["score"] = 11
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, json.loads((SCHEMA_DIR / "pain_score.schema.json").read_text(encoding="utf-8")))


def test_schema_files_are_all_generated() -> None:
    on_disk = {path.name for path in Path(SCHEMA_DIR).glob("*.schema.json")}
    assert on_disk == set(generated_schemas())


def schema_and_example(name: str) -> tuple[dict, dict]:
    """The generated JSON Schema of an event kind and its example document (a fresh copy)."""
    schema = json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text(encoding="utf-8"))
    return schema, json.loads((EXAMPLES / f"{name}.json").read_text(encoding="utf-8"))


def test_schema_carries_conditional_dose_requirement() -> None:
    schema, document = schema_and_example("prescription")
    del document["frequency_per_day"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, schema)
    assert decode_event(json.dumps(document).encode()).reason == "missing_field"
    document.update(dose=2, dose_unit="mg/h")  # a continuous rate needs no frequency
    jsonschema.validate(document, schema)
    assert isinstance(decode_event(json.dumps(document).encode()), Prescription)
    document.update(action="discontinue")
    for field in ("dose", "dose_unit"):
        del document[field]
    jsonschema.validate(document, schema)


@pytest.mark.parametrize(("dose_unit", "continuous"), [
    ("mg/h", True), ("MCG/HR", True), ("units/h", True), ("mL/hr", True), ("mcg/kg/min", True), ("mEq/h", True),
    ("mg", False), ("tablet", False), ("mg/day", False), ("units", False),
])
def test_model_and_schema_agree_on_which_units_are_rates(dose_unit: str, continuous: bool) -> None:
    """A rate is a continuous dose and needs no frequency, in both the model and the schema."""
    schema, document = schema_and_example("prescription")
    del document["frequency_per_day"]
    document.update(dose=2, dose_unit=dose_unit)
    accepted_by_model = isinstance(decode_event(json.dumps(document).encode()), Prescription)
    try:
        jsonschema.validate(document, schema)
        accepted_by_schema = True
    except jsonschema.ValidationError:
        accepted_by_schema = False
    assert accepted_by_model == accepted_by_schema == continuous


def test_action_schema_requires_what_the_model_requires() -> None:
    schema, document = schema_and_example("alert_action")
    del document["intervention"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, schema)
    assert decode_event(json.dumps(document).encode()).reason == "missing_field"
    document.update(action="snooze", snooze_for="PT4H")
    jsonschema.validate(document, schema)
    assert isinstance(decode_event(json.dumps(document).encode()), AlertAction)
    document.update(snooze_for="P3D")  # longer than a day: refused by the model
    assert decode_event(json.dumps(document).encode()).reason == "invalid_value"

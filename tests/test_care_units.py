"""Care units with continuous respiratory monitoring, and a hospital's own list."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.knowledge import CareUnits, is_monitored_unit, load_care_units
from monitor.knowledge.care_units import DEFAULT_CARE_UNITS_PATH
from monitor.knowledge.catalogue import tokenize


@pytest.mark.parametrize("unit", [
    "ICU", "icu", "MICU", "SICU", "CCU", "CICU", "CVICU", "NICU", "PICU", "Neuro ICU", "NeuroICU", "Burn ICU",
    "Trauma ICU", "STICU", "4W MICU", "MICU-2", "MICU 2", "Surgical ICU", "Medical Intensive Care Unit",
    "Critical Care", "PACU", "Post-Anesthesia Care Unit", "Recovery Room", "Step-down", "Stepdown unit", "SDU",
    "Progressive Care Unit", "Intermediate Care", "IMCU", "Cardiac ICU step-down", "Oncology ICU",
    "Med ICU", "Peds ICU", "ITU",
])
def test_monitored_units(unit):
    assert is_monitored_unit(unit) is True


@pytest.mark.parametrize("unit", [
    "Med-Surg", "med surg", "MedSurg 5", "Medical-Surgical", "General Ward", "Ward 7", "7 West floor",
    "Oncology", "Oncology Ward", "Orthopedics", "Ortho 3", "Telemetry", "Tele 4", "ED", "Emergency Department",
    "ER", "Rehab", "Inpatient Rehabilitation", "Hospice", "Palliative Care", "Psychiatry", "Observation",
    "Neurology ward", "Surgical ward", "Pediatrics",
])
def test_unmonitored_units(unit):
    assert is_monitored_unit(unit) is False


@pytest.mark.parametrize("unit", [None, "", "   ", "4W", "Unit 12", "PCU", "OR", "Cath Lab", "Endoscopy", "L&D",
                                  "Dialysis chair 3", "xyz", "ICUX", "MICUS", "medic"])
def test_unknown_or_ambiguous_units_are_none(unit):
    assert is_monitored_unit(unit) is None


def test_ambiguous_names_are_in_neither_list():
    data = json.loads(DEFAULT_CARE_UNITS_PATH.read_text(encoding="utf-8"))
    listed = {tokenize(name) for name in data["monitored"] + data["unmonitored"]}
    for name in data["ambiguous"]:
        assert tokenize(name) not in listed, name
    assert data["notes"]


def test_default_loader_matches_the_module_function():
    units = load_care_units()
    assert units is load_care_units()
    assert units.is_monitored("MICU") is True and units.is_monitored("Med-Surg") is False
    assert units.is_monitored(None) is None


def test_a_hospital_can_replace_the_list(tmp_path):
    path = tmp_path / "units.json"
    path.write_text(json.dumps({
        "monitored": ["5 North", "tele"],
        "unmonitored": ["ICU overflow"],
    }), encoding="utf-8")
    units = load_care_units(path)
    assert isinstance(units, CareUnits)
    assert units.is_monitored("5 North") is True
    assert units.is_monitored("Tele 4") is True  # this hospital's telemetry has continuous oximetry
    assert units.is_monitored("ICU overflow") is False
    assert units.is_monitored("MICU") is None  # not in this hospital's list
    assert is_monitored_unit("Tele 4") is False  # the packaged default is untouched


def test_a_unit_listed_both_ways_is_rejected():
    with pytest.raises(ValueError):
        CareUnits({"monitored": ["ICU"], "unmonitored": ["icu"]})


def test_a_unit_name_without_letters_is_rejected():
    with pytest.raises(ValueError):
        CareUnits({"monitored": ["--"]})


@settings(max_examples=300, deadline=None)
@given(unit=st.one_of(st.none(), st.text(max_size=40)))
def test_never_raises(unit):
    assert is_monitored_unit(unit) in (True, False, None)


def test_a_hospital_supplies_its_own_unit_list_through_the_environment(tmp_path) -> None:
    import json as _json

    from monitor.clinical.context import ClinicalRules
    from monitor.settings import RuleSettings

    own = tmp_path / "units.json"
    own.write_text(_json.dumps({"schema_version": 1, "monitored": ["5 west"], "unmonitored": ["burn unit"]}))
    rules = ClinicalRules.from_settings(RuleSettings.from_env({"MEDSAFETY_CARE_UNITS_FILE": str(own)}))
    assert rules.care_units.is_monitored("5 West Med-Surg") is True
    assert rules.care_units.is_monitored("Burn Unit 2") is False
    assert ClinicalRules.from_settings().care_units.is_monitored("5 West Med-Surg") is False

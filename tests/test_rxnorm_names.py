"""RxNorm clinical-drug name parsing: strengths for tablets, patches and solutions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.knowledge.rxnorm_names import (
    ClinicalDrugName,
    Component,
    normalize_strength_unit,
    parse_clinical_drug_name,
)


@pytest.mark.parametrize(
    ("name", "components", "dose_form"),
    [
        ("oxycodone hydrochloride 10 MG Oral Tablet", [("oxycodone hydrochloride", 10.0, "mg")], "Oral Tablet"),
        ("72 HR fentanyl 0.025 MG/HR Transdermal System", [("fentanyl", 0.025, "mg/h")], "Transdermal System"),
        ("72 HR fentanyl 12.5 MCG/HR Transdermal System", [("fentanyl", 12.5, "mcg/h")], "Transdermal System"),
        ("morphine sulfate 2 MG/ML Injectable Solution", [("morphine sulfate", 2.0, "mg/mL")], "Injectable Solution"),
        (
            "acetaminophen 325 MG / oxycodone hydrochloride 5 MG Oral Tablet",
            [("acetaminophen", 325.0, "mg"), ("oxycodone hydrochloride", 5.0, "mg")],
            "Oral Tablet",
        ),
        (
            "buprenorphine 8 MG / naloxone 2 MG Sublingual Film",
            [("buprenorphine", 8.0, "mg"), ("naloxone", 2.0, "mg")],
            "Sublingual Film",
        ),
        ("Senna 8.6 MG Oral Tablet", [("Senna", 8.6, "mg")], "Oral Tablet"),
        ("sennosides, USP 8.6 MG Oral Tablet", [("sennosides, USP", 8.6, "mg")], "Oral Tablet"),
        (
            "polyethylene glycol 3350 17000 MG Powder for Oral Solution",
            [("polyethylene glycol 3350", 17000.0, "mg")],
            "Powder for Oral Solution",
        ),
        ("heparin sodium, porcine 5000 UNT/ML Injectable Solution", [("heparin sodium, porcine", 5000.0, "unit/mL")], "Injectable Solution"),
        ("potassium chloride 20 MEQ Extended Release Oral Tablet", [("potassium chloride", 20.0, "mEq")], "Extended Release Oral Tablet"),
        ("sodium chloride 0.9 % Injectable Solution", [("sodium chloride", 0.9, "%")], "Injectable Solution"),
        ("butorphanol tartrate 1 MG/ACTUAT Metered Dose Nasal Spray", [("butorphanol tartrate", 1.0, "mg/actuat")], "Metered Dose Nasal Spray"),
        ("hydromorphone hydrochloride 2 MG", [("hydromorphone hydrochloride", 2.0, "mg")], None),
    ],
)
def test_parses_clinical_drug_names(name: str, components: list[tuple[str, float, str]], dose_form: str | None) -> None:
    parsed = parse_clinical_drug_name(name)
    assert parsed is not None
    assert parsed.components == tuple(Component(*c) for c in components)
    assert parsed.dose_form == dose_form


def test_duration_prefix_is_kept_apart_from_the_ingredient() -> None:
    parsed = parse_clinical_drug_name("72 HR fentanyl 0.025 MG/HR Transdermal System")
    assert parsed == ClinicalDrugName(
        components=(Component("fentanyl", 0.025, "mg/h"),), dose_form="Transdermal System", duration="72 HR"
    )
    extended = parse_clinical_drug_name("12 HR oxycodone hydrochloride 10 MG Extended Release Oral Tablet")
    assert extended is not None and extended.duration == "12 HR"
    assert extended.components[0].ingredient == "oxycodone hydrochloride"
    weekly = parse_clinical_drug_name("7 DAY buprenorphine 0.01 MG/HR Transdermal System")
    assert weekly is not None and weekly.duration == "7 DAY" and weekly.components[0].strength == 0.01


def test_quantity_factor_of_prefilled_devices() -> None:
    parsed = parse_clinical_drug_name("1 ML morphine sulfate 4 MG/ML Prefilled Syringe")
    assert parsed is not None
    assert parsed.quantity == "1 ML"
    assert parsed.components == (Component("morphine sulfate", 4.0, "mg/mL"),)
    assert parsed.dose_form == "Prefilled Syringe"


def test_branded_drug_and_abuse_deterrent_qualifier() -> None:
    parsed = parse_clinical_drug_name("Acetaminophen 325 MG / Oxycodone Hydrochloride 10 MG Oral Tablet [Percocet]")
    assert parsed is not None
    assert parsed.brand == "Percocet"
    assert [c.ingredient for c in parsed.components] == ["Acetaminophen", "Oxycodone Hydrochloride"]
    qualified = parse_clinical_drug_name(
        "Abuse-Deterrent 12 HR Oxycodone Hydrochloride 15 MG Extended Release Oral Tablet [Oxycontin]"
    )
    assert qualified is not None
    assert qualified.components == (Component("Oxycodone Hydrochloride", 15.0, "mg"),)
    assert qualified.duration == "12 HR" and qualified.brand == "Oxycontin"


def test_simple_free_text_in_the_same_shape_parses_case_insensitively() -> None:
    parsed = parse_clinical_drug_name("oxycodone 5 mg tablet")
    assert parsed is not None
    assert parsed.components == (Component("oxycodone", 5.0, "mg"),)
    assert parsed.dose_form == "tablet"


@pytest.mark.parametrize(
    "name",
    [
        "",
        "   ",
        "oxycodone",
        "10 MG Oral Tablet",  # no ingredient
        "oxycodone 0 MG Oral Tablet",  # no positive strength
        "oxycodone 5 FOO Oral Tablet",  # unknown unit
        "oxycodone 5 HR Oral Tablet",  # a time is not a strength
        "acetaminophen / oxycodone 5 MG Oral Tablet",  # a component without strength
        "{28 (norethindrone 0.35 MG Oral Tablet) } Pack",
        "Percocet 5/325",
        "x" * 600,
    ],
)
def test_not_a_clinical_drug_name(name: str) -> None:
    assert parse_clinical_drug_name(name) is None


def test_non_string_input_is_none() -> None:
    assert parse_clinical_drug_name(None) is None  # type: ignore[arg-type]
    assert parse_clinical_drug_name(42) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("MG", "mg"),
        ("MCG", "mcg"),
        ("MG/HR", "mg/h"),
        ("MCG/HR", "mcg/h"),
        ("MG/ML", "mg/mL"),
        ("UNT", "unit"),
        ("UNT/ML", "unit/mL"),
        ("MEQ", "mEq"),
        ("MEQ/ML", "mEq/mL"),
        ("%", "%"),
        ("MG/ACTUAT", "mg/actuat"),
        ("mg/ml", "mg/mL"),
        ("HR", None),
        ("MG/FOO", None),
        ("", None),
    ],
)
def test_strength_units_are_normalized_not_converted(raw: str, normalized: str | None) -> None:
    assert normalize_strength_unit(raw) == normalized


@given(st.text(max_size=200))
def test_never_raises_on_arbitrary_text(text: str) -> None:
    parsed = parse_clinical_drug_name(text)
    if parsed is not None:
        assert parsed.components
        assert all(c.strength > 0 and c.ingredient and c.unit for c in parsed.components)


@given(
    st.lists(
        st.tuples(
            st.from_regex(r"[a-z]{3,12}( [a-z]{3,12})?", fullmatch=True),
            st.decimals(min_value="0.001", max_value="5000", places=3),
            st.sampled_from(["MG", "MCG", "MG/ML", "MG/HR", "UNT", "MEQ"]),
        ),
        min_size=1,
        max_size=3,
    ),
    st.sampled_from(["Oral Tablet", "Injectable Solution", "Transdermal System", "Sublingual Film"]),
)
def test_round_trips_generated_names(parts: list, form: str) -> None:
    name = " / ".join(f"{ing} {value.normalize():f} {unit}" for ing, value, unit in parts) + f" {form}"
    parsed = parse_clinical_drug_name(name)
    assert parsed is not None
    assert [c.ingredient for c in parsed.components] == [ing for ing, _, _ in parts]
    assert [c.strength for c in parsed.components] == [float(value) for _, value, _ in parts]
    assert [c.unit for c in parsed.components] == [normalize_strength_unit(unit) for _, _, unit in parts]
    assert parsed.dose_form == form

"""MME: daily doses, conversion factors, patient totals, routes and OUD indications."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.knowledge import (
    DEFAULT_FACTOR_SET,
    FACTOR_SET_NAMES,
    ROUTES,
    SNOMED_ROUTES,
    DailyDose,
    FactorSet,
    OpioidExposure,
    PatientMME,
    daily_dose,
    infer_route,
    is_oud_indication,
    normalize_route,
    patient_mme,
)

CDC22 = FactorSet.named("cdc-2022")
CDC16 = FactorSet.named("cdc-2016")


def dd(dose=None, unit="mg", *, freq=None, prn=False, one_time=False, route="oral", dose_max=None,
       max_freq=None, strength=None, strength_unit=None) -> DailyDose:
    return daily_dose(dose=dose, dose_max=dose_max, dose_unit=unit, strength=strength, strength_unit=strength_unit,
                      frequency_per_day=freq, max_frequency_per_day=max_freq, prn=prn, one_time=one_time,
                      route=route)


def exposure(ingredient, daily, *, route="oral", prn=False, for_oud=False, order_id=None) -> OpioidExposure:
    return OpioidExposure(order_id or f"{ingredient}-{route}-{daily.amount}-{prn}", ingredient,
                          normalize_route(route), daily, prn, for_oud)


def total(*exposures, factors=CDC22) -> PatientMME:
    return patient_mme(list(exposures), factors)


def order(ingredient, dose, unit="mg", *, route="oral", factors=CDC22, **kwargs) -> PatientMME:
    prn = kwargs.get("prn", False)
    for_oud = kwargs.pop("for_oud", False)
    return total(exposure(ingredient, dd(dose, unit, route=route, **kwargs), route=route, prn=prn,
                          for_oud=for_oud), factors=factors)


# -- factor tables ----------------------------------------------------------------------

CDC22_ORAL = {"codeine": 0.15, "hydrocodone": 1, "hydromorphone": 5, "methadone": 4.7, "morphine": 1,
              "oxycodone": 1.5, "oxymorphone": 3, "tapentadol": 0.4, "tramadol": 0.2}
CDC16_ORAL = {"codeine": 0.15, "hydrocodone": 1, "hydromorphone": 4, "morphine": 1, "oxycodone": 1.5,
              "oxymorphone": 3}
PARENTERAL = [("morphine", "mg", 3), ("hydromorphone", "mg", 20), ("fentanyl", "mcg", 0.3)]


@pytest.mark.parametrize("ingredient,factor", sorted(CDC22_ORAL.items()))
def test_cdc2022_oral_factors(ingredient, factor):
    assert CDC22.factor(ingredient, "oral", "mg") == pytest.approx(factor)


@pytest.mark.parametrize("ingredient,factor", sorted(CDC16_ORAL.items()))
def test_cdc2016_oral_factors(ingredient, factor):
    assert CDC16.factor(ingredient, "oral", "mg") == pytest.approx(factor)


@pytest.mark.parametrize("factors", [CDC22, CDC16], ids=lambda f: f.name)
def test_transdermal_fentanyl_is_2_4_per_mcg_per_hour(factors):
    assert factors.factor("fentanyl", "transdermal", "mcg/h") == pytest.approx(2.4)
    assert factors.factor("fentanyl", None, "mcg/h") == pytest.approx(2.4)  # a mcg/h daily dose is a patch rate
    assert factors.factor("fentanyl", "transdermal", "mg/h") == pytest.approx(2400)
    assert factors.factor("fentanyl", "iv", "mcg/h") is None  # infusions arrive as mcg/day


@pytest.mark.parametrize("factors", [CDC22, CDC16], ids=lambda f: f.name)
@pytest.mark.parametrize("route", ["iv", "sc", "im", "IV push", "SQ", "intramuscular"])
@pytest.mark.parametrize("ingredient,per,factor", PARENTERAL)
def test_parenteral_factors_in_both_sets(factors, route, ingredient, per, factor):
    assert factors.factor(ingredient, route, per) == pytest.approx(factor)


def test_factor_follows_the_daily_dose_unit():
    assert CDC22.factor("fentanyl", "iv", "mg") == pytest.approx(300)  # per mg = 1000 mcg
    assert CDC22.factor("morphine", "iv", "mcg") == pytest.approx(0.003)
    assert CDC22.factor("oxycodone", "oral", "g") == pytest.approx(1500)
    assert CDC22.factor("oxycodone", "PO", "milligrams") == pytest.approx(1.5)


@pytest.mark.parametrize("factors,ingredient,route,unit", [
    (CDC16, "tramadol", "oral", "mg"), (CDC16, "tapentadol", "oral", "mg"),
    (CDC22, "buprenorphine", "sublingual", "mg"), (CDC22, "buprenorphine", "oral", "mg"),
    (CDC22, "buprenorphine", "transdermal", "mcg/h"), (CDC16, "buprenorphine", "iv", "mg"),
    (CDC22, "meperidine", "oral", "mg"), (CDC22, "levorphanol", "oral", "mg"), (CDC22, "sufentanil", "iv", "mcg"),
    (CDC22, "remifentanil", "iv", "mcg"), (CDC22, "morphine", "epidural", "mg"),
    (CDC22, "morphine", "intrathecal", "mg"), (CDC22, "hydromorphone", "epidural", "mg"),
    (CDC22, "fentanyl", "epidural", "mcg"), (CDC22, "fentanyl", "buccal", "mcg"),
    (CDC22, "fentanyl", "sublingual", "mcg"), (CDC22, "fentanyl", "intranasal", "mcg"),
    (CDC22, "morphine", "rectal", "mg"), (CDC22, "morphine", "other", "mg"), (CDC22, "oxycodone", "iv", "mg"),
    (CDC22, "methadone", "sublingual", "mg"), (CDC22, "morphine", "transdermal", "mg"),
    (CDC22, "morphine", "oral", "mcg/h"), (CDC22, "morphine", "oral", "units"), (CDC22, "morphine", "oral", None),
    (CDC22, "morphine", "oral", "tablet"), (CDC22, "aspirin", "oral", "mg"), (CDC22, "", "oral", "mg"),
])
def test_no_factor_means_unknown_never_zero(factors, ingredient, route, unit):
    assert factors.factor(ingredient, route, unit) is None


@pytest.mark.parametrize("ingredient", ["codeine", "hydrocodone", "oxycodone", "oxymorphone", "tapentadol", "tramadol"])
def test_missing_route_is_oral_for_drugs_without_a_parenteral_form(ingredient):
    assert CDC22.factor(ingredient, None, "mg") == CDC22.factor(ingredient, "oral", "mg")


@pytest.mark.parametrize("ingredient,unit", [("morphine", "mg"), ("hydromorphone", "mg"), ("methadone", "mg"),
                                             ("fentanyl", "mcg")])
def test_missing_route_stays_unknown_for_drugs_given_by_several_routes(ingredient, unit):
    assert CDC22.factor(ingredient, None, unit) is None


def test_named_sets_are_cached_and_listed():
    assert FACTOR_SET_NAMES == ("cdc-2022", "cdc-2016")
    assert DEFAULT_FACTOR_SET == "cdc-2022"
    assert FactorSet.named("cdc-2022") is CDC22
    assert CDC22.name == "cdc-2022" and CDC16.name == "cdc-2016"
    assert any("2022" in source for source in CDC22.sources)
    assert any("equianalgesic" in source.lower() for source in CDC22.sources)


def test_unknown_set_name_lists_the_available_ones():
    with pytest.raises(ValueError, match="cdc-2022.*cdc-2016"):
        FactorSet.named("who-2019")


# -- methadone tiers (cdc-2016) -------------------------------------------------------

@pytest.mark.parametrize("mg_per_day,factor", [
    (5, 4), (20, 4), (20.01, 8), (40, 8), (40.01, 10), (60, 10), (60.01, 12), (120, 12),
])
def test_methadone_tiers_by_total_daily_dose(mg_per_day, factor):
    result = order("methadone", mg_per_day, freq=1, factors=CDC16)
    assert result.complete
    assert result.orders[0].factor == pytest.approx(factor)
    assert result.total == pytest.approx(mg_per_day * factor)
    assert CDC16.factor("methadone", "oral", "mg", mg_per_day) == pytest.approx(factor)


def test_methadone_tier_uses_the_patients_total_across_orders():
    result = total(exposure("methadone", dd(10, freq=1)), exposure("methadone", dd(15, freq=1)), factors=CDC16)
    assert [o.factor for o in result.orders] == [8, 8]  # 25 mg/day in all -> tier 21-40
    assert result.total == pytest.approx(25 * 8)


def test_methadone_for_oud_does_not_raise_the_tier_of_pain_methadone():
    result = total(exposure("methadone", dd(80, freq=1), for_oud=True), exposure("methadone", dd(10, freq=1)),
                   factors=CDC16)
    assert result.total == pytest.approx(40) and result.complete
    assert result.orders[0].counted is False and result.orders[1].factor == 4


def test_methadone_is_flat_in_cdc2022():
    assert order("methadone", 30, freq=3).total == pytest.approx(90 * 4.7)


# -- worked examples --------------------------------------------------------------------

def test_transdermal_fentanyl_patch_25_mcg_h_is_60_mme():
    patch = dd(1, "patch", strength=25, strength_unit="mcg/h", route="transdermal", freq=1 / 3)
    assert (patch.amount, patch.unit) == (25, "mcg/h")
    assert total(exposure("fentanyl", patch, route="transdermal")).total == pytest.approx(60)
    rate = dd(25, "mcg/h", route="transdermal")
    assert (rate.amount, rate.unit) == (25, "mcg/h")
    assert total(exposure("fentanyl", rate, route="transdermal")).total == pytest.approx(60)


def test_patch_strength_in_mcg_per_hour_is_transdermal_even_without_a_route():
    patch = dd(2, "patches", strength=12, strength_unit="mcg/hr", route=None)
    assert (patch.amount, patch.unit) == (24, "mcg/h")
    assert total(exposure("fentanyl", patch, route=None)).total == pytest.approx(57.6)


def test_iv_morphine_infusion_2_mg_h_is_144_mme():
    daily = dd(2, "mg/h", route="IV")
    assert (daily.amount, daily.unit) == (48, "mg")
    assert total(exposure("morphine", daily, route="iv")).total == pytest.approx(144)


def test_iv_hydromorphone_half_mg_q4h_is_60_mme():
    assert order("hydromorphone", 0.5, route="iv", freq=6).total == pytest.approx(60)


def test_iv_fentanyl_50_mcg_h_is_360_mme():
    daily = dd(50, "mcg/hr", route="IV")
    assert (daily.amount, daily.unit) == (1200, "mcg")
    assert total(exposure("fentanyl", daily, route="iv")).total == pytest.approx(360)


def test_fentanyl_dose_written_in_mg_is_converted_to_mcg():
    assert order("fentanyl", 0.05, "mg", route="iv", one_time=True).total == pytest.approx(15)


def test_oxycodone_two_5_mg_tablets_q6h_is_60_mme():
    daily = dd(2, "tablets", strength=5, strength_unit="mg", freq=4)
    assert (daily.amount, daily.unit) == (40, "mg")
    assert total(exposure("oxycodone", daily)).total == pytest.approx(60)


@pytest.mark.parametrize("dose,unit,strength,strength_unit,expected", [
    (10, "mL", 1, "mg/mL", 10), (5, "mL", 5, "mg/5 mL", 5), (2.5, "ml", 1, "mg", 2.5),
    (15, "mL", 20, "mg/mL", 300), (1, "tab", 5, "mg/tablet", 5), (1, "each", 10, "mg", 10),
    (1, "cap", 100, "mg/1", 100), (0.5, "mL", 2, "mg/0.5 mL", 2),
])
def test_countable_units_need_the_strength(dose, unit, strength, strength_unit, expected):
    daily = dd(dose, unit, strength=strength, strength_unit=strength_unit, freq=1)
    assert daily.unit == "mg" and daily.amount == pytest.approx(expected)


def test_ml_per_hour_infusion_with_concentration():
    daily = dd(2, "mL/h", strength=1, strength_unit="mg/mL", route="iv")
    assert (daily.amount, daily.unit) == (48, "mg")


@pytest.mark.parametrize("unit,strength,strength_unit", [
    ("tablet", None, None), ("mL", None, "mg/mL"), ("mL", 1, None), ("tablet", 5, "mg/mL"),
    ("capsule", 5, "units"), ("mL", 5, "mEq/mL"), ("tablet", 25, "mcg/h"),
])
def test_countable_without_a_usable_strength_is_unknown(unit, strength, strength_unit):
    daily = dd(1, unit, strength=strength, strength_unit=strength_unit, freq=4)
    assert daily.amount is None and daily.unit is None and daily.note


@pytest.mark.parametrize("unit", ["units", "unit", "mEq", "vial", "puff", "drop", "drops", "%", "mg/kg",
                                  "mcg/kg/min", "", "   ", "banana", "IU", "mg/m2", "mmol", "application"])
def test_unconvertible_units_are_unknown_without_exception(unit):
    daily = dd(5, unit, freq=4, strength=5, strength_unit="mg")
    assert daily.amount is None and daily.unit is None and daily.note


@pytest.mark.parametrize("unit,expected_amount,expected_unit", [
    ("mg", 20, "mg"), ("MG", 20, "mg"), ("milligrams", 20, "mg"), ("milligram", 20, "mg"),
    ("mcg", 20, "mcg"), ("µg", 20, "mcg"), ("μg", 20, "mcg"), ("ug", 20, "mcg"), ("micrograms", 20, "mcg"),
    ("g", 20000, "mg"), ("gram", 20000, "mg"), ("mg.", 20, "mg"),
])
def test_mass_unit_spellings(unit, expected_amount, expected_unit):
    daily = dd(5, unit, freq=4)
    assert daily.amount == pytest.approx(expected_amount) and daily.unit == expected_unit


@pytest.mark.parametrize("unit", ["mg/h", "mg/hr", "mg/hour", "mg per hour", "MG/HR", "mg / h"])
def test_rate_unit_spellings(unit):
    assert dd(1, unit, route="iv").amount == pytest.approx(24)


def test_rate_ignores_frequency():
    assert dd(1, "mg/h", route="iv", freq=6).amount == pytest.approx(24)


def test_dose_per_day_unit():
    assert dd(30, "mg/day", route="oral").amount == pytest.approx(30)


# -- PRN, one-time, scheduled -------------------------------------------------------------

def test_prn_counts_at_its_maximum_daily_dose():
    daily = dd(5, dose_max=10, freq=4, max_freq=6, prn=True)
    assert daily.amount == pytest.approx(60)
    assert total(exposure("oxycodone", daily, prn=True)).total == pytest.approx(90)


def test_prn_falls_back_to_dose_and_frequency():
    assert dd(5, freq=6, prn=True).amount == pytest.approx(30)
    assert dd(5, max_freq=6, prn=True).amount == pytest.approx(30)


def test_prn_without_any_frequency_is_unknown():
    daily = dd(5, prn=True)
    assert daily.amount is None and "PRN" in daily.note


def test_one_time_order_is_its_single_dose():
    assert dd(4, one_time=True, route="iv").amount == pytest.approx(4)
    assert dd(4, one_time=True, freq=6, route="iv").amount == pytest.approx(4)
    assert dd(2, dose_max=4, one_time=True, route="iv").amount == pytest.approx(4)


def test_scheduled_without_frequency_is_unknown():
    daily = dd(5, freq=None)
    assert daily.amount is None and daily.note


@pytest.mark.parametrize("dose", [None, 0, -5, float("nan"), float("inf")])
def test_unusable_dose_is_unknown(dose):
    assert dd(dose, freq=4).amount is None


def test_transdermal_dose_in_mass_units_is_unknown():
    daily = dd(25, "mcg", route="transdermal", freq=1)
    assert daily.amount is None and "rate" in daily.note


def test_route_missing_infusion_in_mcg_per_hour_stays_unknown_mme():
    daily = dd(25, "mcg/h", route=None)
    assert (daily.amount, daily.unit) == (600, "mcg")  # an infusion until a route says patch
    result = total(exposure("fentanyl", daily, route=None))
    assert result.complete is False and result.total == 0


def test_notes_never_echo_free_text_units():
    daily = dd(5, "secret patient text", freq=1)
    assert daily.amount is None and "secret" not in daily.note


# -- patient totals -----------------------------------------------------------------------

def test_no_opioid_is_zero_and_complete():
    assert patient_mme([], CDC22) == PatientMME(0.0, True, ())
    assert patient_mme(iter(()), CDC16) == PatientMME(0.0, True, ())


def test_scheduled_orders_are_summed():
    result = total(exposure("oxycodone", dd(10, freq=2)), exposure("morphine", dd(2, route="iv", freq=6), route="iv"),
                   exposure("oxycodone", dd(5, freq=4)))
    assert result.total == pytest.approx(30 + 36 + 30)
    assert all(o.counted for o in result.orders)
    assert [o.order_id for o in result.orders] == [
        "oxycodone-oral-20.0-False", "morphine-iv-12.0-False", "oxycodone-oral-20.0-False"]


def test_prn_tiers_of_the_same_drug_and_route_count_once_at_the_highest():
    moderate = exposure("oxycodone", dd(5, freq=6, prn=True), prn=True, order_id="moderate")
    severe = exposure("oxycodone", dd(10, freq=6, prn=True), prn=True, order_id="severe")
    result = total(moderate, severe)
    assert result.total == pytest.approx(90) and result.complete
    assert {o.order_id: o.counted for o in result.orders} == {"moderate": False, "severe": True}
    assert result.orders[0].mme == pytest.approx(45)  # still reported, just not counted


def test_prn_tiers_plus_scheduled_order():
    result = total(exposure("oxycodone", dd(10, freq=2)),
                   exposure("oxycodone", dd(5, freq=6, prn=True), prn=True),
                   exposure("oxycodone", dd(10, freq=6, prn=True), prn=True))
    assert result.total == pytest.approx(30 + 90)


def test_prn_of_different_drugs_or_routes_are_summed():
    result = total(exposure("oxycodone", dd(5, freq=6, prn=True), prn=True),
                   exposure("hydromorphone", dd(0.5, freq=6, prn=True, route="iv"), route="iv", prn=True),
                   exposure("hydromorphone", dd(2, freq=6, prn=True), prn=True))
    assert result.total == pytest.approx(45 + 60 + 60)
    assert all(o.counted for o in result.orders)


def test_unknown_prn_tier_makes_the_total_incomplete():
    known = exposure("oxycodone", dd(5, freq=6, prn=True), prn=True, order_id="known")
    unknown = exposure("oxycodone", dd(1, "puff", freq=6, prn=True), prn=True, order_id="unknown")
    result = total(known, unknown)
    assert result.complete is False
    assert result.total == pytest.approx(45)
    assert all(o.counted for o in result.orders)


def test_oud_orders_are_excluded_from_total_and_completeness():
    result = total(exposure("buprenorphine", dd(16, freq=1, route="sublingual"), route="sublingual", for_oud=True),
                   exposure("oxycodone", dd(5, freq=4)))
    assert result.total == pytest.approx(30) and result.complete
    assert [o.counted for o in result.orders] == [False, True]


def test_only_oud_treatment_is_zero_and_complete_but_listed():
    result = order("methadone", 80, freq=1, for_oud=True)
    assert result.total == 0 and result.complete
    assert len(result.orders) == 1 and not result.orders[0].counted
    assert result.orders[0].mme == pytest.approx(80 * 4.7)


def test_buprenorphine_for_pain_is_unknown_mme_and_incomplete():
    result = total(exposure("buprenorphine", dd(10, "mcg/h", route="transdermal"), route="transdermal"),
                   exposure("oxycodone", dd(5, freq=4)))
    assert result.complete is False
    assert result.total == pytest.approx(30)
    bup = result.orders[0]
    assert bup.counted and bup.factor is None and bup.mme is None


def test_unknown_daily_dose_makes_the_total_incomplete():
    result = total(exposure("morphine", dd(5, "units", freq=4)))
    assert result.complete is False and result.total == 0
    assert result.orders[0].daily_dose is None and result.orders[0].mme is None


def test_order_mme_carries_its_evidence():
    result = order("hydromorphone", 0.5, route="IV push", freq=6)
    (item,) = result.orders
    assert (item.ingredient, item.route, item.daily_dose, item.daily_dose_unit) == ("hydromorphone", "iv", 3, "mg")
    assert item.factor == pytest.approx(20) and item.mme == pytest.approx(60) and item.counted


def test_the_factor_set_changes_the_total():
    exposures = [exposure("hydromorphone", dd(4, freq=6)), exposure("tramadol", dd(50, freq=4))]
    assert patient_mme(exposures, CDC22).total == pytest.approx(120 + 40)
    result16 = patient_mme(exposures, CDC16)
    assert result16.total == pytest.approx(96) and result16.complete is False


# -- routes -------------------------------------------------------------------------------

@pytest.mark.parametrize("text,expected", [
    ("PO", "oral"), ("po", "oral"), ("P.O.", "oral"), ("by mouth", "oral"), ("oral", "oral"), ("Orally", "oral"),
    ("per os", "oral"), ("NG tube", "oral"), ("via G-tube", "oral"), ("PEG tube", "oral"), ("per tube", "oral"),
    ("SL", "sublingual"), ("sublingual", "sublingual"), ("under the tongue", "sublingual"),
    ("buccal", "buccal"), ("oral transmucosal", "buccal"),
    ("IV", "iv"), ("I.V.", "iv"), ("IVP", "iv"), ("IV push", "iv"), ("intravenous", "iv"), ("IVPB", "iv"),
    ("IV piggyback", "iv"), ("continuous infusion", "iv"), ("IV PCA", "iv"), ("PCA", "iv"), ("drip", "iv"),
    ("intraosseous", "iv"),
    ("SC", "sc"), ("SQ", "sc"), ("subcut", "sc"), ("subcutaneous", "sc"), ("Sub-Q", "sc"), ("subq", "sc"),
    ("IM", "im"), ("intramuscular", "im"), ("I.M.", "im"),
    ("TD", "transdermal"), ("transdermal", "transdermal"), ("patch", "transdermal"),
    ("topical patch", "transdermal"),
    ("PR", "rectal"), ("rectal", "rectal"), ("per rectum", "rectal"), ("suppository", "rectal"),
    ("IN", "intranasal"), ("intranasal", "intranasal"), ("nasal", "intranasal"), ("each nostril", "intranasal"),
    ("epidural", "epidural"), ("PCEA", "epidural"), ("epidural infusion", "epidural"),
    ("intrathecal", "intrathecal"), ("IT", "intrathecal"), ("spinal", "intrathecal"),
    ("topical", "other"), ("inhalation", "other"), ("nebulized", "other"), ("ophthalmic", "other"),
    ("vaginal", "other"), ("IO", "other"), ("OS", "other"), ("xyzzy", "other"), ("PO/IV", "other"),
    ("PO or SL", "other"), ("???", "other"), ("injection", "other"),
])
def test_normalize_route(text, expected):
    assert normalize_route(text) == expected


@pytest.mark.parametrize("code,expected", [
    ("26643006", "oral"), ("47625008", "iv"), ("34206005", "sc"), ("78421000", "im"), ("45890007", "transdermal"),
    ("37161004", "rectal"), ("37839007", "sublingual"), ("54471007", "buccal"), ("46713006", "intranasal"),
    ("404820008", "epidural"), ("72607000", "intrathecal"),
])
def test_snomed_route_codes(code, expected):
    assert normalize_route(code) == expected
    assert SNOMED_ROUTES[code] == expected


@pytest.mark.parametrize("text", [None, "", "   "])
def test_missing_route_is_none(text):
    assert normalize_route(text) is None


@pytest.mark.parametrize("route", ROUTES)
def test_normalize_route_is_idempotent(route):
    assert normalize_route(route) == route
    assert normalize_route(route.upper()) == route


@pytest.mark.parametrize("route,dose_unit,strength_unit,expected", [
    (None, "tablet", "mg", "oral"), (None, "caps", None, "oral"), (None, "patch", "mcg/h", "transdermal"),
    (None, "each", "mcg/hr", "transdermal"), (None, "mL", "mg/mL", None), (None, "mg", None, None),
    ("IV", "tablet", "mg", "iv"), ("", "tablet", None, "oral"),
])
def test_infer_route_from_the_dose_form(route, dose_unit, strength_unit, expected):
    assert infer_route(route, dose_unit, strength_unit) == expected


def test_inferred_oral_route_makes_morphine_tablets_countable():
    route = infer_route(None, "tablet", "mg")
    daily = dd(1, "tablet", strength=15, strength_unit="mg", freq=2, route=route)
    assert total(exposure("morphine", daily, route=route)).total == pytest.approx(30)


# -- OUD indication -----------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "opioid use disorder", "Opioid Use Disorder, severe", "OUD", "oud maintenance", "opioid dependence",
    "opiate dependence", "opioid addiction", "medication for opioid use disorder", "MOUD", "MAT",
    "maintenance therapy for opioid dependence", "Medication-assisted treatment", "F11.20", "F11.23 withdrawal",
    "methadone maintenance program", "opioid agonist therapy",
])
def test_oud_indications(text):
    assert is_oud_indication(text) is True


@pytest.mark.parametrize("text", [
    None, "", "pain", "chronic pain", "post-operative pain", "severe pain not relieved", "cancer pain",
    "cough", "dyspnea", "sedation", "restless legs", "OUD and chronic pain", "pain in patient with OUD",
    "matter", "format", "F41.1", "mathematics",
])
def test_not_oud_indications(text):
    assert is_oud_indication(text) is False


# -- properties ---------------------------------------------------------------------------

_POSITIVE = st.one_of(st.none(), st.floats(min_value=0, exclude_min=True, allow_nan=False),
                      st.integers(min_value=1, max_value=10**6))
_UNITS = st.one_of(st.none(), st.text(max_size=20),
                   st.sampled_from(["mg", "mcg", "g", "mg/h", "mcg/h", "mL", "tablet", "patch", "mg/mL", "mg/5 mL",
                                    "mcg/hr", "µg", "units", "each", "mL/h", "mg/day", "mg/24 h"]))


@settings(max_examples=400, deadline=None)
@given(dose=_POSITIVE, dose_max=_POSITIVE, dose_unit=_UNITS, strength=_POSITIVE, strength_unit=_UNITS,
       frequency=_POSITIVE, max_frequency=_POSITIVE, prn=st.booleans(), one_time=st.booleans(),
       route=st.one_of(st.none(), st.text(max_size=12), st.sampled_from(ROUTES)))
def test_daily_dose_never_raises(dose, dose_max, dose_unit, strength, strength_unit, frequency, max_frequency,
                                 prn, one_time, route):
    result = daily_dose(dose=dose, dose_max=dose_max, dose_unit=dose_unit, strength=strength,
                        strength_unit=strength_unit, frequency_per_day=frequency,
                        max_frequency_per_day=max_frequency, prn=prn, one_time=one_time, route=route)
    assert isinstance(result, DailyDose) and isinstance(result.note, str) and result.note
    if result.amount is None:
        assert result.unit is None
    else:
        assert math.isfinite(result.amount) and result.amount > 0
        assert result.unit in ("mg", "mcg", "mcg/h")


_CASES = st.sampled_from([
    ("oxycodone", "oral", "mg"), ("morphine", "iv", "mg/h"), ("fentanyl", "iv", "mcg/h"),
    ("fentanyl", "transdermal", "mcg/h"), ("hydromorphone", "sc", "mg"), ("methadone", "oral", "mg"),
    ("tramadol", "oral", "mg"), ("codeine", None, "mg"),
])


@settings(max_examples=300, deadline=None)
@given(case=_CASES, low=st.floats(min_value=0.01, max_value=500), high=st.floats(min_value=0.01, max_value=500),
       freq=st.floats(min_value=0.1, max_value=24), factors=st.sampled_from([CDC22, CDC16]), prn=st.booleans())
def test_mme_is_monotone_in_dose(case, low, high, freq, factors, prn):
    low, high = sorted((low, high))
    ingredient, route, unit = case

    def mme(dose: float) -> PatientMME:
        daily = dd(dose, unit, route=route, freq=freq, prn=prn)
        return total(exposure(ingredient, daily, route=route, prn=prn), factors=factors)

    smaller, larger = mme(low), mme(high)
    assert smaller.complete == larger.complete  # completeness depends on the drug, never on the amount
    assert smaller.total <= larger.total * (1 + 1e-12)


@settings(max_examples=200, deadline=None)
@given(doses=st.lists(st.tuples(st.sampled_from(["oxycodone", "morphine", "buprenorphine", "methadone"]),
                                st.floats(min_value=0.5, max_value=100), st.booleans(), st.booleans()),
                      max_size=6),
       factors=st.sampled_from([CDC22, CDC16]))
def test_total_is_the_sum_of_counted_known_orders(doses, factors):
    items = [exposure(name, dd(dose, freq=4, prn=prn), prn=prn, for_oud=oud, order_id=str(i))
             for i, (name, dose, prn, oud) in enumerate(doses)]
    result = patient_mme(items, factors)
    counted = [o for o in result.orders if o.counted]
    assert result.total == pytest.approx(sum(o.mme for o in counted if o.mme is not None))
    assert result.complete == all(o.mme is not None for o in counted)
    assert [o.order_id for o in result.orders] == [str(i) for i in range(len(doses))]
    assert not any(o.counted for o, (_, _, _, oud) in zip(result.orders, doses) if oud)

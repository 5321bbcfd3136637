"""Risky co-prescriptions: opioid + benzodiazepine / gabapentinoid, by setting and age."""

from __future__ import annotations

import json
from datetime import date

import pytest

from monitor.engine import Engine
from monitor.validation import decode_event
from tests.feeds import Patient, at, episodes, kinds, laxative, rules, run


def combo(partner: str = "lorazepam", *, birth_date: date | None = date(1970, 1, 1), monitored: bool | None = False,
          unit: str | None = "5 West Med-Surg", opioid_prn: bool = False, partner_prn: bool = False) -> Patient:
    p = Patient(birth_date=birth_date, monitored=monitored, unit=unit)
    p.rx(0, "OXY", "oxycodone", dose=5, frequency_per_day=4, prn=opioid_prn)
    laxative(p)
    p.rx(2, "PARTNER", partner, dose=1, frequency_per_day=2, prn=partner_prn)
    return p


def only(records, kind: str):
    [episode] = episodes(records, kind)
    return episode


def test_opioid_benzodiazepine_unmonitored_is_high() -> None:
    p = combo()
    records = run(p.events)
    episode = only(records, "opioid_benzodiazepine")
    assert episode.severities == ["high"] and episode.opened.raised_at == at(2)
    assert episode.opened.evidence == [p.events[0].event_id, p.events[2].event_id]
    assert episode.opened.details["drugs"] == ["lorazepam", "oxycodone"]
    assert kinds(records) == {"opioid_benzodiazepine"}


@pytest.mark.parametrize(("birth_date", "severity"), [
    (date(1961, 3, 3), "high"),      # 64 until tomorrow
    (date(1961, 3, 2), "critical"),  # 65 today
])
def test_age_65_is_the_line(birth_date: date, severity: str) -> None:
    assert only(run(combo(birth_date=birth_date).events), "opioid_benzodiazepine").severities == [severity]


def test_age_is_counted_on_the_hospitals_local_date() -> None:
    """20:00 at UTC-5 on 2 March is already 3 March in UTC: she is still 64 locally."""
    patient = {"id": "P1", "birth_date": "1961-03-03", "unit": "5 West Med-Surg", "monitored": False}
    lines = [
        {"type": "prescription", "event_id": "e1", "occurred_at": "2026-03-02T19:00:00-05:00", "patient": patient,
         "order_id": "O1", "action": "new", "drug": "oxycodone", "dose": 5, "dose_unit": "mg", "frequency_per_day": 4},
        {"type": "prescription", "event_id": "e2", "occurred_at": "2026-03-02T20:00:00-05:00", "patient": {"id": "P1"},
         "order_id": "O2", "action": "new", "drug": "lorazepam", "dose": 1, "dose_unit": "mg", "frequency_per_day": 2},
    ]
    engine = Engine(rules())
    records = [r for line in lines for r in engine.submit(decode_event(json.dumps(line).encode()))] + engine.finish()
    benzo = only(records, "opioid_benzodiazepine")
    assert (benzo.severities, benzo.opened.details["age"]) == (["high"], 64)


def test_turning_65_with_the_combination_active_raises_severity_at_the_next_look() -> None:
    p = combo(birth_date=date(1961, 3, 3))
    p.pain(30, 3)  # the day after the 65th birthday
    assert only(run(p.events), "opioid_benzodiazepine").severities == ["high", "critical"]


def test_monitored_unit_records_info_only() -> None:
    episode = only(run(combo(monitored=True, unit="MICU").events), "opioid_benzodiazepine")
    assert episode.severities == ["info"] and "monitored unit" in episode.opened.recommendation


def test_monitoring_is_derived_from_the_unit_when_not_stated() -> None:
    assert only(run(combo(monitored=None, unit="MICU 4").events), "opioid_benzodiazepine").severities == ["info"]
    ward = only(run(combo(monitored=None, unit="5 West Med-Surg").events), "opioid_benzodiazepine")
    assert ward.severities == ["high"] and "monitoring_unknown" not in ward.opened.flags


def test_unknown_monitoring_and_age_count_as_unmonitored_and_under_65_and_are_flagged() -> None:
    episode = only(run(combo(monitored=None, unit=None, birth_date=None).events), "opioid_benzodiazepine")
    assert episode.severities == ["high"]
    assert episode.opened.flags == ["age_unknown", "monitoring_unknown"]


def test_transfer_to_a_ward_raises_and_back_to_icu_downgrades_the_same_alert() -> None:
    p = combo(monitored=True, unit="MICU", birth_date=date(1950, 5, 5))
    p.transfer(10, "6 North", monitored=False)
    p.transfer(20, "SICU", monitored=True)
    episode = only(run(p.events), "opioid_benzodiazepine")
    assert episode.severities == ["info", "critical", "info"]
    assert [r.reason for r in episode.records] == ["opened", "severity_increased", "severity_decreased"]
    assert episode.records[1].raised_at == at(10) and episode.records[1].unit == "6 North"


def test_opioid_gabapentinoid_by_age_and_setting() -> None:
    assert only(run(combo("gabapentin").events), "opioid_gabapentinoid").severities == ["warning"]
    assert only(run(combo("pregabalin", birth_date=date(1955, 1, 1)).events),
                "opioid_gabapentinoid").severities == ["high"]
    assert episodes(run(combo("gabapentin", monitored=True, unit="CVICU").events)) == []


def test_transfer_to_icu_resolves_a_gabapentinoid_alert() -> None:
    p = combo("gabapentin")
    p.transfer(10, "MICU", monitored=True)
    episode = only(run(p.events), "opioid_gabapentinoid")
    assert episode.status == "resolved" and episode.records[-1].raised_at == at(10)


def test_triple_combination_is_critical() -> None:
    p = combo("lorazepam")
    p.rx(3, "GABA", "gabapentin", dose=300, frequency_per_day=3)
    records = run(p.events)
    benzo = only(records, "opioid_benzodiazepine")
    assert benzo.severities == ["high", "critical"] and benzo.records[-1].details["triple"] is True
    assert only(records, "opioid_gabapentinoid").severities == ["warning"]


def test_prn_only_combination_is_one_step_lower() -> None:
    assert only(run(combo(opioid_prn=True, partner_prn=True).events), "opioid_benzodiazepine").severities == ["warning"]
    # one scheduled side is not PRN-only
    assert only(run(combo(partner_prn=True).events), "opioid_benzodiazepine").severities == ["high"]


def test_prn_step_down_is_a_setting() -> None:
    p = combo(opioid_prn=True, partner_prn=True)
    assert only(run(p.events, prn_only_step_down=False), "opioid_benzodiazepine").severities == ["high"]


def test_comfort_care_suppresses_and_resolves() -> None:
    p = combo()
    p.update(5, comfort_care=True)
    episode = only(run(p.events), "opioid_benzodiazepine")
    assert (episode.status, episode.reason) == ("resolved", "comfort_care")
    q = Patient()
    q.update(0, comfort_care=True)
    q.rx(1, "OXY", "oxycodone", dose=5, frequency_per_day=4)
    laxative(q)
    q.rx(2, "LZP", "lorazepam", dose=1, frequency_per_day=2)
    assert episodes(run(q.events), "opioid_benzodiazepine") == []


def test_discontinue_resolves_and_a_new_combination_is_a_new_episode() -> None:
    p = combo()
    p.rx(5, "PARTNER", "lorazepam", "discontinue")
    p.rx(9, "DZP", "diazepam", dose=5, frequency_per_day=2)
    first, second = episodes(run(p.events), "opioid_benzodiazepine")
    assert (first.status, first.reason, first.records[-1].raised_at) == ("resolved", "condition_cleared", at(5))
    assert second.opened.raised_at == at(9) and second.opened.alert_id != first.opened.alert_id


def test_scheduled_end_ends_the_combination_without_another_event() -> None:
    p = Patient()
    p.rx(0, "OXY", "oxycodone", dose=5, frequency_per_day=4)
    laxative(p)
    p.rx(2, "LZP", "lorazepam", dose=1, frequency_per_day=2, end_at=at(8))
    other = Patient(id="P2")
    other.pain(20, 1)
    episode = only(run(p.events + other.events), "opioid_benzodiazepine")
    assert episode.status == "resolved" and episode.records[-1].raised_at == at(8)


def test_one_time_procedural_dose_counts_only_while_its_effect_lasts() -> None:
    p = Patient()
    p.rx(0, "OXY", "oxycodone", dose=5, frequency_per_day=4)
    laxative(p)
    p.rx(2, "MDZ", "midazolam", dose=2, frequency_per_day=None, one_time=True, route="IV")
    other = Patient(id="P2")
    other.pain(30, 1)
    episode = only(run(p.events + other.events), "opioid_benzodiazepine")
    assert episode.status == "resolved" and episode.records[-1].raised_at == at(14)  # 12 h later


@pytest.mark.parametrize("look_alike", ["hydroxyzine", "clonidine", "oxybutynin", "magnesium sulfate", "MgSO4"])
def test_look_alikes_do_not_combine(look_alike: str) -> None:
    assert episodes(run(combo(look_alike).events)) == []


def test_brand_names_and_combination_products_do_combine() -> None:
    p = Patient()
    p.rx(0, "PERC", "Percocet 5/325", dose=1, dose_unit="tablet", strength=5, strength_unit="mg", frequency_per_day=4)
    laxative(p)
    p.rx(1, "XAN", "Xanax", dose=0.5, frequency_per_day=3)
    assert only(run(p.events), "opioid_benzodiazepine").opened.details["drugs"] == ["alprazolam", "oxycodone"]


def test_age_is_counted_on_the_calendar_date_of_the_instant() -> None:
    """The day-cached age equals the calendar's answer around birthdays, day boundaries,
    leap days and before 1970."""
    from datetime import datetime, timedelta, timezone

    from monitor.clinical.context import age_in_years

    births = [date(1961, 3, 3), date(1960, 2, 29), date(2000, 12, 31), date(1930, 1, 1)]
    instants = [datetime(2026, 3, 2, 23, 59, 59, tzinfo=timezone.utc), datetime(2026, 3, 3, tzinfo=timezone.utc),
                datetime(2024, 2, 28, 23, 59, tzinfo=timezone.utc), datetime(2024, 2, 29, 0, 0, 1, tzinfo=timezone.utc),
                datetime(2025, 3, 1, tzinfo=timezone.utc) - timedelta(microseconds=1),
                datetime(1969, 12, 31, 12, tzinfo=timezone.utc), datetime(2030, 12, 31, 23, 59, 59, tzinfo=timezone.utc)]
    for birth in births:
        for instant in instants:
            expected = instant.year - birth.year - ((instant.month, instant.day) < (birth.month, birth.day))
            assert age_in_years(birth, instant.timestamp()) == expected, (birth, instant)

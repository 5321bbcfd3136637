"""Missing bowel regimen: the 24 h deadline, what counts as a regimen, what starts the clock."""

from __future__ import annotations

from datetime import date

import pytest

from tests.feeds import Patient, at, episodes, run


def opioid(birth_date: date | None = date(1970, 1, 1), **fields) -> Patient:
    p = Patient(birth_date=birth_date)
    p.rx(0, "OXY", "oxycodone", dose=5, frequency_per_day=4, **fields)
    return p


def time_passes(hours: float) -> list:
    """Another patient's event: event time moves on while P1 has no event."""
    other = Patient(id="P2")
    other.pain(hours, 2)
    return other.events


def test_fires_at_the_deadline_without_a_further_event_of_that_patient() -> None:
    p = opioid()
    [episode] = episodes(run(p.events + time_passes(30)), "missing_laxative")
    assert episode.severities == ["warning"]
    assert episode.opened.raised_at == at(24) and episode.opened.trigger_event_id is None
    assert episode.opened.evidence == [p.events[0].event_id]


def test_time_stops_at_the_last_event_offline() -> None:
    assert episodes(run(opioid().events + time_passes(23.9)), "missing_laxative") == []


def test_elderly_is_high() -> None:
    [episode] = episodes(run(opioid(birth_date=date(1950, 1, 1)).events + time_passes(30)), "missing_laxative")
    assert episode.severities == ["high"]


def test_scheduled_laxative_in_time_prevents_it() -> None:
    p = opioid()
    p.rx(10, "SEN", "senna", dose=8.6, frequency_per_day=2)
    assert episodes(run(p.events + time_passes(40)), "missing_laxative") == []


def test_laxative_ordered_later_resolves_it() -> None:
    p = opioid()
    p.rx(30, "PEG", "polyethylene glycol 3350", dose=17, dose_unit="g", frequency_per_day=1)
    [episode] = episodes(run(p.events + time_passes(40)), "missing_laxative")
    assert episode.status == "resolved" and episode.records[-1].raised_at == at(30)


@pytest.mark.parametrize("fields", [{"prn": True}, {"one_time": True, "frequency_per_day": None}])
def test_prn_or_one_time_laxative_is_not_a_regimen(fields: dict) -> None:
    p = opioid()
    p.rx(2, "SEN", "senna", dose=8.6, **{"frequency_per_day": 2, **fields})
    assert len(episodes(run(p.events + time_passes(30)), "missing_laxative")) == 1


def test_docusate_alone_is_not_a_regimen_unless_the_setting_says_so() -> None:
    p = opioid()
    p.rx(2, "DOC", "docusate sodium", dose=100, frequency_per_day=2)
    events = p.events + time_passes(30)
    assert len(episodes(run(events), "missing_laxative")) == 1
    assert episodes(run(events, docusate_counts_as_bowel_regimen=True), "missing_laxative") == []


def test_senna_docusate_combination_is_a_regimen() -> None:
    p = opioid()
    p.rx(2, "SS", "senna-docusate 8.6-50 mg", dose=2, dose_unit="tablet", frequency_per_day=2)
    assert episodes(run(p.events + time_passes(30)), "missing_laxative") == []


def test_one_time_opioid_does_not_start_the_clock() -> None:
    p = Patient()
    p.rx(0, "FEN", "fentanyl citrate", dose=50, dose_unit="mcg", frequency_per_day=None, one_time=True, route="IV")
    assert episodes(run(p.events + time_passes(30)), "missing_laxative") == []


def test_opioid_stopped_before_the_deadline_cancels_and_after_it_resolves() -> None:
    p = opioid()
    p.rx(20, "OXY", "oxycodone", "discontinue")
    assert episodes(run(p.events + time_passes(30)), "missing_laxative") == []
    q = opioid()
    q.rx(28, "OXY", "oxycodone", "discontinue")
    [episode] = episodes(run(q.events + time_passes(30)), "missing_laxative")
    assert episode.status == "resolved" and episode.records[-1].raised_at == at(28)


def test_magnesium_sulfate_iv_is_not_a_laxative() -> None:
    p = opioid()
    p.rx(2, "MG", "magnesium sulfate", dose=2, dose_unit="g", frequency_per_day=1, route="IV")
    assert len(episodes(run(p.events + time_passes(30)), "missing_laxative")) == 1


def test_grace_period_is_a_setting() -> None:
    from datetime import timedelta

    [episode] = episodes(run(opioid().events + time_passes(30), laxative_grace=timedelta(hours=12)),
                         "missing_laxative")
    assert episode.opened.raised_at == at(12)

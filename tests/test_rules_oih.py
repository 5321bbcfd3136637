"""OIH signature and opioid escalation while OIH is suspected: firing and non-firing edges."""

from __future__ import annotations

from tests.feeds import Patient, at, episodes, kinds, laxative, run

BASELINE_PAIN = [(2, 4), (8, 4), (14, 5), (20, 4)]
RISING_PAIN = [(35, 6), (40, 7), (44, 7)]


def oxycodone_escalation(dose_after: float = 10, escalate_at: float = 30,
                         rising: list[tuple[float, int]] = RISING_PAIN, **pain_fields) -> Patient:
    """Oxycodone 5 mg q6h (30 MME/day), raised at ``escalate_at`` h; pain rises after."""
    p = Patient()
    p.rx(0, "OXY", "oxycodone", dose=5, frequency_per_day=4)
    laxative(p)
    p.pains(BASELINE_PAIN)
    p.rx(escalate_at, "OXY", "oxycodone", "modify", dose=dose_after, frequency_per_day=4)
    p.pains(rising, **pain_fields)
    return p


def test_classic_signature_opens_a_warning_with_evidence() -> None:
    p = oxycodone_escalation()
    records = run(p.events)
    [oih] = episodes(records, "oih_suspected")
    assert oih.severities == ["warning"]
    opened = oih.opened
    assert opened.raised_at == at(40)  # the second score >= 4 h after the escalation
    assert opened.details["pre_escalation_mme"] == 30 and opened.details["escalated_mme"] == 60
    assert opened.details["baseline_pain_median"] == 4 and opened.details["recent_pain_median"] == 6.5
    assert p.events[0].event_id not in opened.evidence  # the 30 MME version was not the escalation
    scores_known_at_opening = {e.event_id for e in p.events if hasattr(e, "score") and e.occurred_at <= at(40)}
    assert scores_known_at_opening <= set(opened.evidence)
    assert "do not escalate" in opened.recommendation.lower()
    assert kinds(records) == {"oih_suspected"}


def test_opioid_naive_start_is_not_an_escalation() -> None:
    p = oxycodone_escalation(escalate_at=20)  # only 20 h of exposure before the rise
    assert episodes(run(p.events), "oih_suspected") == []


def _morphine(base_dose: float, new_dose: float) -> Patient:
    p = Patient()
    p.rx(0, "MOR", "morphine sulfate", dose=base_dose, frequency_per_day=4, route="PO")
    laxative(p)
    p.pains(BASELINE_PAIN)
    p.rx(30, "MOR", "morphine sulfate", "modify", dose=new_dose, frequency_per_day=4, route="PO")
    p.pains(RISING_PAIN)
    return p


def test_rise_of_exactly_thirty_percent_counts_and_just_below_does_not() -> None:
    assert len(episodes(run(_morphine(10, 13).events), "oih_suspected")) == 1  # 40 -> 52: +30%, +12
    assert episodes(run(_morphine(10, 12.9).events), "oih_suspected") == []  # 40 -> 51.6: +29%


def test_rise_needs_ten_mme_as_well() -> None:
    assert len(episodes(run(_morphine(5, 7.5).events), "oih_suspected")) == 1  # 20 -> 30: +10
    assert episodes(run(_morphine(5, 7.25).events), "oih_suspected") == []  # 20 -> 29: +45% but +9


def test_pain_rise_below_two_points_does_not_fire() -> None:
    p = oxycodone_escalation(rising=[(35, 5), (40, 6), (44, 5)])  # median 5: +1
    assert episodes(run(p.events), "oih_suspected") == []


def test_scores_within_four_hours_of_the_escalation_do_not_count() -> None:
    p = oxycodone_escalation(rising=[(31, 8), (33.9, 8), (36, 7)])  # only one score >= 4 h after
    assert episodes(run(p.events), "oih_suspected") == []
    p.pain(40, 7)
    assert len(episodes(run(p.events), "oih_suspected")) == 1


def test_documented_disease_progression_suppresses() -> None:
    p = oxycodone_escalation()
    p.update(25, disease_progression=True)
    assert episodes(run(p.events), "oih_suspected") == []


def test_progression_documented_after_the_alert_resolves_it() -> None:
    p = oxycodone_escalation()
    p.update(46, disease_progression=True)
    [oih] = episodes(run(p.events), "oih_suspected")
    assert (oih.status, oih.reason) == ("resolved", "disease_progression")


def test_pain_spreading_to_a_new_site_is_high() -> None:
    p = Patient()
    p.rx(0, "OXY", "oxycodone", dose=5, frequency_per_day=4)
    laxative(p)
    p.pains(BASELINE_PAIN, body_site="lower back")
    p.rx(30, "OXY", "oxycodone", "modify", dose=10, frequency_per_day=4)
    p.pains([(35, 6), (40, 7)], body_site="lower back")
    p.pain(44, 7, body_site="Both legs")
    [oih] = episodes(run(p.events), "oih_suspected")
    assert oih.severities == ["warning", "high"]
    assert oih.records[1].details["new_pain_sites"] == ["both legs"]


def test_allodynia_is_high() -> None:
    [oih] = episodes(run(oxycodone_escalation(allodynia=True).events), "oih_suspected")
    assert oih.severities == ["high"]


def test_total_of_ninety_mme_is_high() -> None:
    [oih] = episodes(run(oxycodone_escalation(dose_after=15).events), "oih_suspected")
    assert oih.severities == ["high"]
    assert oih.opened.details["total_mme"] == 90


def test_escalation_while_oih_is_open_raises_a_high_alert() -> None:
    p = oxycodone_escalation()
    raise_again = p.rx(48, "OXY", "oxycodone", "modify", dose=12.5, frequency_per_day=4)  # 60 -> 75
    records = run(p.events)
    [escalation] = episodes(records, "opioid_escalation_during_oih")
    assert escalation.severities == ["high"]
    assert escalation.opened.raised_at == at(48)
    assert raise_again.event_id in escalation.opened.evidence
    assert escalation.opened.details == {"mme_before": 60, "total_mme": 75, "mme_complete": True}


def test_escalation_before_oih_is_suspected_is_not_that_alert() -> None:
    p = oxycodone_escalation()
    p.events = [e for e in p.events if e.occurred_at < at(36)]
    p.rx(37, "OXY", "oxycodone", "modify", dose=12.5, frequency_per_day=4)
    assert episodes(run(p.events), "opioid_escalation_during_oih") == []


def test_dose_back_to_pre_escalation_level_resolves_both() -> None:
    p = oxycodone_escalation()
    p.rx(48, "OXY", "oxycodone", "modify", dose=12.5, frequency_per_day=4)
    p.rx(60, "OXY", "oxycodone", "modify", dose=5, frequency_per_day=4)
    records = run(p.events)
    [oih] = episodes(records, "oih_suspected")
    [escalation] = episodes(records, "opioid_escalation_during_oih")
    assert (oih.status, oih.reason, oih.records[-1].raised_at) == ("resolved", "dose_reduced", at(60))
    assert escalation.status == "resolved"


def test_a_whole_window_without_the_signature_resolves_on_time_alone() -> None:
    p = oxycodone_escalation()
    other = Patient(id="P2")
    other.pain(40 + 7 * 24 + 5, 3)  # keeps event time moving; P1 has no further event
    [oih] = episodes(run(p.events + other.events), "oih_suspected")
    assert oih.status == "resolved" and oih.reason == "window_elapsed"
    assert oih.records[-1].raised_at == at(44 + 7 * 24)  # last seen at 44 h, plus 7 days


def test_rotation_with_stable_pain_does_not_alert() -> None:
    p = Patient()
    p.rx(0, "MOR", "morphine", dose=10, frequency_per_day=4, route="PO")
    laxative(p)
    p.pains(BASELINE_PAIN)
    p.rx(30, "MOR", "morphine", "discontinue")
    p.rx(30.5, "MTD", "methadone", dose=10, frequency_per_day=3, route="PO")  # 40 -> 141 computed MME
    p.pains([(35, 4), (40, 5), (44, 4)])
    assert kinds(run(p.events)) == set()


def test_rotation_with_rising_pain_is_noted_as_info_only() -> None:
    p = Patient()
    p.rx(0, "MOR", "morphine", dose=10, frequency_per_day=4, route="PO")
    laxative(p)
    p.pains(BASELINE_PAIN)
    p.rx(30.5, "MTD", "methadone", dose=10, frequency_per_day=3, route="PO")
    p.rx(31, "MOR", "morphine", "discontinue")  # the stop may follow the start
    p.pains(RISING_PAIN)
    records = run(p.events)
    [oih] = episodes(records, "oih_suspected")
    assert oih.max_severity == "info" and oih.opened.details["rotation"] is True
    assert episodes(records, "opioid_escalation_during_oih") == []


def test_escalation_after_a_rotation_is_measured_from_the_rotated_regimen() -> None:
    p = Patient()
    p.rx(0, "MOR", "morphine", dose=10, frequency_per_day=4, route="PO")
    laxative(p)
    p.rx(30, "MOR", "morphine", "discontinue")
    p.rx(30, "MTD", "methadone", dose=10, frequency_per_day=3, route="PO")  # 141 MME (cdc-2022 4.7)
    p.pains([(40, 4), (46, 4), (52, 5), (58, 4)])
    p.rx(62, "MTD", "methadone", "modify", dose=15, frequency_per_day=3, route="PO")  # 211.5: +50%
    p.pains([(67, 7), (72, 7)])
    [oih] = episodes(run(p.events), "oih_suspected")
    assert oih.opened.details["pre_escalation_mme"] == 141 and oih.max_severity == "high"


def test_unknown_mme_makes_the_total_incomplete_and_silences_the_comparison() -> None:
    p = oxycodone_escalation()
    p.rx(1, "BUP", "buprenorphine", dose=5, dose_unit="mcg/h", frequency_per_day=None, route="transdermal")
    assert episodes(run(p.events), "oih_suspected") == []


def test_buprenorphine_for_opioid_use_disorder_stays_out_of_mme_rules() -> None:
    p = oxycodone_escalation()
    p.rx(1, "BUP", "buprenorphine-naloxone", dose=8, frequency_per_day=1, route="SL",
         indication="opioid use disorder")
    assert len(episodes(run(p.events), "oih_suspected")) == 1


def test_prn_counts_at_its_maximum_daily_dose() -> None:
    p = Patient()
    p.rx(0, "OXY", "oxycodone", dose=5, frequency_per_day=4)
    laxative(p)
    p.pains(BASELINE_PAIN)
    # 30 MME scheduled + PRN up to 10 mg q4h (60 mg, 90 MME) = 120 MME
    p.rx(30, "OXYPRN", "oxycodone", dose=5, dose_max=10, frequency_per_day=6, prn=True)
    p.pains(RISING_PAIN)
    [oih] = episodes(run(p.events), "oih_suspected")
    assert oih.opened.details["escalated_mme"] == 120 and oih.max_severity == "high"

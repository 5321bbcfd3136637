"""The pharmacist's actions in the pure layer: snooze suppresses, a rise breaks through,
the snooze's end re-raises, acknowledgements are recorded, and actions never move time."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from itertools import count

from hypothesis import given, settings, strategies as st

from monitor.alerts import AlertRecord
from monitor.engine import Engine
from monitor.events import AlertAction, PatientRef
from monitor.live import StoredPatient
from tests.feeds import Patient, at, laxative, rules

#: No lateness: each event is applied as it is submitted, so a test can act "after" an alert.
PROMPT = {"allowed_lateness": timedelta(0)}
#: The pharmacist's wall clock: far from the feed's event time, as in the demo.
WALL = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
_serial = count(1)


def action(record: AlertRecord, what: str = "snooze", hours: float = 4, user: str = "pharm.lee",
           event_id: str | None = None) -> AlertAction:
    fields = {"snooze_for": timedelta(hours=hours)} if what == "snooze" else {"intervention": "dose_reduced"}
    return AlertAction(event_id=event_id or f"act-{next(_serial)}", occurred_at=WALL,
                       patient=PatientRef(id=record.patient_id), action=what, alert_id=record.alert_id,
                       kind=record.kind, user=user, revision=record.revision, **fields)


def benzo_patient() -> Patient:
    """Oxycodone + lorazepam on a ward: opioid_benzodiazepine, high, opened at h2."""
    p = Patient()
    p.rx(0, "OXY", "oxycodone", dose=5, frequency_per_day=4)
    laxative(p)
    p.rx(2, "BENZO", "lorazepam", dose=1, frequency_per_day=2)
    return p


def tick(h: float) -> list:
    """Another patient's event: event time moves on."""
    other = Patient(id="P2")
    other.pain(h, 2)
    return other.events


class Run:
    """An engine driven step by step, collecting what it publishes."""

    def __init__(self, **overrides: object) -> None:
        self.engine = Engine(rules(**{**PROMPT, **overrides}))
        self.records: list[AlertRecord] = []

    def feed(self, events) -> list[AlertRecord]:  # type: ignore[no-untyped-def]
        new = [record for event in events for record in self.engine.submit(event)]
        self.records.extend(new)
        return new

    def opened(self, kind: str = "opioid_benzodiazepine") -> AlertRecord:
        return next(r for r in self.records if r.kind.value == kind and r.status.value == "open")

    def of(self, alert_id: str) -> list[tuple[int, str, str, str]]:
        return [(r.revision, r.status.value, r.severity.value, r.reason) for r in self.records if r.alert_id == alert_id]


def test_snooze_hides_same_and_lower_severity_until_it_ends_then_re_raises() -> None:
    run = Run()
    run.feed(benzo_patient().events)
    alert = run.opened()
    assert run.feed([action(alert, hours=4)]) == []  # applied at the patient's clock, h2: until h6
    p = Patient()
    run.feed([p.transfer(3, "MICU", True), p.transfer(4, "5 West Med-Surg", False)])  # info, then high again
    assert run.of(alert.alert_id) == [(1, "open", "high", "opened")]
    run.feed(tick(7))  # event time passes h6
    assert run.of(alert.alert_id) == [(1, "open", "high", "opened"), (2, "updated", "high", "snooze_expired")]
    expired = run.records[-1]
    assert expired.raised_at == at(6) and expired.summary and expired.evidence_items


def test_snooze_end_publishes_the_severity_reached_meanwhile() -> None:
    run = Run()
    run.feed(benzo_patient().events)
    alert = run.opened()
    run.feed([action(alert, hours=4), Patient().transfer(3, "MICU", True)])
    run.feed(tick(8))
    assert run.of(alert.alert_id)[-1] == (2, "updated", "info", "snooze_expired")


def test_a_severity_rise_breaks_through_the_snooze_and_ends_it() -> None:
    run = Run()
    p = benzo_patient()
    run.feed(p.events)
    alert = run.opened()
    run.feed([action(alert, hours=4)])
    run.feed([p.rx(3, "GABA", "gabapentin", dose=300, frequency_per_day=3)])  # triple: critical
    assert run.of(alert.alert_id)[-1] == (2, "updated", "critical", "severity_increased")
    run.feed(tick(12))
    assert [r for r in run.of(alert.alert_id) if r[3] == "snooze_expired"] == []


def test_resolutions_always_publish_even_while_snoozed() -> None:
    run = Run()
    p = benzo_patient()
    run.feed(p.events)
    alert = run.opened()
    run.feed([action(alert, hours=12), p.rx(3, "BENZO", "lorazepam", "discontinue")])
    assert run.of(alert.alert_id)[-1] == (2, "resolved", "high", "condition_cleared")
    run.feed(tick(20))
    assert len(run.of(alert.alert_id)) == 2


def test_acknowledgement_is_recorded_in_event_time_and_survives_the_changelog() -> None:
    run = Run()
    p = benzo_patient()
    run.feed(p.events)
    alert = run.opened()
    assert run.feed([action(alert, "acknowledge", user="pharm.kim")]) == []
    state = run.engine.states["P1"]
    [episode] = [e for e in state.episodes.values() if e.alert_id == alert.alert_id]
    assert (episode.acknowledged_at, episode.acknowledged_by) == (at(2).timestamp(), "pharm.kim")
    stored = StoredPatient.from_bytes(StoredPatient(0, state, []).to_bytes())
    [restored] = [e for e in stored.state.episodes.values() if e.alert_id == alert.alert_id]
    assert (restored.acknowledged_at, restored.acknowledged_by) == (at(2).timestamp(), "pharm.kim")
    run.feed([p.rx(3, "GABA", "gabapentin", dose=300, frequency_per_day=3)])  # a rise: a new look is needed
    assert episode.acknowledged_at is None and run.of(alert.alert_id)[-1][3] == "severity_increased"


def test_acknowledging_ends_a_snooze() -> None:
    run = Run()
    run.feed(benzo_patient().events)
    alert = run.opened()
    run.feed([action(alert, hours=2), action(alert, "acknowledge")])
    run.feed(tick(10))
    assert run.of(alert.alert_id) == [(1, "open", "high", "opened")]


def test_actions_on_unknown_or_resolved_alerts_change_nothing_and_are_counted() -> None:
    run = Run()
    p = benzo_patient()
    run.feed(p.events)
    alert = run.opened()
    run.feed([p.rx(3, "BENZO", "lorazepam", "discontinue")])
    before = run.engine.states["P1"].to_dict()
    unknown = alert.model_copy(update={"alert_id": "no-such-alert"})
    stranger = alert.model_copy(update={"patient_id": "NOBODY"})
    assert run.feed([action(alert), action(unknown), action(stranger, "acknowledge")]) == []
    assert run.engine.stats.actions == {"snooze/unknown_alert": 2, "acknowledge/unknown_alert": 1}
    after = run.engine.states["P1"].to_dict()
    assert {k: v for k, v in after.items() if k != "r"} == {k: v for k, v in before.items() if k != "r"}


def test_a_redelivered_action_is_dropped_by_event_id() -> None:
    run = Run()
    run.feed(benzo_patient().events)
    alert = run.opened()
    snooze = action(alert, hours=1, event_id="act-once")
    run.feed([snooze])
    run.feed(tick(4))  # the snooze ended at h3
    assert run.of(alert.alert_id)[-1][3] == "snooze_expired"
    run.feed([snooze])  # re-delivered after a restart: must not snooze again
    assert run.engine.stats.actions["snooze/duplicate"] == 1 and run.engine.stats.duplicates == 1
    episode = next(iter(run.engine.states["P1"].episodes.values()))
    assert episode.snoozed_until is None


def test_an_action_never_moves_event_time() -> None:
    run = Run(allowed_lateness=timedelta(minutes=10))
    run.feed(benzo_patient().events + tick(2.5))
    alert = run.opened()
    watermark, newest = run.engine.watermark, run.engine.max_event_time
    run.feed([action(alert, "acknowledge")])  # occurred_at is the wall clock, months after the feed
    assert (run.engine.watermark, run.engine.max_event_time) == (watermark, newest)
    assert run.engine.held == 1  # the other patient's event still waits for the watermark


@settings(max_examples=25, deadline=None)
@given(hours=st.floats(min_value=0.25, max_value=24), cut=st.integers(min_value=0, max_value=6),
       ack=st.booleans())
def test_replays_of_inputs_and_actions_agree_across_a_restart(hours: float, cut: int, ack: bool) -> None:
    """The same inputs and actions give the same records, whether the engine runs straight
    through or is rebuilt from its stored patients (the changelog) at any point."""
    p = benzo_patient()
    later = [p.transfer(5, "MICU", True), p.transfer(9, "5 West Med-Surg", False),
             p.rx(14, "GABA", "gabapentin", dose=300, frequency_per_day=3), *tick(20), *tick(40)]

    def replay(restart_at: int | None) -> list[str]:
        run = Run()
        run.feed(p.events)
        alert = run.opened()
        run.feed([action(alert, hours=hours, event_id="act-a")])
        if ack:
            run.feed([action(alert, "acknowledge", event_id="act-b")])
        for index, event in enumerate(later):
            if index == restart_at:
                stored = {pid: StoredPatient.from_bytes(StoredPatient(0, s, []).to_bytes())
                          for pid, s in run.engine.states.items()}
                engine = Engine(run.engine.rules)
                for pid, patient in stored.items():
                    engine.states[pid] = patient.state  # type: ignore[assignment]
                engine.recover()
                engine.watermark = run.engine.watermark
                run.engine = engine
                run.feed([action(alert, hours=hours, event_id="act-a")])  # re-delivered: dropped
            run.feed([event])
        run.records.extend(run.engine.finish())
        return [r.model_dump_json() for r in run.records]

    assert replay(cut) == replay(None)

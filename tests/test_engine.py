"""The engine: orders' lifecycle, idempotency, event-time order, lateness, bounded state."""

from __future__ import annotations

import dataclasses
import json
import pickle
import random
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.clinical.state import PatientState
from monitor.engine import Engine
from monitor.events import Prescription
from tests.feeds import Patient, at, episodes, kinds, laxative, rules, run
from tests.test_rules_oih import oxycodone_escalation


def mixed_feed() -> list:
    """Three patients exercising every rule; events interleaved by time."""
    oih = oxycodone_escalation()
    oih.rx(48, "OXY", "oxycodone", "modify", dose=12.5, frequency_per_day=4)
    combo = Patient(id="P2")
    combo.rx(0, "MOR", "morphine", dose=10, frequency_per_day=4, route="PO")
    combo.rx(1, "LZP", "lorazepam", dose=1, frequency_per_day=2)
    combo.rx(3, "GAB", "gabapentin", dose=300, frequency_per_day=3)
    combo.transfer(6, "MICU", monitored=True)
    combo.rx(40, "SEN", "senna", dose=8.6, frequency_per_day=2)
    combo.rx(50, "LZP", "lorazepam", "entered_in_error")
    lax = Patient(id="P3")
    lax.rx(10, "HYD", "hydromorphone", dose=0.5, frequency_per_day=6, route="IV")
    lax.pain(70, 3)
    return sorted(oih.events + combo.events + lax.events, key=lambda e: e.occurred_at)


def canonical(records) -> list[str]:
    return sorted(r.model_dump_json() for r in records)


def test_same_feed_same_records_and_ids() -> None:
    assert canonical(run(mixed_feed())) == canonical(run(mixed_feed()))
    assert kinds(run(mixed_feed())) == {"oih_suspected", "opioid_escalation_during_oih", "opioid_benzodiazepine",
                                        "opioid_gabapentinoid", "missing_laxative"}


def test_duplicate_delivery_changes_nothing() -> None:
    feed = mixed_feed()
    engine = Engine(rules())
    records = run([e for event in feed for e in (event, event)], engine)
    assert canonical(records) == canonical(run(feed))
    assert engine.stats.duplicates == len(feed)


def test_duplicate_long_after_is_idempotent_too() -> None:
    feed = mixed_feed()
    engine = Engine(rules())
    records = run(feed + [feed[0], feed[5]], engine)  # re-delivered after a restart, say
    assert canonical(records) == canonical(run(feed))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1))
def test_any_permutation_within_the_allowed_lateness_gives_the_same_records(seed: int) -> None:
    feed = mixed_feed()
    lateness = timedelta(minutes=10)
    rng = random.Random(seed)
    # Delay each event by up to the allowed lateness, then deliver in that order.
    delivered = sorted(feed, key=lambda e: e.occurred_at + timedelta(seconds=rng.uniform(0, lateness.total_seconds())))
    assert canonical(run(delivered, allowed_lateness=lateness)) == canonical(run(feed, allowed_lateness=lateness))


def test_cross_topic_disorder_within_lateness_does_not_create_a_transient_alert() -> None:
    p = Patient()
    p.rx(0, "OXY", "oxycodone", dose=5, frequency_per_day=4)
    laxative(p)
    lzp = p.rx(2, "LZP", "lorazepam", dose=1, frequency_per_day=2)
    stop = p.rx(2.05, "OXY", "oxycodone", "discontinue")  # 3 minutes later
    in_order = run(p.events)
    stop_first = [e for e in p.events if e not in (lzp, stop)] + [stop, lzp]
    assert canonical(run(stop_first)) == canonical(in_order)


def _opioid_score_and_a_late_benzodiazepine() -> tuple[Patient, Prescription]:
    """Oxycodone at 0 h, a score at 5 h, and lorazepam at 2 h that will be delivered last."""
    p = Patient()
    p.rx(0, "OXY", "oxycodone", dose=5, frequency_per_day=4)
    laxative(p)
    p.pain(5, 3)
    return p, p.rx(2, "LZP", "lorazepam", dose=1, frequency_per_day=2)


def test_events_older_than_the_watermark_are_applied_late_and_counted() -> None:
    p, late_benzo = _opioid_score_and_a_late_benzodiazepine()
    other = Patient(id="P2")
    other.pain(6, 2)  # moves event time past P1's 5 h score, which is then applied
    engine = Engine(rules())
    records = run([e for e in p.events if e is not late_benzo] + other.events + [late_benzo], engine)
    assert engine.stats.late == 1
    [episode] = episodes(records, "opioid_benzodiazepine")
    assert episode.opened.raised_at == at(5)  # judged at the patient's time when it arrived


def test_an_event_behind_the_watermark_but_not_behind_its_patient_keeps_its_own_time() -> None:
    p, late_benzo = _opioid_score_and_a_late_benzodiazepine()
    engine = Engine(rules())
    records = run([e for e in p.events if e is not late_benzo] + [late_benzo], engine)
    assert engine.stats.late == 1  # the 5 h score set the watermark to 4:50
    [episode] = episodes(records, "opioid_benzodiazepine")
    assert episode.opened.raised_at == at(2)  # the 5 h score was still held: no patient time to lose


def test_modify_replaces_the_order() -> None:
    p = Patient()
    p.rx(0, "X", "oxycodone", dose=5, frequency_per_day=4)
    laxative(p)
    p.rx(1, "Y", "lorazepam", dose=1, frequency_per_day=2)
    p.rx(2, "X", "acetaminophen", "modify", dose=650, frequency_per_day=4)  # no longer an opioid
    [episode] = episodes(run(p.events), "opioid_benzodiazepine")
    assert episode.status == "resolved" and episode.records[-1].raised_at == at(2)


def test_entered_in_error_retracts_the_alert_it_alone_caused() -> None:
    p = Patient()
    p.rx(0, "OXY", "oxycodone", dose=5, frequency_per_day=4)
    laxative(p)
    lzp = p.rx(1, "LZP", "lorazepam", dose=1, frequency_per_day=2)
    p.rx(1.5, "LZP", "lorazepam", "entered_in_error")
    [episode] = episodes(run(p.events), "opioid_benzodiazepine")
    assert (episode.status, episode.reason) == ("resolved", "retracted")
    assert lzp.event_id in episode.opened.evidence


def test_entered_in_error_keeps_an_alert_other_orders_still_cause() -> None:
    p = Patient()
    p.rx(0, "OXY", "oxycodone", dose=5, frequency_per_day=4)
    laxative(p)
    p.rx(1, "LZP", "lorazepam", dose=1, frequency_per_day=2)
    p.rx(1.2, "DZP", "diazepam", dose=5, frequency_per_day=2)
    p.rx(1.5, "LZP", "lorazepam", "entered_in_error")
    [episode] = episodes(run(p.events), "opioid_benzodiazepine")
    assert episode.status == "updated" and episode.reason == "evidence_retracted"
    assert episode.records[-1].details["drugs"] == ["diazepam", "oxycodone"]


def test_entered_in_error_rewrites_mme_history() -> None:
    p = oxycodone_escalation()
    extra = p.events[-4]  # the escalating modify at 30 h
    assert extra.action.value == "modify"
    p.events.remove(extra)
    p.rx(30, "OXY2", "oxycodone", dose=5, frequency_per_day=4)  # a second order doubles the total
    p.events.sort(key=lambda e: e.occurred_at)
    p.rx(46, "OXY2", "oxycodone", "entered_in_error")
    [oih] = episodes(run(p.events), "oih_suspected")
    assert (oih.status, oih.reason) == ("resolved", "retracted")


def test_discharge_resolves_everything_and_forgets_the_patient() -> None:
    p = Patient()
    p.rx(0, "OXY", "oxycodone", dose=5, frequency_per_day=4)
    p.rx(1, "LZP", "lorazepam", dose=1, frequency_per_day=2)
    p.update(30, discharged=True)
    engine = Engine(rules())
    records = run(p.events, engine)
    assert {(e.kind, e.status, e.reason) for e in episodes(records)} == {
        ("opioid_benzodiazepine", "resolved", "discharged"), ("missing_laxative", "resolved", "discharged")}
    assert "P1" not in engine.states


def test_state_is_bounded_over_a_long_stay() -> None:
    p = Patient()
    laxative(p)
    for day in range(60):
        p.rx(day * 24 + 1, "OXY", "oxycodone", "modify" if day else "new", dose=5 + day % 3, frequency_per_day=4)
        p.pains((day * 24 + h, 4) for h in (2, 6, 10, 14, 18, 22))
    engine = Engine(rules())
    run(p.events, engine)
    state = engine.states["P1"]
    assert len(state.pain) <= 7 * 6 + 1  # 7 days of 6 scores; both window ends inclusive
    assert len(state.orders["OXY"].versions) <= 9
    assert len(state.recent_ids) <= 64
    assert len(json.dumps(state.to_dict())) < 6000


def test_recent_ids_are_told_apart_by_the_id_not_only_its_hash() -> None:
    """The hash array answers for new ids; a matching hash (a collision, forced here) is
    confirmed against the ids, and an id restored from a stored record is still known."""
    from array import array

    state = PatientState("P1")
    for event_id in ("a", "b", "c"):
        state.remember(event_id, limit=2)
    assert state.recent_ids == ["b", "c"] and not state.seen("a") and state.seen("c")
    state.recent_hashes = array("q", [hash("b"), hash("z")])  # "z" collides with "c"
    assert not state.seen("z") and state.seen("b")
    restored = PatientState.from_dict(json.loads(json.dumps(PatientState("P1", recent_ids=["x"]).to_dict())))
    assert restored.seen("x") and not restored.seen("y")
    assert PatientState("P1", recent_ids=["x"]).seen("x")  # the array follows ids given to the constructor
    assert dataclasses.replace(restored, recent_ids=["w"]).seen("w")
    restored.recent_hashes = array("q", [1])  # as if hashed by another process
    assert not restored.seen("x")
    unpickled = pickle.loads(pickle.dumps(restored))
    assert unpickled.seen("x") and unpickled.to_dict() == restored.to_dict()  # built again, not carried over


def test_state_survives_serialization_mid_feed() -> None:
    feed = mixed_feed()
    whole = run(feed)
    engine = Engine(rules())
    first = []
    cut = len(feed) // 2
    for event in feed[:cut]:
        first.extend(engine.submit(event))
    restored = Engine(rules())
    for pid, state in engine.states.items():
        restored.states[pid] = PatientState.from_dict(json.loads(json.dumps(state.to_dict())))
    restored.recover()
    # The restarted engine re-reads from the last event whose effects were released.
    rest = run(feed[cut - engine.held:], restored)
    assert canonical(first + rest) == canonical(whole)


def test_a_patient_silent_for_the_idle_limit_is_presumed_gone_and_forgotten() -> None:
    p = Patient()
    p.rx(0, "OXY", "oxycodone", dose=5, frequency_per_day=4)
    laxative(p)
    p.rx(1, "LZP", "lorazepam", dose=1, frequency_per_day=2)  # no discharge message ever comes
    clock = Patient(id="P2")
    clock.pain(1 + 30 * 24 - 1, 2)  # event time just short of the limit
    engine = Engine(rules())
    records = run(p.events + clock.events, engine)
    assert [e.status for e in episodes(records, "opioid_benzodiazepine")] == ["open"]
    clock.pain(1 + 32 * 24, 2)  # and past it
    records = run(p.events + clock.events, engine := Engine(rules()))
    [episode] = episodes(records, "opioid_benzodiazepine")
    assert (episode.status, episode.reason, episode.records[-1].raised_at) == ("resolved", "inactive", at(1 + 30 * 24))
    assert "P1" not in engine.states


def test_a_patient_back_after_the_idle_limit_starts_afresh() -> None:
    p = Patient()
    p.rx(0, "OXY", "oxycodone", dose=5, frequency_per_day=4)
    laxative(p)
    p.rx(1, "LZP", "lorazepam", dose=1, frequency_per_day=2)
    p.rx(40 * 24, "OXY2", "oxycodone", dose=5, frequency_per_day=4)
    laxative(p, 40 * 24)
    benzo = episodes(run(p.events), "opioid_benzodiazepine")
    assert [(e.status, e.reason) for e in benzo] == [("resolved", "inactive")]  # the old lorazepam is gone


def test_every_scheduled_deadline_is_the_one_the_state_gives() -> None:
    """The engine schedules each patient's next deadline from the orders the judgement just
    found active, instead of finding them again: over a busy census (the benchmark's mix,
    every rule, late and out-of-order arrivals within the lateness) each schedule equals
    the deadline the state alone gives."""
    from monitor.benchmarks.feed import load_feed, patients_feed
    from monitor.demo import FEED_PATH
    from monitor.validation import decode_event

    events = [decode_event(json.dumps(event).encode()) for event in patients_feed(load_feed(FEED_PATH), 40)]
    head = events[:300]
    random.Random(7).shuffle(head)  # disorder at the start: some held, some late
    events[:300] = head
    engine = Engine(rules())
    checked = 0
    for event in events:
        engine.submit(event)
        for patient_id in engine.take_touched():
            state = engine.states.get(patient_id)
            if state is not None and patient_id in engine._scheduled:
                assert engine._scheduled[patient_id] == engine.processor.next_deadline(state), patient_id
                checked += 1
    assert checked > len(events) / 2


def test_a_deadline_that_moves_later_is_pushed_again_only_when_its_entry_comes_due() -> None:
    """Every event moves its patient's idle deadline later. The engine keeps the earlier
    heap entry instead of pushing one per event, and when that entry comes due it is pushed
    again at the schedule's time: the patient expires at the latest deadline, not the first."""
    p = Patient(id="P1")
    p.pains((h, 5) for h in range(200))
    engine = Engine(rules())
    for event in p.events:
        engine.submit(event)
    assert len(engine._deadlines) == 1  # pushed for the first event only
    ttl = rules().settings.patient_idle_ttl.total_seconds()
    first, last = p.events[0].occurred_at.timestamp(), p.events[-1].occurred_at.timestamp()
    engine.advance(first + ttl + 1)
    assert "P1" in engine.states and engine._deadlines == [(last + ttl, "P1")]
    engine.advance(last + ttl + 1)
    assert "P1" not in engine.states and engine.stats.patients_expired == 1


def test_the_deadline_heap_stays_proportional_to_the_census(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A patient that ends or is forgotten leaves its heap entry behind until that time
    (its idle deadline, 30 days on): the heap is rebuilt from the live entries, so it
    follows the census, not the feed's length, and the rebuild changes no alert and no
    state."""
    import monitor.engine as engine_module
    from monitor.benchmarks.feed import feed_length, load_feed, patients_feed
    from monitor.demo import FEED_PATH
    from monitor.validation import decode_event

    source = load_feed(FEED_PATH)
    events = [decode_event(json.dumps(event).encode())
              for event in patients_feed(source, 40, 15 * feed_length(source, 40))]

    def replay(per_patient: int, slack: int) -> tuple[Engine, list[dict], int]:  # type: ignore[type-arg]
        monkeypatch.setattr(engine_module, "_DEADLINES_PER_PATIENT", per_patient)
        monkeypatch.setattr(engine_module, "_DEADLINES_SLACK", slack)
        engine = Engine(rules())
        records, largest = [], 0
        for event in events:
            records.extend(engine.submit(event))
            largest = max(largest, len(engine._deadlines))
        records.extend(engine.finish())
        return engine, [record.model_dump() for record in records], largest

    kept, kept_records, kept_largest = replay(2, 10**9)  # never rebuilt
    always, always_records, _ = replay(0, 0)  # rebuilt at every push, inside the deadline run too
    bounded, bounded_records, bounded_largest = replay(2, 16)
    assert len(kept_records) > 100
    for engine, records in ((always, always_records), (bounded, bounded_records)):
        assert records == kept_records
        assert {p: s.to_dict() for p, s in engine.states.items()} == {p: s.to_dict() for p, s in kept.states.items()}
        assert engine._scheduled == kept._scheduled
    assert bounded_largest <= 2 * 60 + 16 + 1  # about 40 patients scheduled at once
    assert kept_largest > 3 * bounded_largest

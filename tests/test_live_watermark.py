"""The live worker's watermark on a live feed (event times at wall time) and on a replay
of history: a complete live topic stands at the time it was known complete (the fetch
response whose high watermark the worker reached), so the last events of a live feed wait
the allowed lateness, not the topics' turning idle (monitor.live.TopicClocks)."""

from __future__ import annotations

from datetime import timedelta

from monitor.live import InputRecord, LiveProcessor
from monitor.metrics import Metrics
from monitor.settings import ServiceSettings
from tests.feeds import T0, Patient, rules
from tests.clocks import ManualClock

LATENESS = timedelta(milliseconds=100)
SERVICE = ServiceSettings()  # idle_advance 1 s


def processor_at(clock: ManualClock) -> LiveProcessor:
    processor = LiveProcessor(rules(allowed_lateness=LATENESS), SERVICE, Metrics(), wall_clock=clock)
    processor.adopt([0])  # taken at this wall time; the re-key topic, silent, turns idle 1 s later
    return processor


def held(processor: LiveProcessor) -> int:
    return sum(engine.held for engine in processor.engines.values())


def handed_over(processor: LiveProcessor, patient: Patient, appended_after: float = 0.0,
                complete_at: float | None = None) -> None:
    """The patient's events, each appended to the log ``appended_after`` seconds after it
    occurred, and every topic complete as of ``complete_at`` (default: now)."""
    records = [InputRecord(SERVICE.topic_for_type[event.type], 0, offset, patient.id.encode(),
                           event.model_dump_json().encode(), event.occurred_at.timestamp() + appended_after)
               for offset, event in enumerate(patient.events)]
    processor.handle(records, None if complete_at is None else (lambda topic, partition: complete_at))


def feed(patient: Patient) -> Patient:
    patient.rx(0, "O1", "oxycodone")
    patient.pain(0, 6)
    patient.update(0)
    return patient


def test_a_live_feed_is_released_once_its_events_are_older_than_the_allowed_lateness() -> None:
    clock = ManualClock()
    clock.now = T0.timestamp() - 2.0
    processor = processor_at(clock)
    clock.now = T0.timestamp() + 0.02  # every topic has delivered an event 20 ms old
    handed_over(processor, feed(Patient()))
    assert held(processor) == 3
    clock.now += 0.05
    processor.tick()
    assert held(processor) == 3  # 70 ms old: within the lateness, still held for order
    clock.now += 0.06
    processor.tick()
    assert held(processor) == 0  # 130 ms old: released, with no topic silent for 1 s


def test_a_replay_of_history_still_waits_for_its_topics_to_turn_idle() -> None:
    clock = ManualClock()
    clock.now = T0.timestamp() + 86_400 - 2.0
    processor = processor_at(clock)
    clock.now += 2.0  # the same events a day after they occurred
    handed_over(processor, feed(Patient()))
    clock.now += 0.5
    processor.tick()
    assert held(processor) == 3  # caught up but not idle: the topics' own event time holds
    clock.now += 0.6
    processor.tick()
    assert held(processor) == 0  # idle for 1.1 s: released by the wall-time advance


def test_a_lagging_topic_holds_a_live_feed_back() -> None:
    clock = ManualClock()
    clock.now = T0.timestamp() - 2.0
    processor = processor_at(clock)
    clock.now = T0.timestamp() + 0.02
    handed_over(processor, feed(Patient()))
    clock.now += 0.5
    processor.tick(lambda topic, partition: None if topic == SERVICE.pain_topic else clock.now)
    assert held(processor) == 3  # pain scores still to fetch: nothing is released without them


def test_a_caught_up_topic_that_is_not_live_holds_a_live_topic_back_until_it_turns_idle() -> None:
    """An order arriving on time beside a pain score resent a day late: the pain-score
    topic's own event time bounds the watermark until it is silent for ``idle_advance``."""
    clock = ManualClock()
    clock.now = T0.timestamp() - 2.0
    processor = processor_at(clock)
    clock.now = T0.timestamp() + 0.02
    patient = Patient()
    patient.rx(0, "O1", "oxycodone")
    patient.pain(-24, 6)  # occurred a day before it arrives
    handed_over(processor, patient)
    clock.now += 0.5
    processor.tick()
    assert held(processor) == 2  # the live order waits: the late topic is neither live nor idle
    clock.now += 0.6
    processor.tick()
    assert held(processor) == 0  # the pain-score topic idle: the live order alone sets the time


def test_the_delay_between_the_log_and_the_worker_does_not_count_against_the_lateness() -> None:
    """Appended 10 ms after they occurred, handed over 300 ms after (fetch wait, batching:
    more than the 100 ms lateness), every topic known complete as of 250 ms: the events are
    released at once, not held until the topics turn idle."""
    clock = ManualClock()
    clock.now = T0.timestamp() - 2.0
    processor = processor_at(clock)
    clock.now = T0.timestamp() + 0.3
    handed_over(processor, feed(Patient()), appended_after=0.01, complete_at=T0.timestamp() + 0.25)
    assert held(processor) == 0


def test_a_live_topic_stands_at_its_completeness_time_not_at_wall_time() -> None:
    """Records appended after the last fetch response may have occurred up to the lateness
    before it: the watermark follows that response's time, however late the tick runs."""
    clock = ManualClock()
    clock.now = T0.timestamp() - 2.0
    processor = processor_at(clock)
    clock.now = T0.timestamp() + 0.02
    handed_over(processor, feed(Patient()), complete_at=T0.timestamp() + 0.02)
    clock.now += 0.5
    processor.tick(lambda topic, partition: T0.timestamp() + 0.05)  # last response 50 ms after they occurred
    assert held(processor) == 3  # at wall time they would be out; known complete only to T0 + 50 ms
    processor.tick(lambda topic, partition: T0.timestamp() + 0.15)
    assert held(processor) == 0


def replay_from_start(rekey_topic_unused: bool) -> tuple[LiveProcessor, Patient]:
    """A worker that took the partition just now, handed a replay of a patient's order,
    pain score and update, and the same a day later (so the first day is past the slowest
    topic's event time)."""
    clock = ManualClock()
    clock.now = T0.timestamp() + 2 * 86_400
    processor = LiveProcessor(rules(allowed_lateness=LATENESS), SERVICE, Metrics(), wall_clock=clock,
                              rekey_topic_unused=lambda: rekey_topic_unused)
    processor.adopt([0])
    patient = feed(Patient())
    patient.rx(24, "O2", "oxycodone")  # the same again a day later
    patient.pain(24, 7)
    patient.update(24)
    return processor, patient


def test_a_re_key_topic_nothing_was_ever_written_to_does_not_hold_the_first_second() -> None:
    processor, patient = replay_from_start(rekey_topic_unused=True)
    handed_over(processor, patient)
    assert held(processor) == 3  # the first day released at once: only the newest day waits


def test_a_re_key_topic_that_was_written_to_holds_until_it_turns_idle() -> None:
    """The counter-test: the same replay, with records in the re-key topic, waits for it."""
    processor, patient = replay_from_start(rekey_topic_unused=False)
    handed_over(processor, patient)
    assert held(processor) == 6


def test_once_this_worker_re_keys_a_record_its_re_key_topic_holds_again() -> None:
    """Its copy is on the way: the batch that re-keyed it does not move the watermark past it."""
    processor, patient = replay_from_start(rekey_topic_unused=True)
    mis_keyed = Patient()
    mis_keyed.pain(-1, 7)
    records = [InputRecord(SERVICE.pain_topic, 0, 0, b"encounter-1", mis_keyed.events[0].model_dump_json().encode(),
                           mis_keyed.events[0].occurred_at.timestamp())]
    processor.handle(records)
    handed_over(processor, patient)
    assert held(processor) == 6

"""Actions through the live worker's logic: read from the actions topic, applied by the
engine that owns the patient, never on an input topic, never moving event time."""

from __future__ import annotations

import json

from monitor.live import InputRecord, LiveProcessor
from monitor.metrics import Metrics
from monitor.settings import ServiceSettings
from tests.feeds import rules
from tests.test_rules_actions import PROMPT, action, benzo_patient, tick

SERVICE = ServiceSettings()


def record(topic: str, offset: int, key: str, value: bytes) -> InputRecord:
    return InputRecord(topic, 0, offset, key.encode(), value, 0.0)


def inputs(events) -> list[InputRecord]:  # type: ignore[no-untyped-def]
    return [record(SERVICE.topic_for_type[e.type], i, e.patient.id, e.model_dump_json().encode())
            for i, e in enumerate(events)]


class Wall:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def processor(metrics: Metrics, wall: Wall | None = None) -> LiveProcessor:
    """A processor whose topics without records are idle already (wall time has passed)."""
    wall = wall or Wall()
    live = LiveProcessor(rules(**PROMPT), SERVICE, metrics, wall_clock=wall)
    live.adopt([0])
    wall.now += 100.0
    return live


def counter(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def test_an_action_on_the_actions_topic_snoozes_and_its_end_re_raises() -> None:
    metrics, wall = Metrics(), Wall()
    live = processor(metrics, wall)
    out = live.handle(inputs(benzo_patient().events))
    [opened] = [a.record for a in out.alerts if a.record.kind.value == "opioid_benzodiazepine"]
    snooze = action(opened, hours=3).model_dump_json().encode()
    clocks = dict(live._clocks[0].newest)
    out = live.handle([record(SERVICE.actions_topic, 0, "P1", snooze)])
    assert out.alerts == [] and out.dead_letters == [] and "P1" in out.changed
    assert live._clocks[0].newest == clocks  # the action's wall-clock time moved no topic's clock
    assert counter(metrics, "medsafety_actions_total", action="snooze", outcome="applied") == 1
    wall.now += 100.0  # the orders topic falls idle: the pain score alone moves event time
    later = [record(SERVICE.pain_topic, 10, e.patient.id, e.model_dump_json().encode()) for e in tick(6)]
    out = live.handle(later)
    assert [(a.record.alert_id, a.record.reason) for a in out.alerts] == [(opened.alert_id, "snooze_expired")]
    redelivered = live.handle([record(SERVICE.actions_topic, 0, "P1", snooze)])
    assert redelivered.alerts == []
    assert counter(metrics, "medsafety_actions_total", action="snooze", outcome="duplicate") == 1


def test_actions_and_clinical_events_on_each_others_topics_are_dead_lettered() -> None:
    metrics = Metrics()
    live = processor(metrics)
    out = live.handle(inputs(benzo_patient().events))
    opened = out.alerts[0].record
    stray_action = record(SERVICE.rx_topic, 9, "P1", action(opened).model_dump_json().encode())
    stray_event = record(SERVICE.actions_topic, 0, "P1", benzo_patient().events[0].model_dump_json().encode())
    bad_action = record(SERVICE.actions_topic, 1, "P1", json.dumps(
        {**json.loads(action(opened).model_dump_json()), "snooze_for": "P9D"}).encode())
    out = live.handle([stray_action, stray_event, bad_action])
    reasons = [dict(letter.headers)["medsafety-reason"] for letter in out.dead_letters]
    assert reasons == [b"wrong_topic", b"wrong_topic", b"invalid_value"]
    assert counter(metrics, "medsafety_events_invalid_total", reason="wrong_topic") == 2

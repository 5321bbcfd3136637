"""Event-time alignment of the input topics through a backlog: a topic running ahead of a
slower topic of its partition number (by more than the allowed lateness) is left unfetched
until the slower one catches up (monitor.live.TopicClocks.ahead, LiveProcessor.running_ahead,
monitor.worker.holding_back)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from monitor.live import InputRecord, LiveProcessor, TopicClocks
from monitor.metrics import Metrics
from monitor.settings import ServiceSettings
from monitor.worker import holding_back
from tests.feeds import T0, Patient, rules

SERVICE = ServiceSettings()
RX, PAIN, ADT = SERVICE.input_topics
REKEY = SERVICE.repartition_topic
DRIFT = 600.0


def clocks_at(newest: dict[str, float]) -> TopicClocks:
    clocks = TopicClocks((RX, PAIN, ADT, REKEY), started=0.0)
    for topic, occurred in newest.items():
        clocks.saw(topic, occurred, wall=0.0, appended=0.0)
    return clocks


def complete_only(*topics: str):  # type: ignore[no-untyped-def]
    return lambda topic: 1.0 if topic in topics else None


def test_a_topic_more_than_the_drift_ahead_of_a_slower_one_still_delivering_is_held_back() -> None:
    clocks = clocks_at({RX: 1_000.0, PAIN: 1_000.0 + DRIFT + 1, ADT: 1_000.0 + DRIFT})
    assert clocks.ahead(complete_only(REKEY), DRIFT) == [PAIN]  # ADT is exactly at the limit


def test_the_slowest_topic_still_delivering_is_never_held_back() -> None:
    clocks = clocks_at({RX: 5_000.0, PAIN: 1_000.0, ADT: 9_000.0})
    ahead = clocks.ahead(complete_only(REKEY), DRIFT)
    assert PAIN not in ahead
    assert ahead == [RX, ADT]


def test_a_slower_topic_that_is_complete_holds_nothing_back() -> None:
    # the pain scores have nothing more to deliver: waiting for them would wait for good
    clocks = clocks_at({RX: 1_000.0, PAIN: 9_000.0, ADT: 9_000.0})
    assert clocks.ahead(complete_only(RX, REKEY), DRIFT) == []


def test_every_topic_complete_holds_nothing_back() -> None:
    clocks = clocks_at({RX: 1_000.0, PAIN: 99_000.0})
    assert clocks.ahead(complete_only(RX, PAIN, ADT, REKEY), DRIFT) == []


def test_a_topic_still_to_deliver_its_first_record_holds_back_every_topic_that_has_delivered() -> None:
    clocks = clocks_at({RX: 1_000.0, PAIN: 1_000.0})
    assert clocks.ahead(complete_only(REKEY), DRIFT) == [RX, PAIN]  # ADT: nothing known of it yet
    clocks.saw(ADT, 1_000.0, wall=0.0, appended=0.0)
    assert clocks.ahead(complete_only(REKEY), DRIFT) == []


def records(patient: Patient, partition: int = 0) -> list[InputRecord]:
    return [InputRecord(SERVICE.topic_for_type[event.type], partition, offset, patient.id.encode(),
                        event.model_dump_json().encode(), 0.0)
            for offset, event in enumerate(patient.events)]


def test_running_ahead_names_the_topic_partitions_of_a_backlog_that_ran_ahead() -> None:
    processor = LiveProcessor(rules(allowed_lateness=timedelta(seconds=DRIFT)), SERVICE, Metrics())
    patient = Patient()
    patient.rx(0, "O1", "oxycodone")
    patient.pain(0, 6)
    patient.update(5)  # five hours ahead of the others
    only_rekey_complete = lambda topic, partition: 1.0 if topic == REKEY else None  # noqa: E731
    processor.handle(records(patient, partition=2), only_rekey_complete)
    assert processor.running_ahead(only_rekey_complete) == {(ADT, 2)}
    # once the orders and the pain scores are complete, nothing is held back
    assert processor.running_ahead(lambda topic, partition: None if topic == ADT else 1.0) == set()


class App:
    held_back: frozenset = frozenset()


def test_held_back_partitions_are_left_out_of_what_the_fetcher_is_asked_for() -> None:
    asked: list[tuple[object, float]] = []

    async def getmany(active_partitions: object, timeout: float) -> dict:
        asked.append((active_partitions, timeout))
        return {"records": active_partitions}

    app = App()
    fetch = holding_back(getmany, app)  # type: ignore[arg-type]
    assert asyncio.run(fetch(active_partitions={"a", "b"}, timeout=1.0)) == {"records": {"a", "b"}}
    app.held_back = frozenset({"b"})
    assert asyncio.run(fetch(active_partitions={"a", "b"}, timeout=1.0)) == {"records": {"a"}}
    assert asked[-1][1] < 1.0  # a partition released while it waits must not wait faust's whole second
    # every active partition held back: nothing is asked (aiokafka reads an empty set as "all")
    app.held_back = frozenset({"a", "b"})
    assert asyncio.run(fetch(active_partitions={"a", "b"}, timeout=1.0)) == {}
    assert len(asked) == 2

"""Only records fetched after faust's seek to the committed offsets move the event-time
clocks (monitor.seek_barrier); the ones fetched before it are handled and held."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

from monitor.live import InputRecord, LiveProcessor
from monitor.metrics import Metrics
from monitor.seek_barrier import SeekBarrier
from monitor.settings import ServiceSettings
from tests.clocks import ManualClock
from tests.feeds import T0, Patient, rules

SERVICE = ServiceSettings()


class FakeConsumer:
    """faust's consumer as the barrier sees it: a seek, and fetches that may be in flight."""

    def __init__(self) -> None:
        self.generation = 3
        self.fetch_started = asyncio.Event()
        self.fetch_may_return = asyncio.Event()
        self.fetch_may_return.set()
        self.consumer = SimpleNamespace(perform_seek=self._perform_seek, _getmany=self._getmany, flow_active=True)

    async def _perform_seek(self) -> None:
        await asyncio.sleep(0)

    async def _getmany(self, active_partitions: Any = None, timeout: float = 1.0) -> dict[str, list[int]]:
        self.fetch_started.set()
        await self.fetch_may_return.wait()
        return {"records": [1]}


def installed() -> tuple[SeekBarrier, FakeConsumer, list[str]]:
    fake, barrier, seen = FakeConsumer(), SeekBarrier(), []
    barrier.on_seek = lambda: seen.append("clocks restarted")
    barrier.install(fake.consumer, lambda: fake.generation)
    return barrier, fake, seen


def test_only_a_fetch_started_after_this_generations_seek_is_in_order() -> None:
    async def scenario() -> None:
        barrier, fake, seen = installed()
        await fake.consumer._getmany()
        assert not barrier.delivering_in_order()  # the generation's seek has not happened yet
        await fake.consumer.perform_seek()
        assert seen == ["clocks restarted"] and barrier.passed()
        assert not barrier.delivering_in_order()  # the loop may still deliver an older fetch
        await fake.consumer._getmany()
        assert barrier.delivering_in_order()
        fake.generation = 4  # a rebalance: nothing is in order until its own seek
        await fake.consumer._getmany()
        assert not barrier.passed() and not barrier.delivering_in_order()

    asyncio.run(scenario())


def test_a_fetch_in_flight_while_the_seek_completes_is_not_in_order() -> None:
    """It may hold records from before the seek; they come again from the sought position."""
    async def scenario() -> None:
        barrier, fake, _ = installed()
        await fake.consumer.perform_seek()
        fake.fetch_may_return.clear()
        fetch = asyncio.ensure_future(fake.consumer._getmany())
        await fake.fetch_started.wait()
        await fake.consumer.perform_seek()  # a recovery restarted, seeking again
        fake.fetch_may_return.set()
        await fetch
        assert not barrier.delivering_in_order()

    asyncio.run(scenario())


def test_a_seek_made_while_the_flow_is_stopped_does_not_pass_the_next_generations_barrier() -> None:
    """faust's fetch loop seeks when its flow is stopped (a rebalance under way), and the
    generation may already be the next one: that generation's recovery has not run yet."""
    async def scenario() -> None:
        barrier, fake, seen = installed()
        await fake.consumer.perform_seek()
        await fake.consumer._getmany()
        assert barrier.delivering_in_order()
        fake.consumer.flow_active = False  # the rebalance stopped the flow
        fake.generation = 4  # aiokafka's thread took the new assignment
        await fake.consumer.perform_seek()
        assert seen == ["clocks restarted", "clocks restarted"]  # what came before it is stale
        await fake.consumer._getmany()
        assert not barrier.passed() and not barrier.delivering_in_order()
        fake.consumer.flow_active = True  # the recovery resumed the flow, then seeks
        await fake.consumer.perform_seek()
        await fake.consumer._getmany()
        assert barrier.passed() and barrier.delivering_in_order()

    asyncio.run(scenario())


def traced_feed() -> tuple[list[InputRecord], list[InputRecord]]:
    """One patient's feed on partition 0 as a restarted worker was handed it: before the seek
    a first pass that began at pain score 15 (offsets 11-14 cleared with the inbox), then the
    seek's pass from the committed offsets (11 for every topic)."""
    patient = Patient()
    patient.rx(0, "O1", "oxycodone")
    for hour in range(1, 11):
        patient.pain(hour, 3 + hour % 5)
    patient.update(11)
    patient.rx(12, "O1", "oxycodone", action="modify", dose=10)
    by_type: dict[str, list[InputRecord]] = {"pain_score": [], "prescription": [], "patient_update": []}
    for event in patient.events:
        records = by_type[event.type]
        records.append(InputRecord(SERVICE.topic_for_type[event.type], 0, 11 + len(records), patient.id.encode(),
                                   event.model_dump_json().encode(), event.occurred_at.timestamp() + 86_400))
    pains, others = by_type["pain_score"], by_type["prescription"] + by_type["patient_update"]
    return pains[4:] + others, others + pains


def late_events(first_pass_in_order: bool) -> float:
    clock = ManualClock()
    clock.now = T0.timestamp() + 86_400
    processor = LiveProcessor(rules(allowed_lateness=timedelta(minutes=10)), SERVICE, Metrics(), wall_clock=clock)
    processor.adopt([0])
    clock.now += 2  # the re-key topic idle: only the input topics hold the watermark
    first_pass, sought_pass = traced_feed()
    processor.handle([replace(record, in_order=first_pass_in_order) for record in first_pass])
    processor.restart_clocks()
    clock.now += 0.1
    processor.handle(sought_pass)
    return processor.metrics.registry.get_sample_value("medsafety_events_late_total") or 0.0


def test_records_fetched_before_the_seek_do_not_move_the_clocks() -> None:
    assert late_events(first_pass_in_order=False) == 0


def test_had_they_moved_the_clocks_the_seeks_copies_of_the_first_offsets_were_late() -> None:
    """The counter-test: pain scores 11-14, which the first pass lacked, late behind 15-20."""
    assert late_events(first_pass_in_order=True) == 4

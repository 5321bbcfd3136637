"""monitor.delivery: a fetched record is delivered directly only when its delivery cannot
suspend; otherwise, and for every other ``wait_first`` call, faust's race runs."""

from __future__ import annotations

import asyncio
import inspect
from types import SimpleNamespace
from typing import Any

import pytest
from mode.utils.queues import FlowControlEvent, FlowControlQueue

from monitor.delivery import delivery_cannot_block, install_direct_delivery


class Harness:
    """A consumer and app with faust's real flow-control objects; the race is recorded."""

    def __init__(self) -> None:
        self.flow = FlowControlEvent(initially_suspended=False)  # a worker past its first rebalance
        self.stream_queue: FlowControlQueue[Any] = FlowControlQueue(maxsize=1, flow_control=self.flow,
                                                                    clear_on_resume=True)
        self.delivered: list[str] = []
        self.raced: list[tuple[Any, ...]] = []
        self.app = SimpleNamespace(
            flow_control=self.flow,
            topics=SimpleNamespace(_tp_to_callback_lock=asyncio.Lock()),
            producer=SimpleNamespace(buffer=SimpleNamespace(pending=asyncio.Queue(), max_messages=2)),
        )

        async def on_message(message: str) -> None:
            self.delivered.append(message)

        async def race(*coros: Any, timeout: Any = None) -> str:
            self.raced.append(coros)
            for coro in coros:
                coro.close()
            return "raced"

        self.consumer = SimpleNamespace(callback=on_message, suspend_flow=asyncio.Event(), wait_first=race)
        install_direct_delivery(self.app, self.consumer)

    async def fetch_loop_step(self, message: str) -> Any:
        """What faust's fetch loop does with each record."""
        return await self.consumer.wait_first(self.consumer.callback(message), self.consumer.suspend_flow.wait())


def test_a_record_is_delivered_directly_when_nothing_can_block() -> None:
    async def scenario() -> None:
        harness = Harness()
        suspension = harness.consumer.suspend_flow.wait()
        result = await harness.consumer.wait_first(harness.consumer.callback("r1"), suspension)
        assert harness.delivered == ["r1"] and harness.raced == []
        assert result.done and not result.stopped
        assert inspect.getcoroutinestate(suspension) == inspect.CORO_CLOSED  # never left dangling

    asyncio.run(scenario())


@pytest.mark.parametrize("blocker", ["stream buffer full", "flow suspended", "consumer flow suspended",
                                     "conductor lock held", "producer buffer over its limit"])
def test_a_delivery_that_could_block_takes_fausts_race(blocker: str) -> None:
    async def scenario() -> None:
        harness = Harness()
        if blocker == "stream buffer full":
            harness.stream_queue.put_nowait("waiting")
        elif blocker == "flow suspended":
            harness.flow.suspend()
        elif blocker == "consumer flow suspended":
            harness.consumer.suspend_flow.set()
        elif blocker == "conductor lock held":
            await harness.app.topics._tp_to_callback_lock.acquire()
        else:
            for item in range(3):
                harness.app.producer.buffer.pending.put_nowait(item)
        assert await harness.fetch_loop_step("r1") == "raced"
        assert harness.delivered == [] and len(harness.raced) == 1

    asyncio.run(scenario())


def test_other_waits_are_left_to_faust() -> None:
    async def scenario() -> None:
        harness = Harness()

        async def something_else() -> None:
            harness.delivered.append("not a delivery")

        assert await harness.consumer.wait_first(something_else(), harness.consumer.suspend_flow.wait()) == "raced"
        assert await harness.consumer.wait_first(harness.consumer.callback("r1"), harness.consumer.suspend_flow.wait(),
                                                 timeout=1.0) == "raced"
        assert harness.delivered == [] and len(harness.raced) == 2

    asyncio.run(scenario())


def test_the_check_reads_every_stream_buffer() -> None:
    async def scenario() -> None:
        harness = Harness()
        assert delivery_cannot_block(harness.app)
        second: FlowControlQueue[Any] = FlowControlQueue(maxsize=1, flow_control=harness.flow, clear_on_resume=True)
        second.put_nowait("waiting")
        assert not delivery_cannot_block(harness.app)

    asyncio.run(scenario())

"""monitor.inbox: fetched records handed to the monitor in batches, under faust's (mode's)
real flow control: cleared by a rebalance, held while suspended, bounded."""

from __future__ import annotations

import asyncio

from mode.utils.queues import FlowControlEvent

from monitor.inbox import Inbox


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_a_full_batch_is_taken_at_once_and_in_fetch_order() -> None:
    async def scenario() -> None:
        inbox = Inbox(FlowControlEvent(initially_suspended=False), maxsize=100)
        for offset in range(7):
            await inbox.put(offset)
        assert await inbox.take(5, within=60) == [0, 1, 2, 3, 4]  # full: no waiting for `within`
        assert await inbox.take(5, within=0.01) == [5, 6]  # what came within the wait
        assert len(inbox) == 0

    run(asyncio.wait_for(scenario(), 10))


def test_a_take_waits_for_the_first_record_then_for_the_batch_to_fill() -> None:
    async def scenario() -> None:
        inbox = Inbox(FlowControlEvent(initially_suspended=False), maxsize=100)
        taking = asyncio.ensure_future(inbox.take(3, within=60))
        await asyncio.sleep(0)
        assert not taking.done()
        for offset in range(3):
            await inbox.put(offset)
        assert await taking == [0, 1, 2]  # woken by the third record, not the 60 s wait

    run(asyncio.wait_for(scenario(), 10))


def test_a_rebalance_clears_the_waiting_records() -> None:
    """faust's flow control clears every queue it manages when a rebalance suspends the flow:
    the inbox's records were never acknowledged and come again from the committed offset."""
    async def scenario() -> None:
        flow = FlowControlEvent(initially_suspended=False)
        inbox = Inbox(flow, maxsize=100)
        await inbox.put("before")
        flow.suspend()
        flow.clear()
        assert len(inbox) == 0
        taking = asyncio.ensure_future(inbox.take(10, within=0.01))
        putting = asyncio.ensure_future(inbox.put("after"))
        await asyncio.sleep(0.05)
        assert not putting.done() and not taking.done()  # delivery waits while suspended
        flow.resume()
        await putting
        assert await taking == ["after"]

    run(asyncio.wait_for(scenario(), 10))


def test_a_full_inbox_holds_the_delivery_and_reports_itself_full() -> None:
    async def scenario() -> None:
        flow = FlowControlEvent(initially_suspended=False)
        inbox = Inbox(flow, maxsize=2)
        await inbox.put(1)
        await inbox.put(2)
        assert inbox.full() and inbox in set(flow._queues)  # noqa: SLF001 - what delivery_cannot_block reads
        third = asyncio.ensure_future(inbox.put(3))
        await asyncio.sleep(0.01)
        assert not third.done()
        assert await inbox.take(1, within=0) == [1]
        await asyncio.wait_for(third, 1)
        assert await inbox.take(5, within=0) == [2, 3]

    run(asyncio.wait_for(scenario(), 10))

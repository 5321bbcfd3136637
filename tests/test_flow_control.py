"""faust's flow control (mode's FlowControlEvent) as the worker uses it: resuming a flow
that is already active no longer clears the streams' queues (monitor.worker)."""

from __future__ import annotations

import asyncio

from mode.utils.queues import FlowControlEvent, FlowControlQueue

from monitor.worker import resume_only_what_is_suspended


def queued_after_a_second_resume(guarded: bool) -> int:
    """Records queued while the flow is active, then ``resume()`` called again (faust 0.15
    does so as a rebalance ends): how many are still queued."""
    async def run() -> int:
        flow = FlowControlEvent()
        if guarded:
            resume_only_what_is_suspended(flow)
        queue: FlowControlQueue = FlowControlQueue(flow_control=flow, clear_on_resume=True)
        flow.resume()  # the first resume ends the rebalance's suspension
        for record in ("pain@14", "pain@15"):
            queue.put_nowait(record)
        flow.resume()  # the second one
        return queue.qsize()

    return asyncio.run(run())


def test_a_second_resume_keeps_what_was_queued_since_the_first() -> None:
    assert queued_after_a_second_resume(guarded=True) == 2


def test_mode_alone_clears_it() -> None:
    """The defect guarded against: the records are dropped, never acknowledged."""
    assert queued_after_a_second_resume(guarded=False) == 0


def test_a_resume_that_ends_a_suspension_still_clears_what_was_queued_before_it() -> None:
    async def run() -> int:
        flow = FlowControlEvent()
        resume_only_what_is_suspended(flow)
        queue: FlowControlQueue = FlowControlQueue(flow_control=flow, clear_on_resume=True)
        flow.resume()
        queue.put_nowait("stale")
        flow.suspend()
        flow.resume()
        return queue.qsize()

    assert asyncio.run(run()) == 0

"""Direct delivery of fetched records to the streams, when delivery cannot block.

faust 0.15's fetch loop hands each record to the streams through
``Consumer.wait_first(deliver(record), suspend_flow.wait())``: a race between the delivery
and a rebalance suspending the flow, so that a delivery stuck on a full buffer is abandoned
when the partitions move. mode's ``wait_first`` makes four tasks and an ``asyncio.wait`` per
record. A bare faust agent on this machine counted 6,500 records/s with it and 9,900
without it (measured by the same agent with and without this module, on one broker).

The race has a winner known in advance whenever the delivery cannot suspend: flow control
is active, no queue it manages (the monitor's inbox, any stream buffer) is full, the
producer buffer is below its limit and the conductor's index lock is free. Those are every
await a delivery makes (the inbox's ``put``: flow control and room; faust's ``Conductor``
for other topics: acquire flow control, wait for the producer buffer to ebb, put on each
subscribing channel's queue, or wait for room if one is full). Then the
delivery runs to completion without yielding to the loop, so faust's suspension and
clearing of the streams for a rebalance (on the loop; aiokafka's rebalance itself runs in
its own thread) cannot come between, and awaiting it directly is the same as racing it.
Otherwise, and for every other ``wait_first`` call, faust's own path runs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from mode.services import WaitResults


def delivery_cannot_block(app: Any) -> bool:
    """True if a record delivered now runs to completion without suspending."""
    flow = app.flow_control
    if not flow.is_active():
        return False
    if app.topics._tp_to_callback_lock.locked():  # noqa: SLF001 - faust 0.15's conductor lock
        return False
    buffer = app.producer.buffer
    # ProducerBuffer.size, without its settings lookup (most of this check's cost in a profile):
    # the buffer holds table writes made with ``table[key] = value``, of which the worker
    # makes none, in a thread's queue only if ``producer_threaded``, which it leaves off.
    if buffer.pending.qsize() > buffer.max_messages:
        return False
    # The queues flow control manages (the inbox, any stream buffers) are a WeakSet, whose
    # iterator enters a guard and commits pending removals by catching an IndexError on
    # every pass: 4% of a worker's profile at one call per record. A snapshot of its
    # references is iterated instead (a queue collected meanwhile dereferences to None).
    for ref in tuple(flow._queues.data):  # noqa: SLF001
        queue = ref()
        if queue is not None and queue.full():
            return False
    return True


def install_direct_delivery(app: Any, consumer: Any) -> None:
    """Replace ``consumer.wait_first`` (an instance attribute) with one that awaits a
    record's delivery directly when :func:`delivery_cannot_block`."""
    race: Callable[..., Awaitable[WaitResults]] = consumer.wait_first

    async def wait_first(*coros: Any, timeout: Any = None) -> WaitResults:
        if len(coros) == 2 and timeout is None and _is_delivery(consumer, coros[0]) \
                and not consumer.suspend_flow.is_set() and delivery_cannot_block(app):
            delivery, suspended = coros
            if hasattr(suspended, "close"):
                suspended.close()  # the flow-suspension wait, never started
            result = await delivery
            return WaitResults([delivery], [result], False)
        return await race(*coros, timeout=timeout)

    consumer.wait_first = wait_first


def _is_delivery(consumer: Any, coro: Any) -> bool:
    """The coroutine is a call of the consumer's record callback (the conductor's
    ``on_message``), which is all the fetch loop races."""
    code = getattr(coro, "cr_code", None)
    callback = getattr(consumer, "callback", None)
    return code is not None and code is getattr(callback, "__code__", None)

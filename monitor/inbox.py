"""The input records' way from faust's fetch loop to the monitor: a list, not a stream.

faust hands each fetched record to its streams one by one: the conductor looks up the
partition's channels, decodes the record into an ``Event``, puts it on each channel's
queue, and the stream's iterator takes it off again, tracks it for acknowledgement, sets
the task-local current event, runs the stream processors and yields its value
(``take_events`` then gathers those into a batch). The monitor uses none of that: it wants
the raw key, value and offsets of a batch of records. Measured on the embedded broker with
a bare app that JSON-decodes and counts a 44,958-record feed: faust's ordinary agent
counted 8,055 records/s, the same app fed through this inbox 24,682 and 58,009 (two runs).

So the consumer's record callback appends records of the monitor's topics here (everything
else, the table's changelog during recovery, still goes through faust's conductor), and the
monitor takes whole batches. What faust's streams did on the way that matters is kept:

- *flow control*: the inbox is one of the queues ``app.flow_control`` manages, so a
  rebalance's suspension clears it like a stream's buffer, and a delivery waits while the
  flow is suspended (:meth:`Inbox.put`);
- *back-pressure*: a full inbox makes the delivery wait for room, and reports itself full
  (:func:`monitor.delivery.delivery_cannot_block`), so faust's fetch loop then races the
  delivery against a rebalance as it does for a full stream buffer;
- *acknowledgement*: nothing here acknowledges a record. The monitor acknowledges exactly
  the records it handled, after their outputs are acknowledged by the broker
  (:mod:`monitor.worker`), so a record dropped (cleared by a rebalance, or stale when taken)
  keeps its partition's commit below it and is fetched again from the committed offset.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any


class Inbox:
    """A bounded FIFO of fetched records for one consumer (the worker puts each faust
    ``Message`` with whether its fetch came after the latest seek: :mod:`monitor.seek_barrier`)."""

    def __init__(self, flow_control: Any, maxsize: int) -> None:
        self._flow = flow_control
        self.maxsize = maxsize
        self._records: deque[Any] = deque()
        self._arrived = asyncio.Event()  # set while records wait
        self._room = asyncio.Event()  # set while below maxsize
        self._room.set()
        self._wanted = 1  # records that wake a waiting take (see put)
        flow_control.manage_queue(self)  # cleared with the streams' buffers on a rebalance

    def __len__(self) -> int:
        return len(self._records)

    def full(self) -> bool:
        return len(self._records) >= self.maxsize

    def clear(self) -> None:
        """Drop every waiting record (faust's flow control calls this for a rebalance): none
        was acknowledged, so each comes again from its partition's committed offset."""
        self._records.clear()
        self._arrived.clear()
        self._room.set()

    async def put(self, message: Any) -> None:
        """Append one record; waits while the flow is suspended or the inbox is full. Without
        either wait it runs to completion without suspending (see
        :func:`monitor.delivery.delivery_cannot_block`)."""
        while not self._flow.is_active() or self.full():
            if not self._flow.is_active():
                await self._flow.acquire()
            else:
                self._room.clear()
                await self._room.wait()  # a rebalance's clear() sets it too: check the flow again
        records = self._records
        records.append(message)
        if len(records) == 1 or len(records) >= self._wanted:
            self._arrived.set()  # the first record, or the batch being waited for is full

    async def take(self, max_records: int, within: float) -> list[Any]:
        """The next batch: waits for a first record, then up to ``within`` seconds for the
        batch to fill to ``max_records``, and returns what came (never empty)."""
        records = self._records
        while True:
            while not records:
                self._arrived.clear()
                await self._arrived.wait()
            if len(records) < max_records:
                self._wanted = max_records
                self._arrived.clear()
                try:
                    await asyncio.wait_for(self._arrived.wait(), within)
                except asyncio.TimeoutError:
                    pass
                finally:
                    self._wanted = 1
            batch = [records.popleft() for _ in range(min(max_records, len(records)))]
            if not self.full():
                self._room.set()
            if batch:  # else cleared by a rebalance while the batch filled
                return batch

"""The changed patients' records, written to the state table's changelog before each commit.

A patient's durable record (:class:`monitor.live.StoredPatient`) is written once per offset
commit however many batches changed it, and the offsets are committed only after the
broker acknowledged every record. The order of the guarantees (see
:func:`monitor.worker.create_app`): a batch publishes its alerts and waits for their
acknowledgements before it hands its changed patients here (:meth:`StateWrites.changed`),
and a record is built from what the engine holds when it is written, so it may run ahead
of the offsets about to be committed (the events come again and are dropped as
duplicates), never behind them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from .crashpoints import CrashPoints
from .live import StoredPatient
from .metrics import Metrics

log = logging.getLogger(__name__)

#: Patients serialised per turn of a write beside the batches (:meth:`StateWrites.write_in_turns`):
#: about 20 ms of work (1.2 KB records at some 20 us each), the longest a batch waits for one.
WRITE_TURN = 1000


class StateWrites:
    """The patients changed since their last write, and the two ways of writing them.

    ``stored(patient_id, partition)``: the patient's record as the engine holds it now (None:
    the partition is not this worker's any more). ``store``: the table's in-memory data,
    kept equal to what is written. ``producer()``: aiokafka's producer, for its batch API;
    ``changelog()``: the table's changelog topic. ``owner_lock``: held by every change of
    memory (a batch until its alerts are acknowledged, a tick, a revocation). ``in_group()``:
    whether this worker is still a member of its group. ``diverged``: non-empty once a change
    of memory stopped part-way (nothing may be written from then on). ``guard(what)``: the
    worker's context that turns a failure into an exit without committing."""

    def __init__(self, stored: Callable[[str, int], StoredPatient | None], store: MutableMapping[bytes, Any],
                 producer: Callable[[], Any], changelog: Callable[[], str], owner_lock: asyncio.Lock,
                 in_group: Callable[[], Awaitable[bool]], metrics: Metrics, crash: CrashPoints,
                 diverged: Sequence[str], guard: Callable[[str], AbstractAsyncContextManager[None]]) -> None:
        self._stored = stored
        self._store = store
        self._producer = producer
        self._changelog = changelog
        self._owner_lock = owner_lock
        self._in_group = in_group
        self._metrics = metrics
        self._crash = crash
        self._diverged = diverged
        self._guard = guard
        #: Patients changed since their last write, with their input partition; each is
        #: serialised and sent once however many batches touched it (forgotten ones: a tombstone).
        self.unwritten: dict[str, int] = {}
        #: One write in turns at a time: a commit must not count as written a patient that
        #: another write took and has not yet had acknowledged.
        self._write_lock = asyncio.Lock()
        #: How many times the queue was dropped: a write in turns that sees it change has
        #: lost the rest of its patients (a revocation found the worker fenced) and fails.
        self._drops = 0

    def changed(self, patients: Mapping[str, int]) -> None:
        """Queue patients whose durable record changed (their batch's outputs are acknowledged)."""
        self.unwritten.update(patients)
        self._metrics.unwritten_patients.set(len(self.unwritten))

    def drop(self) -> None:
        """Forget every queued patient: memory has diverged, or the worker was dropped from
        its group; nothing more is written."""
        self._drops += 1
        self.unwritten.clear()
        self._metrics.unwritten_patients.set(0)

    async def write_all(self) -> bool:
        """Write every changed patient at once and wait until the broker acknowledged each
        record. The caller holds ``owner_lock`` throughout: a revocation, which must leave
        nothing unwritten before its partitions move. False, with nothing written: see
        :meth:`_may_write`; the offsets must not be committed either."""
        if not await self._may_write():
            return False
        if not self.unwritten:
            return True
        writes: list[Any] = []
        await self._send(list(self.unwritten), writes)
        await self._acknowledged(writes)
        return True

    async def write_in_turns(self) -> bool:
        """Before each offset commit, on shutdown, and once the input ran dry: write the
        patients changed so far, then wait for the broker's acknowledgements.

        The patients are serialised in turns of ``WRITE_TURN``, each holding ``owner_lock``,
        and batches run between turns (the write yields before each turn, and the lock is
        fair: a batch waiting for it goes first). Written at once, a large commit stopped the
        input for its whole length (at a census of 100,000, several tenths of a second every
        commit, which the alerts of that moment waited for). A patient a batch changes after
        its turn is queued again for the next write; one changed before its turn is written as
        it is then. A revocation between turns
        writes the rest itself (:meth:`write_all`), and they are skipped here. The
        acknowledgements are awaited without the lock."""
        async with self._write_lock, self._guard("changelog write"):
            async with self._owner_lock:
                if not await self._may_write():
                    return False
                if not self.unwritten:
                    return True
                pending = list(self.unwritten)
                drops = self._drops
            writes: list[Any] = []
            for start in range(0, len(pending), WRITE_TURN):
                await asyncio.sleep(0)  # a send need not suspend: let a batch that is ready reach the lock
                async with self._owner_lock:
                    if not self._intact(drops):
                        return False
                    await self._send(pending[start:start + WRITE_TURN], writes)
            await self._acknowledged(writes)
            return self._intact(drops)

    def _intact(self, drops: int) -> bool:
        """Nothing happened since a write in turns began that forbids its commit: memory has
        not diverged, and the queue was not dropped (a revocation between turns that found
        this worker out of its group dropped the rest of the write's patients)."""
        return not self._diverged and self._drops == drops

    async def _may_write(self) -> bool:
        """Whether states may be written now: memory has not diverged, and this worker is
        still in its group (if it was dropped, its partitions' next owner applies the
        uncommitted events again, and states written now would land after that owner's and
        roll its patients back: the changes are dropped). The caller holds ``owner_lock``."""
        if self._diverged:
            return False
        if self.unwritten and not await self._in_group():
            log.warning("not a member of the consumer group any more (dropped by the coordinator): %d changed patients "
                        "are not written; their partitions' next owner applies the uncommitted events again",
                        len(self.unwritten))
            self._metrics.states_fenced.inc(len(self.unwritten))
            self.drop()
            return False
        return True

    async def _send(self, patients: Iterable[str], writes: list[Any]) -> None:
        """Build these patients' records now, put them in the store and hand them to the
        producer, appending each send's future to ``writes``. The caller holds ``owner_lock``.

        The records go to the changelog as faust's ``table[key] = value`` would send them
        (same topic, key, value, a tombstone to forget), but on the patient's input partition
        (faust assigns changelog partition p with input partition p, and a worker restores a
        partition's patients from there; an upstream partitioner other than Kafka's default
        put them elsewhere) and in one record batch per partition (aiokafka's ``send_batch``)
        rather than one ``send`` each: a future, a lock and an accumulator lookup per record
        were 7% of a worker's profile at 30,000 patients. A patient no longer queued was
        written meanwhile and is skipped."""
        changelog = self._changelog()
        producer = self._producer()
        batches: dict[int, Any] = {}
        sent = 0
        for patient_id in patients:
            partition = self.unwritten.pop(patient_id, None)
            if partition is None:
                continue
            stored = self._stored(patient_id, partition)
            if stored is None:
                continue  # not this worker's partition any more (revocation writes first)
            key = patient_id.encode()
            value = None if stored.forgotten else stored.to_bytes()
            if value is None:
                self._store.pop(key, None)
            else:
                self._store[key] = value
            batch = batches.get(partition)
            if batch is None:
                batch = batches[partition] = producer.create_batch()
            while batch.append(key=key, value=value, timestamp=None) is None:  # full: send it, start another
                writes.append(await producer.send_batch(batch, changelog, partition=partition))
                batch = batches[partition] = producer.create_batch()
            sent += 1
        for partition, batch in batches.items():
            if batch.record_count():
                writes.append(await producer.send_batch(batch, changelog, partition=partition))
        # patients sent and not yet acknowledged no longer count: the gauge is what no
        # write has taken yet
        self._metrics.unwritten_patients.set(len(self.unwritten))
        self._metrics.states_written.inc(sent)

    async def _acknowledged(self, writes: list[Any]) -> None:
        self._crash.passed("state-sent")
        for write in writes:
            await write
        self._crash.passed("state-written")

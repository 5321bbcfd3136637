"""The seek a rebalance ends with rewinds every partition to its committed offset, on both
brokers, including a partition nothing was committed for yet.

faust drops records fetched but not handed over when a rebalance comes, and so does the
worker for a batch held across one (monitor.stale_records); both rely on this seek to be
handed them again. aiokafka's own ``seek_to_committed`` leaves a partition without a
committed offset where its fetch position is (the second test shows it), so those records
were lost (monitor.worker.seeking_uncommitted_to_the_beginning)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from kafka import KafkaProducer

from monitor.broker import PRODUCER_OPTIONS, ensure_topics
from monitor.worker import seeking_uncommitted_to_the_beginning

pytestmark = pytest.mark.integration

RECORDS = 5


def published(broker: str) -> str:
    topic = f"seek-{uuid.uuid4().hex[:8]}"
    ensure_topics(broker, [topic], 1)
    producer = KafkaProducer(bootstrap_servers=broker, **PRODUCER_OPTIONS)
    try:
        futures = [producer.send(topic, partition=0, value=str(i).encode()) for i in range(RECORDS)]
        producer.flush()
        assert all(future.get(timeout=10) for future in futures)
    finally:
        producer.close()
    return topic


async def positions_after_seek(broker: str, topic: str, commit: int | None,
                               rewound: set[str] | None) -> tuple[int, int]:
    """Fetch every record (committing ``commit`` first, if given), seek to committed (the
    worker's seek rewinding ``rewound`` topics, or aiokafka's alone if None), and return
    the position then and the offset of the next record handed over."""
    tp = TopicPartition(topic, 0)
    consumer = AIOKafkaConsumer(bootstrap_servers=broker, group_id=f"seek-{uuid.uuid4().hex[:8]}",
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        consumer.assign([tp])
        if commit is not None:
            await consumer.commit({tp: commit})
        fetched: list[int] = []
        while len(fetched) < RECORDS - (commit or 0):
            batch = await consumer.getmany(tp, timeout_ms=10_000)
            assert batch, "the broker handed over nothing in 10 s"
            fetched.extend(record.offset for record in batch[tp])
        assert await consumer.position(tp) == RECORDS
        seek = consumer.seek_to_committed if rewound is None else seeking_uncommitted_to_the_beginning(consumer, rewound)
        await seek(tp)
        position = await consumer.position(tp)
        if position == RECORDS:
            return position, RECORDS
        record = await consumer.getone(tp)
        return position, record.offset
    finally:
        await consumer.stop()


def test_a_partition_without_a_committed_offset_is_rewound_to_its_beginning(broker: str) -> None:
    topic = published(broker)
    assert asyncio.run(positions_after_seek(broker, topic, commit=None, rewound={topic})) == (0, 0)


def test_aiokafka_alone_leaves_an_uncommitted_partition_where_it_is(broker: str) -> None:
    """The defect corrected above: the records fetched before the seek are skipped."""
    topic = published(broker)
    assert asyncio.run(positions_after_seek(broker, topic, commit=None, rewound=None)) == (RECORDS, RECORDS)


def test_only_the_named_topics_are_rewound(broker: str) -> None:
    """The table's changelog partitions are never committed; faust's recovery seeks them."""
    topic = published(broker)
    assert asyncio.run(positions_after_seek(broker, topic, commit=None, rewound={"another-topic"})) == (
        RECORDS, RECORDS)


def test_a_committed_partition_is_rewound_to_its_committed_offset(broker: str) -> None:
    topic = published(broker)
    assert asyncio.run(positions_after_seek(broker, topic, commit=3, rewound={topic})) == (3, 3)

"""Records a batch holds across a rebalance (monitor.stale_records), with faust's own
Message and Consumer: dropped records are never acknowledged, so they never count towards
a commit."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from faust.transport.consumer import ConsumerMessage
from faust.types import TP

from monitor.clinical.context import ClinicalRules
from monitor.metrics import Metrics
from monitor.settings import RuleSettings, ServiceSettings
from monitor.stale_records import split_stale
from monitor.worker import create_app

TOPIC = "medsafety.rx-orders"
PARTITION = TP(TOPIC, 0)


@pytest.fixture()
def app() -> Iterator[Any]:
    """The worker's app, not started: its consumer's acknowledgement bookkeeping is real.
    The monitor's topics become acking topics when the conductor subscribes; here by hand."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    service = ServiceSettings.from_env({})
    worker_app = create_app(service, ClinicalRules.from_settings(RuleSettings.from_env({})), Metrics(), "127.0.0.1:1")
    worker_app.topics._acking_topics.add(TOPIC)  # noqa: SLF001 - see docstring
    worker_app.flow_control.resume()
    worker_app.consumer_generation_id = 2
    yield worker_app
    loop.close()
    asyncio.set_event_loop(None)


def record(offset: int, generation: int) -> ConsumerMessage:
    """A record as the inbox hands it over: the consumer's message type, not yet acked."""
    return ConsumerMessage(TOPIC, 0, offset, 0.0, 0, None, b"patient", b"{}", None, generation_id=generation)


def handle(app: Any, batch: list[ConsumerMessage], has_engine: bool = True) -> list[ConsumerMessage]:
    """What the monitor task does with a batch's acknowledgements: the kept ones only."""
    kept, _stale = split_stale(app, batch, has_engine=lambda partition: has_engine)
    for message in kept:
        app.consumer.ack(message)
    return kept


def test_records_of_the_current_generation_are_kept_and_their_acks_count(app: Any) -> None:
    records = [record(offset, 2) for offset in (5, 6)]
    kept, stale = split_stale(app, records, has_engine=lambda partition: True)
    assert (kept, stale) == (records, [])
    assert all(app.consumer.ack(message) for message in kept)
    assert app.consumer._acked[PARTITION] == [5, 6]  # noqa: SLF001


def test_records_of_an_older_generation_are_dropped_unacknowledged(app: Any) -> None:
    old, current = record(5, 1), record(9, 2)
    assert handle(app, [old, current]) == [current]
    assert app.consumer._acked[PARTITION] == [9]  # noqa: SLF001
    assert not old.acked


def test_while_a_rebalance_suspends_the_flow_only_records_of_revoked_partitions_are_stale(app: Any) -> None:
    """Before the revocation reaches the worker its engines are there and the batch is
    handled (its states written and offsets committed as the revocation finishes); after
    it, handling would restore the engine from a table not yet recovered."""
    app.flow_control.suspend()
    records = [record(offset, 2) for offset in (5, 6)]
    assert split_stale(app, records, has_engine=lambda partition: True) == (records, [])
    assert split_stale(app, records, has_engine=lambda partition: False) == ([], records)


def test_while_the_table_recovers_records_of_partitions_without_an_engine_are_stale(app: Any) -> None:
    """faust resumes the flow before it reads the changelogs: "flowing" is not "recovered"."""
    app.in_recovery = True
    records = [record(offset, 2) for offset in (5, 6)]
    assert split_stale(app, records, has_engine=lambda partition: False) == ([], records)
    assert split_stale(app, records, has_engine=lambda partition: True) == (records, [])


def test_a_commit_stops_below_dropped_records_until_their_copies_are_handled(app: Any) -> None:
    """Records 5-7 held across the rebalance, fetched again from the committed offset 5, and
    only the copy of 5 handled so far: the commit must not pass 6 and 7. (Acknowledged when
    dropped, as ``take_events`` once did, they would have been: a loss.)"""
    app.consumer._committed_offset[PARTITION] = 5  # noqa: SLF001 - what the seek after the rebalance set
    assert handle(app, [record(offset, 1) for offset in (5, 6, 7)]) == []
    assert handle(app, [record(5, 2)])
    assert app.consumer._new_offset(PARTITION) == 6  # noqa: SLF001 - the offset the next commit sends
    assert handle(app, [record(offset, 2) for offset in (6, 7)])
    assert app.consumer._new_offset(PARTITION) == 8  # noqa: SLF001


def test_acknowledgements_made_after_faust_forgot_a_revoked_partition_are_forgotten_too(app: Any) -> None:
    """A batch in flight as the partition is revoked acknowledges its records after faust
    cleared the partition's acknowledgements; the worker's revocation clears them again, so
    a later generation's commit never counts them."""
    from monitor.worker import forget_acknowledgements

    app.consumer._committed_offset[PARTITION] = 5  # noqa: SLF001
    assert handle(app, [record(offset, 2) for offset in (5, 6)])
    assert app.consumer._new_offset(PARTITION) == 7  # noqa: SLF001 - what a commit would send
    forget_acknowledgements(app.consumer, {PARTITION})
    assert app.consumer._new_offset(PARTITION) is None  # noqa: SLF001 - nothing to commit

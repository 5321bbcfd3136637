"""Records a ``take_events`` batch held across a rebalance (monitor.stale_records), with
faust's own Message, Event and Consumer: dropped records never count towards a commit."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from faust.events import Event
from faust.transport.consumer import ConsumerMessage
from faust.types import TP

from monitor.clinical.context import ClinicalRules
from monitor.metrics import Metrics
from monitor.settings import RuleSettings, ServiceSettings
from monitor.stale_records import forgo, split_stale
from monitor.worker import create_app

TOPIC = "medsafety.rx-orders"
PARTITION = TP(TOPIC, 0)


@pytest.fixture()
def app() -> Iterator[Any]:
    """The worker's app, not started: its consumer's acknowledgement bookkeeping is real.
    The agent's topics become acking topics when the agent starts; here by hand."""
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


def event(app: Any, offset: int, generation: int) -> Event:
    """A record as the stream hands it over: the consumer's message type, tracked (one
    reference), not yet acked."""
    message = ConsumerMessage(TOPIC, 0, offset, 0.0, 0, None, b"patient", b"{}", None, generation_id=generation)
    message.incref()
    app.consumer._unacked_messages.add(message)  # noqa: SLF001 - what tracking does
    return Event(app, message.key, message.value, None, message)


def test_records_of_the_current_generation_are_kept_and_their_acks_count(app: Any) -> None:
    events = [event(app, offset, 2) for offset in (5, 6)]
    kept, stale = split_stale(app, events, has_engine=lambda partition: True)
    assert (kept, stale) == (events, [])
    assert all(e.ack() for e in kept)
    assert app.consumer._acked[PARTITION] == [5, 6]  # noqa: SLF001


def test_records_of_an_older_generation_are_forgone_and_their_acks_do_not_count(app: Any) -> None:
    old, current = event(app, 5, 1), event(app, 9, 2)
    kept, stale = split_stale(app, [old, current], has_engine=lambda partition: True)
    assert (kept, stale) == ([current], [old])
    forgo(app.consumer, stale)
    assert old.ack() is False  # what take_events' finally does with every record of the batch
    assert 5 not in app.consumer._acked[PARTITION]  # noqa: SLF001
    assert old.message not in app.consumer._unacked_messages  # noqa: SLF001 - wait_empty need not wait


def test_while_a_rebalance_suspends_the_flow_only_records_of_revoked_partitions_are_stale(app: Any) -> None:
    """Before the revocation reaches the worker its engines are there and the batch is
    handled (its states written and offsets committed as the revocation finishes); after
    it, handling would restore the engine from a table not yet recovered."""
    app.flow_control.suspend()
    events = [event(app, offset, 2) for offset in (5, 6)]
    assert split_stale(app, events, has_engine=lambda partition: True) == (events, [])
    assert split_stale(app, events, has_engine=lambda partition: False) == ([], events)


def test_while_the_table_recovers_records_of_partitions_without_an_engine_are_stale(app: Any) -> None:
    """faust resumes the flow before it reads the changelogs: "flowing" is not "recovered"."""
    app.in_recovery = True
    events = [event(app, offset, 2) for offset in (5, 6)]
    assert split_stale(app, events, has_engine=lambda partition: False) == ([], events)
    assert split_stale(app, events, has_engine=lambda partition: True) == (events, [])


def test_a_commit_stops_below_forgone_records_until_their_copies_are_handled(app: Any) -> None:
    """The loss the forgo prevents: records 5-7 held across the rebalance, fetched again
    from the committed offset 5, and only the copy of 5 handled so far. Had 5-7 been
    acked when dropped, the commit would pass 6 and 7 unhandled."""
    app.consumer._committed_offset[PARTITION] = 5  # noqa: SLF001 - what the seek after the rebalance set
    held = [event(app, offset, 1) for offset in (5, 6, 7)]
    forgo(app.consumer, split_stale(app, held, has_engine=lambda partition: True)[1])
    for record in held:
        record.ack()
    assert event(app, 5, 2).ack()
    assert app.consumer._new_offset(PARTITION) == 6  # noqa: SLF001 - the offset the next commit sends
    for offset in (6, 7):
        assert event(app, offset, 2).ack()
    assert app.consumer._new_offset(PARTITION) == 8  # noqa: SLF001

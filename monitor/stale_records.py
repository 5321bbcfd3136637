"""Records a batch holds across a rebalance: dropped without being acknowledged.

faust's per-event stream iterator skips a record fetched in an older consumer-group
generation, or handed over while a rebalance has suspended the flow, and never acks it:
the partition's next owner (this worker again, or another) seeks to the committed offset
and is handed the record again. ``Stream.take_events`` fills its buffer through that
iterator, but a batch filled before a rebalance is handed to the agent after it, and its
``finally`` acks every record of the batch however the agent used it.

Handling such a batch re-created its partition's engine from a table not yet recovered for
the new assignment (a worker dropped from its group and continued then rolled its
successor's patients back: wrong alerts in 2 of 4 runs of the frozen-worker test). Dropping
it but letting ``take_events`` ack it was a loss: on a partition that stayed with the
worker, those offsets joined the acknowledged ones and a commit could pass records whose
re-delivered copies were not handled yet (the sequential join/leave test lost alerts).

So a stale record is marked as already acknowledged *before* ``take_events`` acks it:
faust's ``Message.ack`` then does nothing, its offset never reaches the consumer's
acknowledged set, and commits stop below it until the copy fetched again is handled.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from mode.utils.futures import notify


def split_stale(app: Any, events: Sequence[Any], has_engine: Callable[[int], bool]) -> tuple[list[Any], list[Any]]:
    """The batch's records to handle, and the stale ones to :func:`forgo`.

    Stale: fetched in an older generation (the new assignment's seek hands them over again,
    as faust's own iterator assumes), or handed over while a rebalance has suspended the
    flow or the table's recovery runs, for a partition whose engine is already gone (revoked: handling would restore it
    from a table not yet recovered for the new assignment). A batch handed over while the
    flow is suspended but before the revocation reached the partitions is handled as
    usual: its states are written and its offsets committed as the revocation finishes,
    as before this module existed. (Dropping those too sent every such batch through the
    re-fetch, where a second flow resume then cleared records from the streams' queues:
    see ``monitor.worker.resume_only_what_is_suspended``. Handled, they need no re-fetch.)"""
    generation = app.consumer_generation_id
    # faust resumes the flow before reading the changelogs, so "suspended" alone misses
    # the recovery itself; the seek after it hands these records over again.
    settled = app.flow_control.is_active() and not app.in_recovery
    current: list[Any] = []
    stale: list[Any] = []
    for event in events:
        message = event.message
        if message.generation_id != generation or (not settled and not has_engine(message.partition)):
            stale.append(event)
        else:
            current.append(event)
    return current, stale


def forgo(consumer: Any, events: Sequence[Any]) -> None:
    """Mark stale records acknowledged without acknowledging their offsets.

    ``Message.acked`` set first makes every later ack of the message a no-op (it is what
    faust tests before counting an offset). The consumer's set of in-flight messages is
    cleaned and its waiter woken, so a revocation waiting for the streams to empty
    (``Consumer.wait_empty``) goes on at once instead of after its 1 s poll."""
    for event in events:
        event.message.acked = True
    if events:
        consumer._clean_unacked_messages()  # noqa: SLF001 - faust 0.15 has no public way to drop one
        notify(consumer._waiting_for_ack)  # noqa: SLF001 - wakes Consumer.wait_empty

"""Records a batch holds across a rebalance: dropped, and never acknowledged.

faust's per-event stream iterator skips a record fetched in an older consumer-group
generation, or handed over while a rebalance has suspended the flow, and never acks it:
the partition's next owner (this worker again, or another) seeks to the committed offset
and is handed the record again. The monitor takes its batches from the inbox
(:mod:`monitor.inbox`), and a batch taken just before a rebalance can reach the handling
after it (the batch waits for the owner lock a revocation holds).

Handling such a batch re-created its partition's engine from a table not yet recovered for
the new assignment (a worker dropped from its group and continued then rolled its
successor's patients back: wrong alerts in 2 of 4 runs of the frozen-worker test). So its
stale records are dropped and, like faust's, not acknowledged: the monitor acknowledges
only the records it handled, so commits stop below a dropped one until its copy fetched
again is handled. (When batches came from ``Stream.take_events``, which acks every record
of a batch in a ``finally``, dropping them had to mark them acknowledged beforehand; acking
them was a loss: the sequential join/leave test lost alerts.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any


def split_stale(app: Any, messages: Sequence[Any], has_engine: Callable[[int], bool]) -> tuple[list[Any], list[Any]]:
    """The batch's records (faust ``Message`` objects) to handle, and the stale ones to drop.

    Stale: fetched in an older generation (the new assignment's seek hands them over again,
    as faust's own iterator assumes), or handed over while a rebalance has suspended the
    flow or the table's recovery runs, for a partition whose engine is already gone
    (revoked: handling would restore it from a table not yet recovered for the new
    assignment). A batch handed over while the flow is suspended but before the revocation
    reached the partitions is handled as usual: its states are written as the revocation
    finishes (not its offsets: faust forgets a revoked partition's acknowledgements, and the
    next owner drops the records again as duplicates). (Dropping those too sent every such
    batch through the re-fetch, where a second flow resume then cleared records from the
    streams' queues:
    see ``monitor.worker.resume_only_what_is_suspended``. Handled, they need no re-fetch.)"""
    generation = app.consumer_generation_id
    # faust resumes the flow before reading the changelogs, so "suspended" alone misses
    # the recovery itself; the seek after it hands these records over again.
    settled = app.flow_control.is_active() and not app.in_recovery
    current: list[Any] = []
    stale: list[Any] = []
    for message in messages:
        if message.generation_id != generation or (not settled and not has_engine(message.partition)):
            stale.append(message)
        else:
            current.append(message)
    return current, stale

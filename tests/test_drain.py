"""When the input counts as drained: the idle rule, and a backlog that ran dry."""

from __future__ import annotations

from monitor.drain import BACKLOG_WRITE_SPACING, DRAINED_AFTER, DrainWatch

from tests.clocks import ManualClock

BATCH = 500


def always() -> bool:
    return True


def never() -> bool:
    return False


def test_a_trickle_is_drained_only_after_the_idle_time() -> None:
    clock = ManualClock(100.0)
    watch = DrainWatch(clock)
    watch.batch_handled(still_queued=0, batch_size=BATCH)  # nothing queued behind it
    clock.now += DRAINED_AFTER / 2
    assert not watch.due(inbox_empty=True, input_complete=always)
    clock.now += DRAINED_AFTER / 2
    assert watch.due(inbox_empty=True, input_complete=always)


def test_a_backlog_that_ran_dry_is_drained_at_once() -> None:
    clock = ManualClock(100.0)
    watch = DrainWatch(clock)
    watch.batch_handled(still_queued=3 * BATCH, batch_size=BATCH)
    watch.batch_handled(still_queued=0, batch_size=BATCH)
    assert not watch.due(inbox_empty=False, input_complete=always)  # records still wait
    assert not watch.due(inbox_empty=True, input_complete=never)  # a partition has more to fetch
    assert watch.due(inbox_empty=True, input_complete=always)
    assert not watch.due(inbox_empty=True, input_complete=always)  # written: not again until the next


def test_bursts_near_capacity_write_at_most_once_per_spacing() -> None:
    clock = ManualClock(100.0)
    watch = DrainWatch(clock)
    dry_writes = 0
    for _ in range(40):  # a burst queues, drains within a tick, and comes again, for 1 s
        watch.batch_handled(still_queued=BATCH, batch_size=BATCH)
        clock.now += 0.025
        dry_writes += watch.due(inbox_empty=True, input_complete=always)
    assert dry_writes == 1 and 40 * 0.025 <= BACKLOG_WRITE_SPACING
    watch.batch_handled(still_queued=BATCH, batch_size=BATCH)
    clock.now += 0.025
    assert watch.due(inbox_empty=True, input_complete=always)  # the spacing has passed


def test_completeness_is_asked_only_when_the_rest_holds() -> None:
    """The completeness check walks every assigned partition: not at every tick of a trickle."""
    asked: list[bool] = []

    def complete() -> bool:
        asked.append(True)
        return False

    watch = DrainWatch(ManualClock(100.0))
    watch.batch_handled(still_queued=0, batch_size=BATCH)
    watch.due(inbox_empty=True, input_complete=complete)
    assert asked == []


def test_a_pause_of_the_worker_with_records_waiting_is_not_a_drained_input() -> None:
    """A collection or a commit's write stalls the worker for tenths of a second while the
    backlog waits in the inbox: writing then would only write the same patients twice."""
    clock = ManualClock(100.0)
    watch = DrainWatch(clock)
    watch.batch_handled(still_queued=0, batch_size=BATCH)
    clock.now += 10 * DRAINED_AFTER
    assert not watch.due(inbox_empty=False, input_complete=never)
    assert watch.due(inbox_empty=True, input_complete=never)  # the records were taken; none came since

"""The worker's garbage-collector settings (monitor.gc_tuning)."""

from __future__ import annotations

import gc
import weakref

from monitor.gc_tuning import THRESHOLDS, HeapSettler, tune_garbage_collector
from monitor.metrics import Metrics


def test_start_up_objects_are_frozen_thresholds_raised_and_pauses_observed() -> None:
    before = gc.get_threshold()
    callbacks = list(gc.callbacks)
    metrics = Metrics()
    try:
        tune_garbage_collector(metrics.gc_pauses)
        assert gc.get_threshold() == THRESHOLDS
        assert gc.get_freeze_count() > 0  # what was alive at start-up is never walked again
        gc.collect(0)
        gc.collect(2)
        registry = metrics.registry
        assert registry.get_sample_value("medsafety_gc_pause_seconds_count", {"generation": "0"}) == 1
        assert registry.get_sample_value("medsafety_gc_pause_seconds_count", {"generation": "2"}) == 1
        assert registry.get_sample_value("medsafety_gc_pause_seconds_count", {"generation": "1"}) == 0
    finally:
        gc.callbacks[:] = callbacks
        gc.unfreeze()
        gc.set_threshold(*before)


class _Node:
    """A weakly referable object to build a reference cycle with."""

    partner: object = None


def test_a_commit_freezes_what_is_alive_so_no_collection_walks_it_again() -> None:
    now = [0.0]
    metrics = Metrics()
    settler = HeapSettler(metrics.gc_frozen_garbage, full_every=60.0, clock=lambda: now[0])
    alive = _Node()
    try:
        settler.committed()
        assert gc.get_freeze_count() > 0
        assert not any(item is alive for item in gc.get_objects())  # only the permanent generation holds it
        # no full collection before full_every
        assert metrics.registry.get_sample_value("medsafety_gc_frozen_garbage_total") == 0
    finally:
        gc.unfreeze()


def test_a_cycle_frozen_while_alive_is_freed_by_the_next_full_collection() -> None:
    """The price of freezing (a cycle that dies frozen outlives any collection) and what
    bounds it: once ``full_every`` has passed, the next commit collects the frozen too."""
    now = [0.0]
    metrics = Metrics()
    settler = HeapSettler(metrics.gc_frozen_garbage, full_every=60.0, clock=lambda: now[0])
    first, second = _Node(), _Node()
    first.partner, second.partner = second, first
    gone = weakref.ref(first)
    try:
        settler.committed()
        del first, second
        gc.collect()
        assert gone() is not None  # frozen: the collector never walks it
        now[0] = 59.0
        settler.committed()
        assert gone() is not None
        now[0] = 61.0
        settler.committed()
        assert gone() is None
        assert metrics.registry.get_sample_value("medsafety_gc_frozen_garbage_total") >= 2  # the two nodes at least
        assert gc.get_freeze_count() > 0  # frozen again after the full collection
    finally:
        gc.unfreeze()

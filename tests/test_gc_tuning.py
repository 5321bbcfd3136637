"""The worker's garbage-collector settings (monitor.gc_tuning)."""

from __future__ import annotations

import gc

from monitor.gc_tuning import THRESHOLDS, tune_garbage_collector
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

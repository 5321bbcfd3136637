"""The cyclic garbage collector, tuned for a heap of many long-lived patient states.

CPython's defaults (thresholds 700, 10, 10) run a young collection every 700 net container
allocations and consider a full one every 100 of those. A full collection walks every
tracked object, and a worker's patient states are millions of them (at 100,000 patients
1.6 M tracked objects). Measured offline over the benchmark's 30,000-patient feed (the live worker's
batches, validation and state records without Kafka; 335,760 events): the defaults ran
4,406 young, 401 middle and 21 full collections, 11.3 s of a 52.2 s run (the full ones
9.3 s), and throughput fell as patients grew (6,432 events/s there against 8,330 at
10,000 patients). With 50,000, 20, 10: 17 young and 1 middle collection, 1.2 s; 8,169
events/s; the same peak RSS (334 MB), since the hot path's garbage is acyclic and freed by
reference counting, not by the collector.

Full collections still happen (every 10 middle ones, when the objects that survived since
the last one are a quarter of the old ones: CPython's own rule), so cyclic garbage is still
reclaimed. Objects alive at start-up (faust, aiokafka, pydantic's validators, the drug
catalogue) are moved to the permanent generation (``gc.freeze``), so no collection walks
them again. The pauses are measured (``medsafety_gc_pause_seconds``, by generation).

**After each offset commit, what is alive is frozen too** (:class:`HeapSettler`), and the
young threshold is above what a commit window allocated in the runs measured. The patient
states are acyclic (dataclasses, lists and dicts that reference down, never back), so
reference counting frees every one of them, and a collection can only find them alive.
Yet each new state object was walked by the next young collection, long after it was
allocated, when it was cold: logged one by one in a worker at a census of 30,000 (stop
33), the young collections after start-up walked 43,000-177,000 objects each and took
10-146 ms; the first freed 751 objects (start-up's leftovers), the 18 after it nothing at
all. At 100,000 patients each took 290-400 ms (a pause of the input, and of the alerts of
that moment), 2.9 s of a 1.1 M-event row. (The count behind the young threshold is net of
frees and stops at zero, so a census that holds still triggers collections: frees of old
objects cannot take it below zero, new ones raise it.) ``gc.freeze`` moves every tracked
object to the permanent generation at no cost (a list splice) and resets the counts.
Freezing at each commit alone, with the young threshold at 50,000, did not help: the
collections came within the windows, fewer but larger (up to 455,000 objects, 402 ms at
30,000 patients), and walked the same objects. At 1,000,000 a window of 300,000 records
allocates less than the threshold even while a census of 100,000 builds up (about 16
tracked objects a patient: 1.6 M in all at 100,000), so what a window allocates is frozen
before any collection walks it.

The price, in memory: ``gc.freeze`` collects nothing, so a reference cycle made in a
window (an exception's traceback, a callback that references its future) is frozen at the
next commit, dead or alive, and with it whatever it references, until the next full
collection. Every :data:`FULL_COLLECTION_EVERY` seconds the settler unfreezes and runs one
before freezing again; that is the bound. The worker makes little cyclic garbage: a full
collection after a whole 30,000-patient run (1.15 M events with the warm-up), everything
unfrozen, found 325 unreachable objects, shutdown's included; an error path that raises on
every record would make far more, and it is kept for up to the hour.

The price, in time: that full collection stops the event loop inside a commit: 890 ms at
30,000 patients (637,000 tracked objects), 2.1-2.5 s at 100,000 (1.6 M, offline after the
census warm-up), about 1.4 us a tracked object, once an hour. The group's session timeout
(``SESSION_TIMEOUT``, 10 s) is the limit: a census four times larger on one worker would
pause long enough to be dropped from its group; scale out with more workers instead.
CPython's own rule ran such full collections before, at moments of its choosing. A young
collection can still come where a window allocates more than the threshold (a restore of
a large partition's changelog, commits that keep failing): about 1 M cold objects, of the
order of a second, as often as that happens.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import Counter, Histogram

#: (young, middle, old) thresholds: see the module docstring.
THRESHOLDS = (1_000_000, 20, 10)
#: Seconds between the settler's full collections (see the module docstring).
FULL_COLLECTION_EVERY = 3600.0


def tune_garbage_collector(pauses: Histogram | None = None) -> None:
    """Freeze what is alive now, raise the collection thresholds, and observe each
    collection's pause in ``pauses`` (labelled by generation) if given. Call once, after
    start-up and before the feed."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
    if pauses is not None:
        gc.callbacks.append(_pause_observer(pauses))


def _pause_observer(pauses: Histogram) -> Any:
    children = {generation: pauses.labels(str(generation)) for generation in range(3)}
    started = [0.0]

    def observe(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            children[info["generation"]].observe(time.perf_counter() - started[0])

    return observe


class HeapSettler:
    """Freezes what is alive after each offset commit, with a full collection every
    ``full_every`` seconds (see the module docstring). A commit is the natural cadence: its
    window bounds what is allocated between two freezes, and a worker that stops receiving
    input stops committing and allocating alike."""

    def __init__(self, frozen_garbage: Counter, full_every: float = FULL_COLLECTION_EVERY,
                 clock: Callable[[], float] = time.monotonic) -> None:
        #: Counts the unreachable objects each full collection found (what the freezes would
        #: have leaked; ``medsafety_gc_frozen_garbage_total``): a count that climbs hour after
        #: hour is a leak the hourly collection is holding back.
        self._frozen_garbage = frozen_garbage
        self._full_every = full_every
        self._clock = clock
        self._last_full = clock()

    def committed(self) -> None:
        """Offsets were committed: freeze what is alive now (and, once ``full_every`` has
        passed, first collect everything, the frozen included)."""
        now = self._clock()
        if now - self._last_full >= self._full_every:
            self._last_full = now
            gc.unfreeze()
            self._frozen_garbage.inc(gc.collect())
        gc.freeze()

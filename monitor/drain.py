"""When the input counts as drained, so that what it caused is made durable at once.

While input flows, states are written and offsets committed once per commit window
(``COMMIT_INTERVAL``/``COMMIT_EVERY``): a patient changed by many batches is written once.
When the input stops, waiting for the window would leave the last states unwritten for up
to its length, so the worker's timer writes them as soon as the input counts as drained:

- **idle**: no batch for :data:`DRAINED_AFTER`, and none waiting in the inbox. A backlog
  hands batches over back to back, and a live feed at 1,000 events/s every 10 ms or so
  (``BATCH_WITHIN``), so this fires only at a trickle or at the end of a feed. A pause of
  the worker itself (a middle-generation collection took 0.2-0.6 s, a commit's write some
  tenths) is not a pause of the input, whose records queue behind it: a 1,000-patient
  backlog of 1.1 M events had 5 idle writes without the inbox test and 2 with it (the
  inbox itself ran empty after a large commit). It was 0.4 s, then 0.1 s; at 0.05 s (two
  ticks) a 1,000-patient replay is durable 0.10-0.13 s sooner (1.15-1.22 s -> 1.03-1.09 s
  from its first event, three runs each).
- **a backlog ran dry**: a full batch still waited in the inbox after one was taken (records
  queued) since the last such write, and now the inbox is empty and every input partition
  is at its end offset. Nothing more can come but new records, so the write need not wait
  for the idle rule: a 1,000-patient replay is durable about 0.05 s sooner. A trickle's
  records never queue, so it keeps the idle rule; a feed near the worker's capacity, whose
  bursts queue and drain again and again, gets such a write at most every
  :data:`BACKLOG_WRITE_SPACING`, so its patients are not written at almost every tick.
"""

from __future__ import annotations

import time
from collections.abc import Callable

#: Seconds without a batch after which the input counts as drained (see the module).
DRAINED_AFTER = 0.05
#: Least seconds between two writes for a backlog that ran dry (see the module).
BACKLOG_WRITE_SPACING = 1.0


class DrainWatch:
    """Told of each batch the monitor task takes; asked by the timer whether to write now."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.last_batch = clock()  # when the last batch was handled
        self._queued = False  # records queued in the inbox since the last write for a backlog
        self._last_dry_write = -BACKLOG_WRITE_SPACING

    def batch_handled(self, still_queued: int, batch_size: int) -> None:
        """A batch was handled; ``still_queued`` records waited in the inbox when it was taken."""
        self.last_batch = self._clock()
        if still_queued >= batch_size:
            self._queued = True

    def due(self, inbox_empty: bool, input_complete: Callable[[], bool]) -> bool:
        """Whether to write and commit now. ``input_complete``: every input partition is at
        its end offset (asked only when the rest of the backlog rule holds). Answering True
        counts as the write: the caller must then write."""
        now = self._clock()
        ran_dry = (self._queued and inbox_empty and now - self._last_dry_write >= BACKLOG_WRITE_SPACING
                   and input_complete())
        if ran_dry:
            self._last_dry_write = now
        if ran_dry or (inbox_empty and now - self.last_batch >= DRAINED_AFTER):
            self._queued = False
            return True
        return False

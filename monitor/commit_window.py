"""When input offsets are committed: one window, opened by the last commit whatever made it.

Each commit first writes every patient changed since the one before (:mod:`monitor.state_writes`),
once however often it changed, so the commits' spacing sets how many state records a backlog
writes. A window closes after ``COMMIT_EVERY`` records or ``COMMIT_INTERVAL`` seconds. faust
0.15 counts the two apart: its periodic commit keeps its own phase, and its records count is
reset only by itself. Near the rate where the two meet (300,000 records in 30 s, the
defaults then, at 10,000 events/s), each periodic commit came a few seconds after a records-count
one: at 1,000 patients, 3 of the 7 commits of a 1.1 M-event backlog came 1-7 s after another,
and wrote again every patient changed in between. Here every commit (the periodic one, a
records count, the end of a backlog, a revocation, a stop) opens the next window when it
begins, and the periodic commit waits for the window's time, not for its own. Records
handled while a commit's states are written (batches run between the write's turns) count
in the next window.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


class CommitWindow:
    """Records handled and time passed since the last commit began (or the last attempt
    of the periodic or the records-count commit)."""

    def __init__(self, every: int, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.every = every
        self.interval = interval
        self._clock = clock
        self.records = 0
        self.opened_at = clock()

    def handled(self, records: int) -> None:
        self.records += records

    def full(self) -> bool:
        """Enough records since the window opened for a commit."""
        return self.records >= self.every

    def seconds_left(self) -> float:
        """Until the window's time is up (zero or less: a commit is due)."""
        return self.opened_at + self.interval - self._clock()

    def open(self) -> None:
        """Start the next window: a commit is about to be tried (one that is refused is
        tried again a window later, not at every batch)."""
        self.records = 0
        self.opened_at = self._clock()

    def mark(self) -> tuple[int, float]:
        """Where a commit begins: the records counted so far, and now."""
        return self.records, self._clock()

    def committed(self, mark: tuple[int, float]) -> None:
        """The commit begun at ``mark`` succeeded: the next window opened then. Records
        handled while its states were written (batches run between its turns) are not
        in it, and stay counted."""
        records, began = mark
        self.records = max(0, self.records - records)
        self.opened_at = max(self.opened_at, began)


async def commit_periodically(consumer: Any, window: CommitWindow) -> None:
    """Stands for faust's ``Consumer._commit_handler``: commit once the window's time is up,
    counted from the last commit of any origin rather than on a timer of its own."""
    while not consumer.should_stop:
        left = window.seconds_left()
        if left > 0:
            await consumer.sleep(left)
            continue
        window.open()
        await consumer.commit()

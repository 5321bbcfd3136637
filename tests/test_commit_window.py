"""One commit window, opened by the last commit whatever made it (monitor.commit_window)."""

from __future__ import annotations

import asyncio

from monitor.commit_window import CommitWindow, commit_periodically

from tests.clocks import ManualClock


def test_a_window_closes_on_its_records_or_its_time_whichever_comes_first() -> None:
    clock = ManualClock(1000.0)
    window = CommitWindow(every=100, interval=30.0, clock=clock)
    window.handled(99)
    assert not window.full() and window.seconds_left() == 30.0
    window.handled(1)
    assert window.full()
    window.open()
    assert not window.full() and window.records == 0
    clock.now += 30.0
    assert window.seconds_left() == 0.0


class FakeConsumer:
    """mode's Service.sleep and faust's commit, on a fake clock: sleeping moves the clock."""

    def __init__(self, clock: ManualClock, window: CommitWindow, other_commits: list[float], stop_at: float) -> None:
        self.clock, self.window, self.stop_at = clock, window, stop_at
        self.other_commits = sorted(other_commits)  # when another path commits
        self.commits: list[tuple[float, str]] = []

    @property
    def should_stop(self) -> bool:
        return self.clock.now >= self.stop_at

    async def sleep(self, seconds: float) -> None:
        wake = self.clock.now + seconds
        while self.other_commits and self.other_commits[0] <= wake:  # another path commits meanwhile
            self.clock.now = self.other_commits.pop(0)
            self.commits.append((self.clock.now - 1000.0, "other"))
            self.window.open()  # as the commit hook does
        self.clock.now = wake

    async def commit(self) -> bool:
        self.commits.append((self.clock.now - 1000.0, "periodic"))
        assert len(self.commits) < 10, "committing again and again without waiting"
        return True


def test_the_periodic_commit_waits_for_the_window_not_for_a_timer_of_its_own() -> None:
    """faust's timer kept its own phase: a records-count commit at 27 s was followed by a
    periodic one at 30 s that wrote the same patients again. Here the next periodic commit
    comes a whole interval after the other one."""
    clock = ManualClock(1000.0)
    window = CommitWindow(every=300_000, interval=30.0, clock=clock)
    consumer = FakeConsumer(clock, window, [1027.0], stop_at=1100.0)
    asyncio.run(commit_periodically(consumer, window))
    assert consumer.commits == [(27.0, "other"), (57.0, "periodic"), (87.0, "periodic")]

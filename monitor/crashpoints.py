"""Repeatable crash injection for the reliability tests.

``MEDSAFETY_CRASH_AFTER=alerts-acked:3`` makes the worker SIGKILL itself right after the
third time it passes the step ``alerts-acked``: a crash at a chosen point of the
publish-then-persist protocol, instead of a kill timed by sleeps. Steps, in the order one
batch passes them (the last two at each state write that has states to write: before a
commit, on revocation, at shutdown, when the input drained; see :func:`monitor.worker.create_app`):

- ``batch-received``: records taken from the stream, nothing done yet;
- ``alerts-sent``: a batch's alerts (and dead letters, re-keyed records) handed to the
  producer, not yet acknowledged by the broker (counted only for batches with alerts);
- ``alerts-acked``: the broker acknowledged them; the changed states are not yet written
  (counted only for batches with alerts);
- ``state-sent``: before an offset commit, the changed patients' changelog records are
  handed to the producer, not yet acknowledged (a crash during a table changelog write);
- ``state-written``: the broker acknowledged them; the offsets are not yet committed.

``step:n:raise`` raises :class:`InjectedFailure` there instead: a failure of that step (a
send the broker refused, say), which the worker must turn into an exit without committing.
``step:n:stop`` sends the process SIGSTOP instead: a worker frozen (a long GC pause, a
suspended VM) until the test sends SIGCONT, by which time its group may have moved on.

Off (no cost beyond a None check) unless the setting is given.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

STEPS = ("batch-received", "alerts-sent", "alerts-acked", "state-sent", "state-written")


class InjectedFailure(RuntimeError):
    """A step made to fail by ``MEDSAFETY_CRASH_AFTER=step:n:raise``."""


class CrashPoints:
    def __init__(self, spec: str | None) -> None:
        self._target: tuple[str, int] | None = None
        self._how = ""
        self._passed: Counter[str] = Counter()
        if spec:
            name, _, rest = spec.partition(":")
            count, _, how = rest.partition(":")
            if name not in STEPS:
                raise ValueError(f"crash_after: unknown step {name!r}; steps: {', '.join(STEPS)}")
            if how not in ("", "raise", "stop"):
                raise ValueError(f"crash_after: {how!r} is not 'raise' or 'stop' (step:n kills, step:n:raise "
                                 "fails the step, step:n:stop freezes the process)")
            self._target = (name, int(count or 1))
            self._how = how

    def passed(self, step: str) -> None:
        """Call at each step; kills the process (raises, freezes it) when the configured one is reached."""
        if self._target is None:
            return
        self._passed[step] += 1
        if (step, self._passed[step]) == self._target:
            if self._how == "raise":
                raise InjectedFailure(f"injected failure after {step} #{self._passed[step]}")
            os.kill(os.getpid(), signal.SIGSTOP if self._how == "stop" else signal.SIGKILL)

"""monitor.crashpoints: the spec names a step, a count and how the step ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from monitor.crashpoints import CrashPoints, InjectedFailure


def test_raise_fails_the_named_pass_of_the_step_only() -> None:
    points = CrashPoints("state-sent:2:raise")
    points.passed("state-sent")
    points.passed("alerts-sent")  # other steps do not count
    with pytest.raises(InjectedFailure, match="state-sent #2"):
        points.passed("state-sent")
    points.passed("state-sent")  # the third pass goes through


@pytest.mark.parametrize("spec, error", [("written:1", "unknown step"), ("state-sent:1:explode", "not 'raise' or 'stop'")])
def test_a_bad_spec_is_refused(spec: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        CrashPoints(spec)


def test_off_without_a_spec() -> None:
    points = CrashPoints(None)
    for _ in range(3):
        points.passed("state-written")


def test_stop_freezes_the_process_at_the_named_pass_until_it_is_continued() -> None:
    child = subprocess.Popen([sys.executable, "-c", (
        "from monitor.crashpoints import CrashPoints\n"
        "points = CrashPoints('alerts-acked:2:stop')\n"
        "points.passed('alerts-acked'); print('first', flush=True)\n"
        "points.passed('alerts-acked'); print('continued', flush=True)\n")], stdout=subprocess.PIPE, text=True)
    try:
        _, status = os.waitpid(child.pid, os.WUNTRACED)  # returns when the child stops (or exits)
        assert os.WIFSTOPPED(status) and os.WSTOPSIG(status) == signal.SIGSTOP
        os.kill(child.pid, signal.SIGCONT)
        out, _ = child.communicate(timeout=30)
    finally:
        child.kill()
    assert out.split() == ["first", "continued"]

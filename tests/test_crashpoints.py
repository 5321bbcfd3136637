"""monitor.crashpoints: the spec names a step, a count and how the step ends."""

from __future__ import annotations

import pytest

from monitor.crashpoints import CrashPoints, InjectedFailure


def test_raise_fails_the_named_pass_of_the_step_only() -> None:
    points = CrashPoints("state-sent:2:raise")
    points.passed("state-sent")
    points.passed("alerts-sent")  # other steps do not count
    with pytest.raises(InjectedFailure, match="state-sent #2"):
        points.passed("state-sent")
    points.passed("state-sent")  # the third pass goes through


@pytest.mark.parametrize("spec, error", [("written:1", "unknown step"), ("state-sent:1:explode", "not 'raise'")])
def test_a_bad_spec_is_refused(spec: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        CrashPoints(spec)


def test_off_without_a_spec() -> None:
    points = CrashPoints(None)
    for _ in range(3):
        points.passed("state-written")

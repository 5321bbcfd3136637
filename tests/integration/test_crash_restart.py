"""A worker SIGKILLed mid-feed at a named step of the publish-then-persist protocol, then
restarted: every expected alert reaches the alerts topic, and the queue's view (records
deduplicated by ``(alert_id, revision)``) is exactly the offline result. State comes back
from the changelog: the restarted worker does not apply the whole feed again.

The crash is repeatable: ``MEDSAFETY_CRASH_AFTER=step:n`` (monitor/crashpoints.py) kills
the worker right after the n-th pass of ``step``; small batches make a feed many batches.
``step:n:raise`` makes that step fail instead (a send the broker refused): the worker must
exit with status 75 without committing, and its restart must lose nothing either.
"""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest

from monitor.cli import main as medmon
from monitor.demo import FEED_PATH
from monitor.worker import EXIT_OUTPUT_FAILED
from tests.integration.workers import Worker, assert_same_alerts, offline_alerts

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FEED_EVENTS = len(FEED_PATH.read_text().splitlines())
FEED_DUPLICATES = 2  # the demo feed re-delivers two events on purpose


def queue_view(values: list[str]) -> dict[tuple[str, int], str]:
    """What the pharmacist queue keeps: one record per (alert_id, revision); a second record
    under the same key must be the same record (a re-publish, never a different decision)."""
    view: dict[tuple[str, int], str] = {}
    for value in values:
        record = json.loads(value)
        key = (record["alert_id"], record["revision"])
        assert view.setdefault(key, value) == value, f"two different records for {key}"
    return view


def crash_and_restart(broker: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str,
                      **settings: str) -> tuple[Worker, Worker]:
    # small batches, a commit (states, then offsets) every batch: the crash comes after some
    # offsets and states are durable (so a step counted in alert batches is not the first:
    # the first batch of a fast replay has alerts, and nothing was committed before it)
    crashing = Worker(broker, tmp_path, crash_after=step, batch_size="20", commit_every="20", **settings).start()
    crashing.use_env(monkeypatch)
    # published while the worker runs, as a live feed arrives
    assert medmon(["replay", str(FEED_PATH)]) == 0
    assert crashing.process is not None
    try:
        status = crashing.process.wait(timeout=120)
    except subprocess.TimeoutExpired:
        crashing.stop()
        raise AssertionError(f"the crash point {step} was never reached") from None
    log = crashing.log.read_text(errors="replace")
    if step.endswith(":raise"):
        assert status == EXIT_OUTPUT_FAILED, log[-3000:]
        assert "failed (InjectedFailure): exiting without committing" in log
    else:
        assert status == -signal.SIGKILL, log[-3000:]
    restarted = crashing.sibling().start()
    return crashing, restarted


def applied_events(worker: Worker) -> float:
    """Events the worker applied itself (processed minus re-deliveries it dropped)."""
    metrics = worker.metrics()
    processed = sum(metrics.get(f'medsafety_events_processed_total{{type="{t}"}}', 0)
                    for t in ("prescription", "pain_score", "patient_update"))
    return processed - metrics.get("medsafety_events_duplicate_total", 0)


@pytest.mark.parametrize("step", ["batch-received:8", "alerts-sent:3", "alerts-acked:3", "state-sent:4", "state-written:4",
                                  "batch-received:8:raise", "alerts-acked:3:raise", "state-sent:4:raise"])
def test_killed_mid_feed_and_restarted_loses_no_alert(broker: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      step: str) -> None:
    expected = offline_alerts(tmp_path)
    crashing, restarted = crash_and_restart(broker, tmp_path, monkeypatch, step)
    try:
        restarted.wait_caught_up()
        values = [m.value.decode() for m in restarted.read_to_end(restarted.topic("alerts"))]
        view = queue_view(values)
        assert_same_alerts(list(view.values()), expected)  # every alert, nothing else
        if step.startswith("alerts-acked"):
            assert len(values) > len(expected)  # alerts out, state not written: re-published, not lost
        applied = applied_events(restarted)
        assert applied < FEED_EVENTS - FEED_DUPLICATES  # resumed from the changelog, not from scratch
        print(f"{step}: {len(values)} alert records for {len(expected)} expected "
              f"({len(values) - len(expected)} re-published); restarted worker applied {applied:.0f} "
              f"of {FEED_EVENTS - FEED_DUPLICATES} events")
    finally:
        restarted.stop()

"""Broker outage (Apache Kafka, whose log survives a restart; the embedded broker keeps
everything in memory): the broker stops for 30 s mid-feed and comes back on the same
port with the same log. The worker rides it out without a restart, shows the outage in
/readyz and its metrics, and loses nothing."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from monitor.cli import main as medmon
from monitor.demo import FEED_PATH
from monitor.publisher import read_alerts
from monitor.settings import ServiceSettings
from tests.integration.conftest import started_kafka
from tests.integration.workers import Worker, assert_same_alerts, offline_alerts

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OUTAGE_SECONDS = 30


def readyz(worker: Worker) -> int:
    try:
        with urllib.request.urlopen(worker.metrics_url.replace("/metrics", "/readyz"), timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def wait_until(condition, what: str, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for: {what}"
        time.sleep(0.25)  # polling a child process's endpoints


def test_worker_rides_out_a_30_second_broker_outage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kafka = started_kafka(tmp_path / "kafka")
    lines = FEED_PATH.read_text().splitlines(keepends=True)
    first, second = tmp_path / "first.ndjson", tmp_path / "second.ndjson"
    first.write_text("".join(lines[: len(lines) // 2]))
    second.write_text("".join(lines[len(lines) // 2:]))
    expected = offline_alerts(tmp_path)
    worker = Worker(kafka.url, tmp_path).start()
    try:
        worker.use_env(monkeypatch)
        assert medmon(["replay", str(first)]) == 0
        worker.wait_caught_up()
        assert readyz(worker) == 200

        kafka.stop()
        down_since = time.monotonic()
        wait_until(lambda: worker.metrics().get("medsafety_broker_connected") == 0, "the worker to see the outage")
        assert readyz(worker) == 503
        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - down_since)))  # the outage itself is the test
        kafka.start()

        wait_until(lambda: readyz(worker) == 200, "ready again after the broker returned", timeout=120)
        assert medmon(["replay", str(second)]) == 0
        metrics = worker.wait_caught_up()
        assert worker.process is not None and worker.process.poll() is None  # never restarted
        assert metrics["medsafety_broker_disconnects_total"] >= 1
        alerts = [r.model_dump_json() for r in read_alerts(kafka.url, service=ServiceSettings.from_env())]
        assert_same_alerts(alerts, expected)
        processed = sum(v for k, v in metrics.items() if k.startswith("medsafety_events_processed_total{"))
        assert processed >= len(lines)  # every record reached the worker (re-deliveries may add some)
        assert json.loads(urllib.request.urlopen(worker.metrics_url.replace("/metrics", "/readyz")).read())["ready"]
    finally:
        worker.stop()
        kafka.close()

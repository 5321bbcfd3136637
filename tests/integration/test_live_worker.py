"""The live worker end to end: embedded broker over TCP, a real worker process, the demo
feed replayed to the input topics; alerts, dead letters and /metrics asserted."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer

from monitor.broker import KAFKA_API_VERSION
from monitor.cli import main as medmon
from monitor.demo import FEED_PATH
from tests.test_deploy import referenced_metrics

pytestmark = pytest.mark.integration


class Worker:
    """A ``medmon worker`` child process on its own topics (one namespace per test)."""

    def __init__(self, broker: str, tmp: Path, env: dict[str, str] | None = None) -> None:
        ns = uuid.uuid4().hex[:8]
        self.env = env or dict(os.environ, MEDSAFETY_BROKER_URL=broker, MEDSAFETY_APP_ID=f"medsafety-{ns}",
                        MEDSAFETY_RX_TOPIC=f"rx-{ns}", MEDSAFETY_PAIN_TOPIC=f"pain-{ns}",
                        MEDSAFETY_PATIENT_TOPIC=f"adt-{ns}", MEDSAFETY_REPARTITION_TOPIC=f"rekey-{ns}",
                        MEDSAFETY_ALERTS_TOPIC=f"alerts-{ns}", MEDSAFETY_DEAD_LETTER_TOPIC=f"dlq-{ns}",
                        MEDSAFETY_ALLOWED_LATENESS="PT1S", MEDSAFETY_METRICS_PORT="0",
                        MEDSAFETY_SESSION_TIMEOUT="6")
        self.broker = broker
        self.log = tmp / f"worker-{ns}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.metrics_url = ""

    def start(self, timeout: float = 60) -> "Worker":
        self.process = subprocess.Popen([sys.executable, "-m", "monitor.cli", "worker"], env=self.env,
                                        stdout=subprocess.DEVNULL, stderr=self.log.open("wb"))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(r"metrics (http://\S+/metrics)", self.log.read_text(errors="replace"))
            if match:
                self.metrics_url = match.group(1)
                return self
            if self.process.poll() is not None:
                break
            time.sleep(0.1)  # waiting for a child process to print its address
        raise AssertionError(f"worker did not start:\n{self.log.read_text(errors='replace')[-3000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def sibling(self) -> "Worker":
        """Another worker of the same group on the same topics."""
        return Worker(self.broker, self.log.parent, self.env)

    def topic(self, name: str) -> str:
        return self.env[f"MEDSAFETY_{name.upper()}_TOPIC"]

    def read(self, topic: str, count: int, timeout: float = 90) -> list:
        """Records of ``topic`` until ``count`` arrived (then one more second for extras)."""
        consumer = KafkaConsumer(topic, bootstrap_servers=self.broker, api_version=KAFKA_API_VERSION,
                                 auto_offset_reset="earliest", enable_auto_commit=False, group_id=None)
        records: list = []
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                batch = consumer.poll(timeout_ms=500)
                for messages in batch.values():
                    records.extend(messages)
                if len(records) >= count:
                    extra_deadline = time.monotonic() + 1.0
                    while time.monotonic() < extra_deadline:
                        for messages in consumer.poll(timeout_ms=200).values():
                            records.extend(messages)
                    return records
        finally:
            consumer.close()
        return records

    def use_env(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Point in-process CLI calls (``medmon replay``) at this worker's topics."""
        for name, value in self.env.items():
            if name.startswith("MEDSAFETY_"):
                monkeypatch.setenv(name, value)

    def metrics(self) -> dict[str, float]:
        text = urllib.request.urlopen(self.metrics_url, timeout=10).read().decode()
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                values[name] = float(value)
        return values


@pytest.fixture()
def worker(broker: str, tmp_path: Path) -> Iterator[Worker]:
    w = Worker(broker, tmp_path)
    yield w.start()
    w.stop()


def offline_alerts(tmp_path: Path) -> list[str]:
    out = tmp_path / "offline.ndjson"
    assert medmon(["evaluate", str(FEED_PATH), "--out", str(out)]) == 0
    return out.read_text().splitlines()


def assert_same_alerts(actual: list[str], expected: list[str]) -> None:
    """Equal as multisets; on failure name the records missing and unexpected (short form)."""
    if sorted(actual) == sorted(expected):
        return

    def short(line: str) -> str:
        r = json.loads(line)
        return f"{r['patient_id']} {r['kind']} rev{r['revision']} {r['status']} {r['severity']} at {r['raised_at']}"

    missing = [short(x) for x in expected if actual.count(x) < expected.count(x)]
    extra = [short(x) for x in actual if actual.count(x) > expected.count(x)]
    raise AssertionError(f"{len(actual)} alerts, {len(expected)} expected\nmissing: {missing}\nunexpected: {extra}")


def test_demo_feed_gives_the_offline_alerts_dead_letters_and_metrics(worker: Worker, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    expected = offline_alerts(tmp_path)
    worker.use_env(monkeypatch)
    assert medmon(["replay", str(FEED_PATH)]) == 0

    producer = KafkaProducer(bootstrap_servers=worker.broker, api_version=KAFKA_API_VERSION)
    rx, pain = worker.topic("rx"), worker.topic("pain")
    bad = [
        (rx, b"MRN-X", b"{not json"),
        (pain, b"MRN-X", json.dumps({"type": "pain_score", "event_id": "b1", "occurred_at": "2026-03-06T20:00:00Z",
                                     "patient": {"id": "MRN-X"}, "score": 11}).encode()),
        (rx, b"MRN-X", b"\xff\xfe"),
        (rx, b"MRN-X", json.dumps({"type": "prescription", "event_id": "b2", "occurred_at": "2026-03-06T20:00:00Z",
                                   "patient": {"id": "MRN-X"}, "order_id": "O", "action": "new",
                                   "drug": "oxycodone"}).encode()),
    ]
    for topic, key, value in bad:
        producer.send(topic, key=key, value=value)
    producer.flush()
    producer.close()

    alerts = worker.read(worker.topic("alerts"), len(expected))
    assert_same_alerts([m.value.decode() for m in alerts], expected)
    assert all(m.key == json.loads(m.value)["patient_id"].encode() for m in alerts)

    letters = worker.read(worker.topic("dead_letter"), len(bad))
    reasons = sorted(dict(m.headers)["medsafety-reason"].decode() for m in letters)
    assert reasons == sorted(["invalid_json", "invalid_value", "not_utf8", "missing_field"])
    assert {m.value for m in letters} == {value for _, _, value in bad}  # the original bytes
    assert all(dict(m.headers)["medsafety-topic"].decode() in (rx, pain) for m in letters)

    metrics = worker.metrics()
    feed_types = [json.loads(line)["type"] for line in FEED_PATH.read_text().splitlines()]
    for event_type in ("prescription", "pain_score", "patient_update"):
        assert metrics[f'medsafety_events_processed_total{{type="{event_type}"}}'] == feed_types.count(event_type)
    assert metrics['medsafety_events_invalid_total{reason="invalid_json"}'] == 1
    assert metrics["medsafety_events_duplicate_total"] == 2  # the feed re-delivers two events
    published = sum(v for k, v in metrics.items() if k.startswith("medsafety_alerts_total{"))
    assert published == len(expected)
    assert metrics["medsafety_dead_letters_total"] == len(bad)
    assert metrics["medsafety_alert_latency_seconds_count"] > 0
    text = urllib.request.urlopen(worker.metrics_url, timeout=10).read().decode()
    assert "MRN" not in text  # no patient identifier in any label

    # every metric the alerting rules and the dashboard query is one this worker exports
    exported = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}
    assert referenced_metrics() - exported == set()


def test_records_keyed_otherwise_are_rekeyed_once_and_still_alert(worker: Worker) -> None:
    producer = KafkaProducer(bootstrap_servers=worker.broker, api_version=KAFKA_API_VERSION)
    base = {"type": "prescription", "patient": {"id": "MRN-K", "birth_date": "1950-01-01", "unit": "5 West"},
            "action": "new", "dose": 5, "dose_unit": "mg", "frequency_per_day": 4}
    opioid = dict(base, event_id="k1", occurred_at="2026-03-02T08:00:00Z", order_id="O1", drug="oxycodone")
    benzo = dict(base, event_id="k2", occurred_at="2026-03-02T09:00:00Z", order_id="O2", drug="lorazepam", dose=1)
    producer.send(worker.topic("rx"), key=None, value=json.dumps(opioid).encode())
    producer.send(worker.topic("rx"), key=b"wrong-key", value=json.dumps(benzo).encode())
    producer.flush()
    producer.close()
    [alert] = worker.read(worker.topic("alerts"), 1)
    record = json.loads(alert.value)
    assert (record["kind"], record["severity"], record["patient_id"]) == ("opioid_benzodiazepine", "critical", "MRN-K")
    assert worker.metrics()["medsafety_events_rekeyed_total"] == 2


def wait_for_assignment(workers: list[Worker], partitions: int, timeout: float = 120) -> list[int]:
    """Poll each worker's ``medsafety_assigned_partitions`` until the group's assignment
    covers every partition with every worker owning some."""
    deadline = time.monotonic() + timeout
    owned: list[int] = []
    while time.monotonic() < deadline:
        owned = [int(w.metrics().get("medsafety_assigned_partitions", 0)) for w in workers]
        if sum(owned) == partitions and all(owned):
            return owned
        time.sleep(0.25)  # polling an observable condition (the group's assignment)
    raise AssertionError(f"group never settled: owned partitions per worker {owned}")


def test_two_workers_in_one_group_give_one_workers_alerts(worker: Worker, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    expected = offline_alerts(tmp_path)
    second = worker.sibling().start()
    try:
        assert wait_for_assignment([worker, second], partitions=4) in ([2, 2], [1, 3], [3, 1])
        worker.use_env(monkeypatch)
        assert medmon(["replay", str(FEED_PATH)]) == 0
        alerts = worker.read(worker.topic("alerts"), len(expected))
        assert_same_alerts([m.value.decode() for m in alerts], expected)

        feed_types = [json.loads(line)["type"] for line in FEED_PATH.read_text().splitlines()]
        per_worker = []
        for w in (worker, second):
            metrics = w.metrics()
            per_worker.append(sum(metrics.get(f'medsafety_events_processed_total{{type="{t}"}}', 0)
                                  for t in ("prescription", "pain_score", "patient_update")))
        assert all(per_worker), per_worker  # both took part
        assert sum(per_worker) == len(feed_types)  # every record once, by one worker or the other
    finally:
        second.stop()

"""A ``medmon worker`` child process and what the integration tests ask of it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from kafka import KafkaConsumer

from monitor.broker import KAFKA_API_VERSION, ensure_topics, read_to_end
from monitor.cli import main as medmon
from monitor.demo import FEED_PATH
from monitor.settings import ServiceSettings


class Worker:
    """A ``medmon worker`` child process on its own topics (one namespace per test)."""

    def __init__(self, broker: str, tmp: Path, env: dict[str, str] | None = None, **settings: str) -> None:
        ns = uuid.uuid4().hex[:8]
        self.env = dict(env) if env else dict(os.environ, MEDSAFETY_BROKER_URL=broker, MEDSAFETY_APP_ID=f"medsafety-{ns}",
                        MEDSAFETY_RX_TOPIC=f"rx-{ns}", MEDSAFETY_PAIN_TOPIC=f"pain-{ns}",
                        MEDSAFETY_PATIENT_TOPIC=f"adt-{ns}", MEDSAFETY_REPARTITION_TOPIC=f"rekey-{ns}",
                        MEDSAFETY_ALERTS_TOPIC=f"alerts-{ns}", MEDSAFETY_DEAD_LETTER_TOPIC=f"dlq-{ns}",
                        MEDSAFETY_ACTIONS_TOPIC=f"actions-{ns}",
                        MEDSAFETY_ALLOWED_LATENESS="PT1S", MEDSAFETY_METRICS_PORT="0",
                        MEDSAFETY_SESSION_TIMEOUT="6")
        self.env.update({f"MEDSAFETY_{name.upper()}": value for name, value in settings.items()})
        self.broker = broker
        self.log = tmp / f"worker-{ns}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.metrics_url = ""

    def start(self, timeout: float = 60, loglevel: str = "info") -> "Worker":
        self.process = subprocess.Popen([sys.executable, "-m", "monitor.cli", "worker", "--loglevel", loglevel],
                                        env=self.env, cwd=self.log.parent,  # faust's data directory goes there
                                        stdout=subprocess.DEVNULL, stderr=self.log.open("wb"))
        self.metrics_url = wait_for_output(self.process, self.log, r"metrics (http://\S+/metrics)", timeout,
                                           "worker").group(1)
        return self

    def stop(self) -> None:
        stop_process(self.process)

    def sibling(self, **settings: str) -> "Worker":
        """Another worker of the same group on the same topics (``settings`` override)."""
        env = {k: v for k, v in self.env.items() if k != "MEDSAFETY_CRASH_AFTER"}
        return Worker(self.broker, self.log.parent, env, **settings)

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

    def read_to_end(self, topic: str) -> list:
        """Every record of ``topic`` up to its end now (monitor.broker.read_to_end)."""
        return list(read_to_end(self.broker, topic))

    def wait_caught_up(self, partitions: int = 4, timeout: float = 180) -> dict[str, float]:
        """Poll /metrics until this worker owns every partition, has consumed every input
        record (a lag gauge of 0 for each input topic-partition) and holds no event: all
        it will publish for the input so far is acknowledged (gauges are set after acks)."""
        inputs = 5 * partitions  # three input topics, the re-key topic and the actions topic
        deadline = time.monotonic() + timeout
        metrics: dict[str, float] = {}
        while time.monotonic() < deadline:
            metrics = self.metrics()
            lags = [v for k, v in metrics.items() if k.startswith("medsafety_consumer_lag{")]
            if (metrics.get("medsafety_assigned_partitions") == partitions and len(lags) == inputs
                    and not any(lags) and metrics.get("medsafety_held_events") == 0):
                return metrics
            time.sleep(0.25)  # polling observable progress of a child process
        raise AssertionError(f"worker never caught up: {metrics}\nits log ends:\n"
                             f"{self.log.read_text(errors='replace')[-3000:]}")

    def create_topics(self) -> None:
        """The topics ``medmon worker`` would create, made before it starts (to publish first)."""
        service = ServiceSettings.from_env(self.env)
        ensure_topics(self.broker, [*service.input_topics, service.repartition_topic, service.alerts_topic,
                                    service.dead_letter_topic], service.partitions, service.replication_factor)

    def use_env(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Point in-process CLI calls (``medmon replay``) at this worker's topics."""
        for name, value in self.env.items():
            if name.startswith("MEDSAFETY_"):
                monkeypatch.setenv(name, value)

    def metrics_text(self) -> str:
        return urllib.request.urlopen(self.metrics_url, timeout=10).read().decode()

    def metrics(self) -> dict[str, float]:
        text = self.metrics_text()
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                values[name] = float(value)
        return values


def stop_process(process: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM, then SIGKILL after 30 s."""
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def wait_for_output(process: subprocess.Popen[bytes], log: Path, pattern: str, timeout: float,
                    what: str) -> re.Match[str]:
    """The first match of ``pattern`` in a child process's log (its printed addresses)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = re.search(pattern, log.read_text(errors="replace"))
        if match:
            return match
        if process.poll() is not None:
            break
        time.sleep(0.1)  # waiting for a child process to print its address
    raise AssertionError(f"{what} did not start:\n{log.read_text(errors='replace')[-3000:]}")


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

    missing = [x for x in expected if actual.count(x) < expected.count(x)]
    extra = [x for x in actual if actual.count(x) > expected.count(x)]
    differences = []  # fields of a missing and an unexpected record with the same short form
    for wanted in missing:
        for got in extra:
            if short(got) == short(wanted):
                a, b = json.loads(wanted), json.loads(got)
                differences.append(f"{short(wanted)}: " + "; ".join(
                    f"{k} expected {a.get(k)!r}, got {b.get(k)!r}" for k in sorted(a.keys() | b.keys())
                    if a.get(k) != b.get(k)))
    raise AssertionError(f"{len(actual)} alerts, {len(expected)} expected\nmissing: {[short(x) for x in missing]}\n"
                         f"unexpected: {[short(x) for x in extra]}\ndiffering: {differences}")


def wait_for_assignment(workers: list[Worker], partitions: int, timeout: float = 120) -> list[int]:
    """Poll each worker's metrics until the group has settled: every worker joined (at
    least one assignment) and is ready, and together they own every input partition. A
    worker may own none when there are more workers than faust's assignor spreads to."""
    deadline = time.monotonic() + timeout
    owned: list[int] = []
    while time.monotonic() < deadline:
        metrics = [w.metrics() for w in workers]
        owned = [int(m.get("medsafety_assigned_partitions", 0)) for m in metrics]
        settled = all(m.get("medsafety_rebalances_total", 0) >= 1 and m.get("medsafety_ready") == 1 for m in metrics)
        if settled and sum(owned) == partitions:
            return owned
        time.sleep(0.25)  # polling an observable condition (the group's assignment)
    raise AssertionError(f"group never settled: owned partitions per worker {owned}")

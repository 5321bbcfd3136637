"""Security: the monitor over Kafka's SASL_SSL (PLAIN and SCRAM-SHA-512, TLS with a CA file,
the password from the environment or a file), and patient identifiers kept out of logs at
INFO and above and out of metric labels."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from monitor.cli import main as medmon
from monitor.demo import FEED_PATH
from monitor.publisher import read_alerts
from monitor.settings import ServiceSettings
from tests.integration.conftest import SASL_USERS
from tests.integration.workers import Worker, assert_same_alerts, offline_alerts

pytestmark = pytest.mark.integration

[(USER, PASSWORD)] = SASL_USERS.items()
INFO_OR_ABOVE = re.compile(r"\b(INFO|WARNING|WARN|ERROR|CRITICAL)\b")


@pytest.mark.parametrize("mechanism, secret_from", [("SCRAM-SHA-512", "file"), ("PLAIN", "environment")])
def test_worker_replay_and_alerts_over_sasl_ssl(secured_kafka, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                mechanism: str, secret_from: str) -> None:
    secret: dict[str, str] = {"sasl_password": PASSWORD}
    if secret_from == "file":
        path = tmp_path / "sasl-password"
        path.write_text(PASSWORD + "\n")
        secret = {"sasl_password_file": str(path)}
    expected = offline_alerts(tmp_path)
    worker = Worker(secured_kafka.secure_url, tmp_path, security_protocol="SASL_SSL", sasl_mechanism=mechanism,
                    sasl_username=USER, ssl_cafile=str(secured_kafka.ca_file), **secret).start(loglevel="info")
    try:
        worker.use_env(monkeypatch)
        assert medmon(["replay", str(FEED_PATH)]) == 0
        worker.wait_caught_up()
        alerts = [record.model_dump_json() for record in read_alerts(worker.broker, service=ServiceSettings.from_env())]
        assert_same_alerts(alerts, expected)
        log = worker.log.read_text(errors="replace")
        assert PASSWORD not in log
    finally:
        worker.stop()


def test_wrong_password_is_refused(secured_kafka, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The secured listener really checks: the same client with a wrong password gets nothing in."""
    monkeypatch.setenv("MEDSAFETY_BROKER_URL", secured_kafka.secure_url)
    for name, value in {"SECURITY_PROTOCOL": "SASL_SSL", "SASL_MECHANISM": "SCRAM-SHA-512", "SASL_USERNAME": USER,
                        "SASL_PASSWORD": "not-the-password", "SSL_CAFILE": str(secured_kafka.ca_file)}.items():
        monkeypatch.setenv(f"MEDSAFETY_{name}", value)
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    from monitor.broker import PRODUCER_OPTIONS
    from monitor.kafka_clients import security_options

    service = ServiceSettings.from_env()
    with pytest.raises(KafkaError):
        producer = KafkaProducer(bootstrap_servers=service.bootstrap, **PRODUCER_OPTIONS,
                                 max_block_ms=5000, **security_options(service))
        try:
            producer.send("medsafety-auth-probe", b"x").get(timeout=10)
        finally:
            producer.close(timeout=1)


def test_no_patient_id_in_logs_at_info_or_above_nor_in_metric_labels(broker: str, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    patient_ids = {json.loads(line)["patient"]["id"] for line in FEED_PATH.read_text().splitlines()}
    worker = Worker(broker, tmp_path).start(loglevel="info")
    try:
        worker.use_env(monkeypatch)
        assert medmon(["replay", str(FEED_PATH)]) == 0
        worker.wait_caught_up()
        lines = worker.log.read_text(errors="replace").splitlines()
        assert any(INFO_OR_ABOVE.search(line) for line in lines)  # the worker did log at INFO
        leaks = [line for line in lines if INFO_OR_ABOVE.search(line) and any(p in line for p in patient_ids)]
        assert leaks == []
        exposition = [line for line in worker.metrics_text().splitlines() if not line.startswith("#")]
        assert [line for line in exposition if any(p in line for p in patient_ids)] == []
    finally:
        worker.stop()

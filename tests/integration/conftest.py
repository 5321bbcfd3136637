"""The brokers the integration suite runs on: the embedded Tansu broker (the quick start's)
and Apache Kafka in KRaft mode from Maven Central's jars (production's). Every test that
takes ``broker`` runs on both.

Without Java or Maven the Apache Kafka runs are skipped with the reason, except when ``CI``
is set: there a missing broker is a failure. ``MEDSAFETY_TEST_BROKER_URL`` points the
whole suite at one external broker instead.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from monitor.broker import EmbeddedBroker

KRAFT_SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "kafka" / "kraft.py"
EXTERNAL = os.environ.get("MEDSAFETY_TEST_BROKER_URL")
BROKERS = ["external"] if EXTERNAL else ["embedded", "apache-kafka"]


def kraft() -> ModuleType:
    """``deploy/kafka/kraft.py`` (a stand-alone script, stdlib only) as a module."""
    module = sys.modules.get("medsafety_kraft")
    if module is None:
        spec = importlib.util.spec_from_file_location("medsafety_kraft", KRAFT_SCRIPT)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules["medsafety_kraft"] = module
        spec.loader.exec_module(module)
    return module


def unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"Apache Kafka is required in CI: {reason}", pytrace=False)
    pytest.skip(f"Apache Kafka runs skipped: {reason}")


def started_kafka(data_dir: Path, **options: object) -> object:
    """A started ``ApacheKafka`` (skipped, or failed under CI, when it cannot run here)."""
    module = kraft()
    missing = module.missing_tools()
    if missing:
        unavailable(f"{' and '.join(missing)} not on PATH")
    broker = module.ApacheKafka(data_dir=data_dir, **options)
    try:
        broker.start()
    except module.KafkaUnavailable as exc:
        unavailable(str(exc))
    return broker


@pytest.fixture(scope="session")
def apache_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A single-node KRaft broker for the session (started on first use)."""
    broker = started_kafka(tmp_path_factory.mktemp("apache-kafka"))
    yield broker
    broker.close()  # type: ignore[attr-defined]


SASL_USERS = {"medsafety": "medsafety-test-secret"}


@pytest.fixture(scope="session")
def secured_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """Apache Kafka with a SASL_SSL listener (PLAIN and SCRAM-SHA-512 for ``SASL_USERS``)."""
    broker = started_kafka(tmp_path_factory.mktemp("secured-kafka"), sasl_users=SASL_USERS)
    yield broker
    broker.close()  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def embedded_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(log_path=tmp_path_factory.mktemp("broker") / "tansu.log") as embedded:
        yield embedded


@pytest.fixture(params=BROKERS)
def broker(request: pytest.FixtureRequest) -> str:
    """The bootstrap address of the broker this run of the test uses."""
    if request.param == "external":
        return EXTERNAL  # type: ignore[return-value]
    if request.param == "embedded":
        return request.getfixturevalue("embedded_broker").url
    return request.getfixturevalue("apache_kafka").url


#: Integration tests that fail are run once more (pytest-rerunfailures; CI prints each
#: "RERUN" and the count in the closing line). Not to hide a defect: a failure that repeats
#: still fails. Measured flakes that this absorbs, not yet explained (see README, Tests):
#: faust 0.15's table recovery stalling on "No event received for active tp" when workers
#: join and leave while records flow, and one re-key alert that never came on Apache Kafka
#: (1 of about 10 runs).
INTEGRATION_RERUNS = 1


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("integration") and not item.get_closest_marker("flaky"):
            item.add_marker(pytest.mark.flaky(reruns=INTEGRATION_RERUNS))

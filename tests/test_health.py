"""Liveness and readiness, and the HTTP endpoints that serve them beside /metrics."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from monitor.health import Health, serve
from monitor.metrics import Metrics

from tests.clocks import ManualClock


def ready_health(clock: ManualClock) -> Health:
    health = Health(stall_after=30, clock=clock)
    health.recovered, health.rebalancing, health.broker_connected = True, False, True
    return health


def test_a_worker_without_heartbeat_for_stall_after_is_not_live_nor_ready() -> None:
    clock = ManualClock(100.0)
    health = ready_health(clock)
    assert health.live() and health.ready()
    clock.now += 29
    assert health.live()
    clock.now += 2
    assert not health.live() and not health.ready()
    health.beat()
    assert health.live() and health.ready()


@pytest.mark.parametrize("flag, value", [("recovered", False), ("rebalancing", True), ("broker_connected", False)])
def test_ready_needs_recovered_tables_a_settled_group_and_a_broker(flag: str, value: bool) -> None:
    health = ready_health(ManualClock(100.0))
    setattr(health, flag, value)
    assert health.live() and not health.ready()


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_endpoints_serve_metrics_liveness_and_readiness() -> None:
    clock = ManualClock(100.0)
    health = Health(clock=clock)
    metrics = Metrics()
    metrics.events_processed.labels("pain_score").inc()
    server = serve(metrics.registry, health, 0)
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        status, body = get(f"{base}/metrics")
        assert status == 200 and b'medsafety_events_processed_total{type="pain_score"} 1.0' in body
        assert get(f"{base}/healthz")[0] == 200
        status, body = get(f"{base}/readyz")
        assert status == 503 and json.loads(body)["recovered"] is False  # still recovering
        health.recovered, health.rebalancing, health.broker_connected = True, False, True
        status, body = get(f"{base}/readyz")
        assert status == 200 and json.loads(body)["ready"] is True
        clock.now += 60
        assert get(f"{base}/healthz")[0] == 503
        assert get(f"{base}/nope")[0] == 404
    finally:
        server.shutdown()
        server.server_close()


def test_metrics_can_be_restricted_to_named_series() -> None:
    """``?name[]=`` (prometheus_client's convention) renders only the series asked for: the
    benchmark polls three of them without making the worker render every histogram."""
    metrics = Metrics()
    metrics.events_processed.labels("pain_score").inc()
    metrics.unwritten_patients.set(3)
    server = serve(metrics.registry, Health(), 0)
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        status, body = get(f"{base}/metrics?name[]=medsafety_events_processed_total&name[]=medsafety_unwritten_patients")
        assert status == 200
        series = {line.rsplit(" ", 1)[0] for line in body.decode().splitlines() if line and not line.startswith("#")}
        assert series == {'medsafety_events_processed_total{type="pain_score"}', "medsafety_unwritten_patients"}
        everything = get(f"{base}/metrics")[1]
        assert b"medsafety_alert_latency_seconds_bucket" in everything and len(everything) > 4 * len(body)
    finally:
        server.shutdown()
        server.server_close()

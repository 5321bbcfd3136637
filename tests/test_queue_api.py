"""The queue's web app without a broker: aiohttp's test client over a worklist of the demo
feed's alerts, a fake actions topic, and the auth rules (token, login, CSRF)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

import jsonschema
import pytest
from aiohttp.test_utils import TestClient, TestServer

from monitor.events import AlertAction
from monitor.queue.auth import Authenticator, hash_password, verify_password
from monitor.queue.metrics import QueueMetrics
from monitor.queue.openapi import openapi_document
from monitor.queue.web import QueueApp
from monitor.queue.worklist import Worklist
from tests.test_queue_view import demo_records

TOKEN = "test-token-0123456789"
PASSWORD = "correct horse battery staple"
OPENAPI_SCHEMA = {  # the parts of the OpenAPI 3.1 meta-schema a hand-written document gets wrong
    "type": "object", "required": ["openapi", "info", "paths"],
    "properties": {
        "openapi": {"type": "string", "pattern": r"^3\.1\.\d+$"},
        "info": {"type": "object", "required": ["title", "version"]},
        "paths": {"type": "object", "patternProperties": {"^/": {"type": "object", "additionalProperties": {
            "type": "object", "required": ["responses"],
            "properties": {"responses": {"type": "object", "minProperties": 1,
                                         "patternProperties": {"^[1-5][0-9][0-9]$": {
                                             "type": "object", "required": ["description"]}}}}}}},
                  "additionalProperties": False},
    },
}


class FakeTopic:
    """The alert-actions topic: keeps what was published, stamps it like a broker would."""

    def __init__(self) -> None:
        self.records: list[AlertAction] = []
        self.now = 2_000_000.0

    async def publish(self, action: AlertAction) -> float:
        self.records.append(action)
        self.now += 60
        return self.now


def worklist() -> Worklist:
    wl = Worklist()
    for i, record in enumerate(demo_records()):
        wl.add_record(record, 1_000_000.0 + i)
    return wl


Scenario = Callable[[TestClient, QueueApp, FakeTopic], Awaitable[None]]


def run(scenario: Scenario) -> None:
    async def main() -> None:
        topic = FakeTopic()
        auth = Authenticator({"pharm.lee": hash_password(PASSWORD)}, TOKEN)
        app = QueueApp(worklist(), auth, QueueMetrics(), topic.publish, wall_clock=lambda: topic.now)
        async with TestClient(TestServer(app.build())) as client:
            await scenario(client, app, topic)

    asyncio.run(main())


BEARER = {"Authorization": f"Bearer {TOKEN}"}


def test_passwords_are_salted_scrypt_hashes() -> None:
    first, second = hash_password(PASSWORD), hash_password(PASSWORD)
    assert first != second and first.startswith("scrypt$")
    assert verify_password(PASSWORD, first) and not verify_password("wrong", first)
    assert not verify_password(PASSWORD, "garbage")
    with pytest.raises(ValueError, match="no default login"):
        Authenticator({}, None)


def test_the_api_lists_open_alerts_by_severity_then_age_and_filters() -> None:
    async def scenario(client: TestClient, app: QueueApp, topic: FakeTopic) -> None:
        response = await client.get("/api/alerts", headers=BEARER)
        assert response.status == 200
        alerts = (await response.json())["alerts"]
        open_ids = {r.alert_id for r in demo_records() if r.alert_id in app.worklist.entries}
        assert {a["alert_id"] for a in alerts} == open_ids and alerts
        order = ["critical", "high", "warning", "info"]
        keys = [(order.index(a["severity"]), a["opened_at"]) for a in alerts]
        assert keys == sorted(keys)
        unit = alerts[0]["unit"]
        by_unit = (await (await client.get("/api/alerts", params={"unit": unit}, headers=BEARER)).json())["alerts"]
        assert by_unit and all(a["unit"] == unit for a in by_unit)
        kind = (await (await client.get("/api/alerts", params={"kind": "missing_laxative"}, headers=BEARER)).json())
        assert kind["alerts"] and {a["kind"] for a in kind["alerts"]} == {"missing_laxative"}
        assert any(a["evidence_items"] for a in alerts)
        assert (await client.get("/api/alerts", params={"status": "bogus"}, headers=BEARER)).status == 422

    run(scenario)


def test_acknowledge_and_snooze_publish_actions_and_move_alerts_off_the_open_list() -> None:
    async def scenario(client: TestClient, app: QueueApp, topic: FakeTopic) -> None:
        alerts = (await (await client.get("/api/alerts", headers=BEARER)).json())["alerts"]
        first, second = alerts[0]["alert_id"], alerts[1]["alert_id"]
        acked = await client.post(f"/api/alerts/{first}/ack", headers=BEARER,
                                  json={"intervention": "prescriber_contacted", "note": "called Dr. A"})
        assert acked.status == 202 and (await acked.json())["status"] == "acknowledged"
        snoozed = await client.post(f"/api/alerts/{second}/snooze", headers=BEARER, json={"hours": 4})
        assert snoozed.status == 202
        [ack, snooze] = topic.records
        assert (ack.action.value, ack.alert_id, ack.user, ack.intervention.value) == (
            "acknowledge", first, "api-client", "prescriber_contacted")
        assert (snooze.action.value, snooze.snooze_for.total_seconds(), snooze.kind.value) == (
            "snooze", 4 * 3600, alerts[1]["kind"])
        open_now = {a["alert_id"] for a in (await (await client.get("/api/alerts", headers=BEARER)).json())["alerts"]}
        assert first not in open_now and second not in open_now
        by_status = {s: [a["alert_id"] for a in (await (await client.get(
            "/api/alerts", params={"status": s}, headers=BEARER)).json())["alerts"]] for s in ("acknowledged", "snoozed")}
        assert by_status == {"acknowledged": [first], "snoozed": [second]}
        metrics = await (await client.get("/metrics")).text()
        kind = alerts[0]["kind"]
        assert (f'medsafety_queue_actions_total{{action="acknowledge",kind="{kind}",'
                f'reason="prescriber_contacted"}} 1.0') in metrics
        assert 'medsafety_queue_actions_total{action="snooze",kind="' in metrics and 'reason="240m"} 1.0' in metrics
        assert "medsafety_queue_time_to_acknowledge_seconds_count 1.0" in metrics
        assert alerts[0]["patient_id"] not in metrics

    run(scenario)


@pytest.mark.parametrize(("path", "body", "status", "message"), [
    ("/api/alerts/nope/ack", {"intervention": "dose_reduced"}, 404, "no such alert"),
    ("{first}/ack", {"intervention": "made_up"}, 422, "invalid request body"),
    ("{first}/ack", {"intervention": "dose_reduced", "extra": 1}, 422, "invalid request body"),
    ("{first}/ack", ["not", "an", "object"], 422, "JSON object"),
    ("{first}/snooze", {"minutes": 10, "hours": 1}, 422, "invalid request body"),
    ("{first}/snooze", {"hours": 25}, 422, "invalid request body"),
    ("{first}/snooze", {}, 422, "invalid request body"),
])
def test_bad_requests_get_json_errors(path: str, body: Any, status: int, message: str) -> None:
    async def scenario(client: TestClient, app: QueueApp, topic: FakeTopic) -> None:
        first = next(iter(app.worklist.entries))
        response = await client.post(path.format(first=f"/api/alerts/{first}"), headers=BEARER, json=body)
        assert response.status == status
        assert message in (await response.json())["error"]
        assert topic.records == []

    run(scenario)


def test_without_credentials_the_api_is_401_and_the_page_redirects_to_login() -> None:
    async def scenario(client: TestClient, app: QueueApp, topic: FakeTopic) -> None:
        assert (await client.get("/api/alerts")).status == 401
        assert (await client.get("/api/alerts", headers={"Authorization": "Bearer wrong"})).status == 401
        first = next(iter(app.worklist.entries))
        denied = await client.post(f"/api/alerts/{first}/ack", json={"intervention": "dose_reduced"})
        assert denied.status == 401 and "authentication required" in (await denied.json())["error"]
        page = await client.get("/", allow_redirects=False)
        assert page.status == 303 and page.headers["Location"] == "/login"
        assert (await client.get("/api/openapi.json")).status == 200

    run(scenario)


def test_the_page_logs_in_and_its_forms_act_as_the_logged_in_user() -> None:
    async def scenario(client: TestClient, app: QueueApp, topic: FakeTopic) -> None:
        wrong = await client.post("/login", data={"user": "pharm.lee", "password": "nope"})
        assert wrong.status == 401
        await client.post("/login", data={"user": "pharm.lee", "password": PASSWORD})
        page = await (await client.get("/")).text()
        csrf = re.search(r"name=csrf value='([^']+)'", page).group(1)
        first = next(iter(app.worklist.select()))
        alert_id = first.record.alert_id
        assert f'data-alert-id="{alert_id}"' in page and first.record.patient_id in page
        stale = await client.post(f"/alerts/{alert_id}/ack", data={"intervention": "dose_reduced", "csrf": "x"})
        assert stale.status == 403 and topic.records == []
        done = await client.post(f"/alerts/{alert_id}/ack", allow_redirects=False,
                                 data={"intervention": "dose_reduced", "csrf": csrf, "back": "/?status=open"})
        assert done.status == 303 and done.headers["Location"] == "/?status=open"
        assert topic.records[0].user == "pharm.lee"
        acked_page = await (await client.get("/", params={"status": "acknowledged"})).text()
        assert "Acknowledged by pharm.lee: Dose reduced" in acked_page
        via_session = await client.get("/api/alerts")  # the page's session also opens the API
        assert via_session.status == 200

    run(scenario)


def test_openapi_document_is_valid_and_names_the_routes_that_exist() -> None:
    document = openapi_document()
    jsonschema.validate(document, OPENAPI_SCHEMA)
    jsonschema.Draft202012Validator.check_schema(document["components"]["schemas"]["Alert"])
    app = QueueApp(Worklist(), Authenticator({}, TOKEN), QueueMetrics(), FakeTopic().publish).build()
    routes = {(r.method, r.resource.canonical) for r in app.router.routes()}  # type: ignore[union-attr]
    for path, methods in document["paths"].items():
        for method in methods:
            assert (method.upper(), path) in routes
    refs = set(re.findall(r'"#/components/schemas/(\w+)"', json.dumps(document)))
    assert refs <= set(document["components"]["schemas"])

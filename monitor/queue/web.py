"""The queue's aiohttp application: the worklist page, the JSON API, OpenAPI, /metrics.

Kafka stays outside: the app is given the :class:`~.worklist.Worklist` to read and a
``publish`` coroutine that records an action on the alert-actions topic and returns the
broker's timestamp for it; the app then applies the action to the worklist at once (the
same action read back from the topic is dropped by its id). That keeps the app testable
with aiohttp's test client and no broker.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..actions import INTERVENTIONS, MAX_SNOOZE, SNOOZE_CHOICES, ActionKind
from ..events import AlertAction, PatientRef
from .auth import Authenticator
from .metrics import QueueMetrics
from .openapi import openapi_document
from .pages import login_page, worklist_page
from .worklist import STATUSES, Entry, Worklist

SESSION_COOKIE = "medsafety_session"
Publish = Callable[[AlertAction], Awaitable[float]]
USER = web.RequestKey("user", str)
SESSION = web.RequestKey("session", object)
_SNOOZE_LABELS = {duration: f"{int(duration.total_seconds() // 60)}m" for duration in SNOOZE_CHOICES.values()}
_PUBLIC = frozenset({"/login", "/metrics", "/healthz", "/readyz", "/api/openapi.json"})


class AcknowledgeBody(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True, str_strip_whitespace=True)

    intervention: str
    note: str | None = Field(None, max_length=500)

    @model_validator(mode="after")
    def _known_code(self) -> "AcknowledgeBody":
        if self.intervention not in INTERVENTIONS:
            raise ValueError(f"intervention must be one of {', '.join(INTERVENTIONS)}")
        self.note = self.note or None
        return self


class SnoozeBody(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    minutes: int | None = Field(None, ge=1)
    hours: float | None = Field(None, gt=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _one_duration(self) -> "SnoozeBody":
        if (self.minutes is None) == (self.hours is None):
            raise ValueError("give exactly one of minutes or hours")
        if self.duration > MAX_SNOOZE:
            raise ValueError(f"a snooze lasts at most {MAX_SNOOZE.total_seconds() / 3600:g} hours")
        return self

    @property
    def duration(self) -> timedelta:
        return timedelta(minutes=self.minutes) if self.minutes is not None else timedelta(hours=self.hours or 0)


def _error(status: int, message: str, detail: Any = None) -> web.Response:
    body: dict[str, Any] = {"error": message}
    if detail is not None:
        body["detail"] = detail
    return web.json_response(body, status=status)


def _see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def _validation_detail(exc: ValidationError) -> list[dict[str, Any]]:
    return [{"field": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"]}
            for e in exc.errors(include_input=False, include_url=False)]


class QueueApp:
    """Routes and handlers over one worklist."""

    def __init__(self, worklist: Worklist, auth: Authenticator, metrics: QueueMetrics, publish: Publish,
                 ready: Callable[[], bool] = lambda: True, wall_clock: Callable[[], float] = time.time) -> None:
        self.worklist = worklist
        self.auth = auth
        self.metrics = metrics
        self.publish = publish
        self.ready = ready
        self.clock = wall_clock

    def build(self) -> web.Application:
        app = web.Application(middlewares=[self._authenticate])
        app.add_routes([
            web.get("/", self.page), web.get("/login", self.login_form), web.post("/login", self.login),
            web.post("/logout", self.logout),
            web.post("/alerts/{alert_id}/ack", self.form_ack), web.post("/alerts/{alert_id}/snooze", self.form_snooze),
            web.get("/api/alerts", self.api_alerts), web.post("/api/alerts/{alert_id}/ack", self.api_ack),
            web.post("/api/alerts/{alert_id}/snooze", self.api_snooze),
            web.get("/api/openapi.json", self.openapi), web.get("/metrics", self.prometheus),
            web.get("/healthz", self.healthz), web.get("/readyz", self.readyz),
        ])
        return app

    # -- authentication -------------------------------------------------------------------
    @web.middleware
    async def _authenticate(self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                            ) -> web.StreamResponse:
        if request.path in _PUBLIC:
            return await handler(request)
        session = self.auth.session(request.cookies.get(SESSION_COOKIE))
        user = session.user if session else None
        if request.path.startswith("/api/"):
            user = self.auth.token_holder(request.headers.get("Authorization")) or user
            if user is None:
                return _error(401, "authentication required: a bearer token or a login session")
        elif session is None:
            if request.method == "GET" and request.path == "/":
                raise web.HTTPSeeOther("/login")
            return _error(401, "log in first")
        elif request.method == "POST":  # the page's forms carry the session's CSRF token
            form = await request.post()
            if form.get("csrf") != session.csrf:
                return _error(403, "the form is stale: reload the page")
        request[USER], request[SESSION] = user, session
        return await handler(request)

    async def login_form(self, request: web.Request) -> web.Response:
        return web.Response(text=login_page(), content_type="text/html")

    async def login(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        session_id = self.auth.login(str(form.get("user", "")), str(form.get("password", "")))
        if session_id is None:
            return web.Response(text=login_page("Wrong user name or password."), content_type="text/html",
                                status=401)
        response = _see_other("/")
        response.set_cookie(SESSION_COOKIE, session_id, httponly=True, samesite="Strict",
                            max_age=int(self.auth.session_ttl))
        return response

    async def logout(self, request: web.Request) -> web.StreamResponse:
        self.auth.logout(request.cookies.get(SESSION_COOKIE))
        response = _see_other("/login")
        response.del_cookie(SESSION_COOKIE)
        return response

    # -- the page ---------------------------------------------------------------------------
    def _filters(self, request: web.Request) -> dict[str, str]:
        return {name: request.query.get(name, "") for name in ("status", "unit", "kind")}

    async def page(self, request: web.Request) -> web.Response:
        filters = self._filters(request)
        entries = self.worklist.select(filters["unit"] or None, filters["kind"] or None, filters["status"] or "open")
        html = worklist_page(entries, filters, self.worklist.units(), request[USER], request[SESSION].csrf,  # type: ignore[attr-defined]
                             self.clock(), self.worklist.open_by_severity())
        return web.Response(text=html, content_type="text/html")

    async def form_ack(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        return await self._form_action(request, ActionKind.ACKNOWLEDGE,
                                       {"intervention": form.get("intervention"), "note": form.get("note") or None})

    async def form_snooze(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        minutes = str(form.get("minutes", ""))
        return await self._form_action(request, ActionKind.SNOOZE,
                                       {"minutes": int(minutes) if minutes.isdigit() else minutes})

    async def _form_action(self, request: web.Request, kind: ActionKind, body: dict[str, Any]) -> web.StreamResponse:
        result = await self._act(request, kind, body)
        if result.status != 202:
            return result
        back = str((await request.post()).get("back", "/"))
        raise web.HTTPSeeOther(back if back.startswith("/") and not back.startswith("//") else "/")

    # -- the API ----------------------------------------------------------------------------
    async def api_alerts(self, request: web.Request) -> web.Response:
        filters = self._filters(request)
        if filters["status"] and filters["status"] not in (*STATUSES, "all"):
            return _error(422, f"status must be one of {', '.join((*STATUSES, 'all'))}")
        entries = self.worklist.select(filters["unit"] or None, filters["kind"] or None, filters["status"] or "open")
        now = self.clock()
        return web.json_response({"alerts": [entry.to_json(now) for entry in entries]})

    async def api_ack(self, request: web.Request) -> web.Response:
        return await self._act(request, ActionKind.ACKNOWLEDGE, await self._json(request))

    async def api_snooze(self, request: web.Request) -> web.Response:
        return await self._act(request, ActionKind.SNOOZE, await self._json(request))

    @staticmethod
    async def _json(request: web.Request) -> Any:
        try:
            return await request.json()
        except ValueError:
            return None

    async def _act(self, request: web.Request, kind: ActionKind, body: Any) -> web.Response:
        entry = self.worklist.get(request.match_info["alert_id"])
        if entry is None:
            return _error(404, "no such alert on the worklist (unknown, or resolved already)")
        if not isinstance(body, dict):
            return _error(422, "the body must be a JSON object")
        model = AcknowledgeBody if kind is ActionKind.ACKNOWLEDGE else SnoozeBody
        try:
            parsed = model.model_validate(body)
        except ValidationError as exc:
            return _error(422, "invalid request body", _validation_detail(exc))
        action = self._action(entry, kind, request[USER], parsed)
        recorded_at = await self.publish(action)
        self.worklist.add_action(action, recorded_at)
        self._count(entry, action, recorded_at)
        return web.json_response({"action_id": action.event_id, "action": kind.value, "alert_id": action.alert_id,
                                  "user": action.user, "status": entry.status}, status=202)

    def _action(self, entry: Entry, kind: ActionKind, user: str, body: BaseModel) -> AlertAction:
        record = entry.record
        fields: dict[str, Any] = ({"intervention": body.intervention, "note": body.note}  # type: ignore[attr-defined]
                                  if kind is ActionKind.ACKNOWLEDGE else {"snooze_for": body.duration})  # type: ignore[attr-defined]
        return AlertAction(event_id=f"action-{uuid.uuid4()}", occurred_at=datetime.fromtimestamp(self.clock(), timezone.utc),
                           patient=PatientRef(id=record.patient_id), action=kind, alert_id=record.alert_id,
                           kind=record.kind, user=user, revision=record.revision, **fields)

    def _count(self, entry: Entry, action: AlertAction, recorded_at: float) -> None:
        if action.action is ActionKind.ACKNOWLEDGE:
            reason = action.intervention.value if action.intervention else "none"
            self.metrics.time_to_acknowledge.observe(max(0.0, recorded_at - entry.first_seen))
        else:
            reason = _SNOOZE_LABELS.get(action.snooze_for, "other")  # bounded: the page's choices
        self.metrics.actions.labels(action.action.value, action.kind.value, reason).inc()

    # -- plumbing ---------------------------------------------------------------------------
    async def openapi(self, request: web.Request) -> web.Response:
        return web.json_response(openapi_document())

    async def prometheus(self, request: web.Request) -> web.Response:
        for severity, count in self.worklist.open_by_severity().items():
            self.metrics.open_alerts.labels(severity).set(count)
        return web.Response(body=generate_latest(self.metrics.registry),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"live": True})

    async def readyz(self, request: web.Request) -> web.Response:
        ready = self.ready()
        return web.json_response({"ready": ready}, status=200 if ready else 503)

"""The queue API's OpenAPI 3.1 description, written by hand (the API is small and its
document is the contract; a test validates it against the OpenAPI schema and checks that
every route it names exists)."""

from __future__ import annotations

from typing import Any

from ..actions import INTERVENTIONS, MAX_SNOOZE
from ..alerts import AlertKind, Severity
from .worklist import STATUSES

_ERROR = {"description": "An error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
_ACTION_RESPONSE = {"description": "The action was recorded on the alert-actions topic",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ActionResult"}}}}
_ALERT_ID = {"name": "alert_id", "in": "path", "required": True, "schema": {"type": "string"}}
_MAX_MINUTES = int(MAX_SNOOZE.total_seconds() // 60)


def openapi_document() -> dict[str, Any]:
    errors = {"401": _ERROR, "404": _ERROR, "422": _ERROR}
    return {
        "openapi": "3.1.0",
        "info": {"title": "medsafety pharmacist queue", "version": "1",
                 "description": "Open medication-safety alerts and the pharmacist's actions on them. Every request "
                                "but this document needs a bearer token or a login session."},
        "security": [{"bearer": []}, {"session": []}],
        "paths": {
            "/api/alerts": {"get": {
                "summary": "Alerts on the worklist, by severity (critical first) then age (oldest first)",
                "parameters": [
                    {"name": "unit", "in": "query", "schema": {"type": "string"}},
                    {"name": "kind", "in": "query", "schema": {"type": "string", "enum": [k.value for k in AlertKind]}},
                    {"name": "status", "in": "query",
                     "schema": {"type": "string", "enum": [*STATUSES, "all"], "default": "open"}},
                ],
                "responses": {"200": {"description": "The worklist", "content": {"application/json": {"schema": {
                    "type": "object", "required": ["alerts"],
                    "properties": {"alerts": {"type": "array", "items": {"$ref": "#/components/schemas/Alert"}}}}}}},
                    "401": _ERROR, "422": _ERROR},
            }},
            "/api/alerts/{alert_id}/ack": {"post": {
                "summary": "Acknowledge an alert with the intervention made",
                "parameters": [_ALERT_ID],
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Acknowledge"}}}},
                "responses": {"202": _ACTION_RESPONSE, **errors},
            }},
            "/api/alerts/{alert_id}/snooze": {"post": {
                "summary": "Snooze an alert: the monitor re-raises it when the snooze ends (patient event time) "
                           "or at once if its severity rises",
                "parameters": [_ALERT_ID],
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Snooze"}}}},
                "responses": {"202": _ACTION_RESPONSE, **errors},
            }},
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
                                "session": {"type": "apiKey", "in": "cookie", "name": "medsafety_session"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {
                    "error": {"type": "string"}, "detail": {}}},
                "Acknowledge": {"type": "object", "required": ["intervention"], "additionalProperties": False,
                                "properties": {"intervention": {"type": "string", "enum": list(INTERVENTIONS)},
                                               "note": {"type": "string", "maxLength": 500}}},
                "Snooze": {"type": "object", "additionalProperties": False,
                           "description": "Exactly one of minutes or hours; at most 24 hours.",
                           "properties": {"minutes": {"type": "integer", "minimum": 1, "maximum": _MAX_MINUTES},
                                          "hours": {"type": "number", "exclusiveMinimum": 0, "maximum": 24}}},
                "ActionResult": {"type": "object", "required": ["action_id", "action", "alert_id", "user"],
                                 "properties": {"action_id": {"type": "string"},
                                                "action": {"type": "string", "enum": ["acknowledge", "snooze"]},
                                                "alert_id": {"type": "string"}, "user": {"type": "string"},
                                                "status": {"type": "string", "enum": list(STATUSES)}}},
                "ActionInfo": {"type": ["object", "null"], "properties": {
                    "action_id": {"type": "string"}, "user": {"type": "string"},
                    "at": {"type": "string", "format": "date-time"}, "intervention": {"type": "string"},
                    "note": {"type": "string"}, "snooze_minutes": {"type": "integer"}}},
                "Alert": {"type": "object",
                          "required": ["alert_id", "revision", "status", "kind", "severity", "patient_id",
                                       "summary", "recommendation", "age_seconds", "evidence_items"],
                          "properties": {
                              "alert_id": {"type": "string"}, "revision": {"type": "integer"},
                              "status": {"type": "string", "enum": list(STATUSES)},
                              "kind": {"type": "string", "enum": [k.value for k in AlertKind]},
                              "severity": {"type": "string", "enum": [s.value for s in Severity]},
                              "patient_id": {"type": "string"}, "unit": {"type": ["string", "null"]},
                              "summary": {"type": "string"}, "recommendation": {"type": "string"},
                              "reason": {"type": "string"},
                              "raised_at": {"type": "string", "format": "date-time",
                                            "description": "Event time of the latest record."},
                              "opened_at": {"type": "string", "format": "date-time"},
                              "age_seconds": {"type": "number", "description": "Wall time since the queue got it."},
                              "details": {"type": "object"}, "evidence": {"type": "array", "items": {"type": "string"}},
                              "evidence_items": {"type": "array", "items": {"type": "object"}},
                              "flags": {"type": "array", "items": {"type": "string"}},
                              "acknowledged": {"$ref": "#/components/schemas/ActionInfo"},
                              "snoozed": {"$ref": "#/components/schemas/ActionInfo"}}},
            },
        },
    }

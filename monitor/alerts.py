"""Alert records: what the monitor publishes for the pharmacist queue.

An alert is an *episode*: the same ``alert_id`` carries it from ``open`` through
``updated`` (a severity change) to ``resolved``. ``revision`` grows by one with each
record, so a consumer drops duplicates by ``(alert_id, revision)`` and keeps updates.
The id is derived from what the alert is about (patient, kind, the event that opened
the episode), so a replay or a restarted worker reproduces it exactly.
"""

from __future__ import annotations

import uuid
from enum import Enum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class AlertKind(str, Enum):
    OIH_SUSPECTED = "oih_suspected"
    OPIOID_ESCALATION_DURING_OIH = "opioid_escalation_during_oih"
    OPIOID_BENZODIAZEPINE = "opioid_benzodiazepine"
    OPIOID_GABAPENTINOID = "opioid_gabapentinoid"
    MISSING_LAXATIVE = "missing_laxative"


class Severity(str, Enum):
    INFO = "info"
    WARNING = "warning"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]

    def lowered(self, steps: int = 1) -> "Severity":
        """One step less severe (never below info)."""
        return _SEVERITIES[max(0, self.rank - steps)]


_SEVERITIES = (Severity.INFO, Severity.WARNING, Severity.HIGH, Severity.CRITICAL)
_SEVERITY_RANK = {severity: rank for rank, severity in enumerate(_SEVERITIES)}


class AlertStatus(str, Enum):
    OPEN = "open"
    UPDATED = "updated"
    RESOLVED = "resolved"


#: Namespace for deterministic alert ids (uuid5). Never change it: ids would change.
ALERT_ID_NAMESPACE = uuid.UUID("6f1d3c52-8f0e-4c57-9a55-2b8f3e4a1d90")


def make_alert_id(patient_id: str, kind: AlertKind, opening_event_id: str) -> str:
    """Deterministic id of an alert episode; carries no readable patient identifier."""
    return str(uuid.uuid5(ALERT_ID_NAMESPACE, f"{patient_id}\x1f{kind.value}\x1f{opening_event_id}"))


class AlertRecord(BaseModel):
    """One record of an alert episode, as published to the alerts topic."""

    model_config = ConfigDict(frozen=True, extra="ignore", hide_input_in_errors=True)  # records carry patient ids

    alert_id: str
    revision: int = Field(ge=1)
    status: AlertStatus
    kind: AlertKind
    severity: Severity
    patient_id: str
    raised_at: AwareDatetime = Field(description="Event time of this record (a deadline alert: the deadline).")
    opened_at: AwareDatetime = Field(description="Event time at which the episode opened.")
    evidence: list[str] = Field(description="Event ids of the orders and scores behind the alert.")
    recommendation: str
    rule_version: str
    summary: str = Field(default="", description="One readable line for the worklist.")
    reason: str = Field(
        default="",
        description="Why this record exists: opened, severity_increased, severity_decreased, "
        "condition_cleared, retracted, discharged, comfort_care, rotation, dose_reduced, window_elapsed, "
        "snooze_expired.",
    )
    unit: str | None = Field(default=None, description="The patient's unit at raised_at, for worklist filters.")
    flags: list[str] = Field(
        default_factory=list, description="Assumptions made, e.g. age_unknown, monitoring_unknown."
    )
    details: dict[str, Any] = Field(default_factory=dict, description="Figures behind the alert (MME, pain medians).")
    trigger_event_id: str | None = Field(
        default=None, description="The event whose processing produced this record (none for deadlines)."
    )
    evidence_items: list[dict[str, Any]] = Field(
        default_factory=list,
        description="The evidence made readable for the worklist, in event-time order: orders "
        "(drug, route, daily dose, MME) and pain scores (time, score, site).")

    @property
    def dedup_key(self) -> tuple[str, int]:
        return (self.alert_id, self.revision)

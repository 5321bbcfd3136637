"""A detector's verdict for one patient at one moment."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...alerts import AlertKind, Severity


@dataclass(slots=True)
class Finding:
    """The condition behind an alert kind holds now, with this severity and evidence.

    ``anchor_event_id`` names the event an episode opened by this finding is about when
    that is not the event being processed (a deadline has no triggering event).
    ``raised_at`` overrides the record's event time (a deadline alert: the deadline).
    """

    kind: AlertKind
    severity: Severity
    evidence: list[str]
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    anchor_event_id: str | None = None
    raised_at: float | None = None

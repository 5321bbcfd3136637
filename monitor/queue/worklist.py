"""The worklist: what the queue knows, rebuilt from the alerts and alert-actions topics.

Pure (no I/O): the service feeds it records with their Kafka timestamps (wall time), so a
restarted queue that reads both topics from the beginning rebuilds exactly this state.

- The latest record per ``alert_id`` is kept (highest revision; a re-published revision
  is a duplicate); a ``resolved`` record removes the alert: resolved alerts leave the list
  on their own.
- **acknowledged**: an acknowledgement newer than the alert's last *raise* (opened,
  severity_increased, snooze_expired). It leaves the open worklist and stays visible under
  the "acknowledged" filter until resolved; a severity rise brings it back (the monitor
  clears the acknowledgement too).
- **snoozed**: a snooze newer than the latest record. The monitor publishes nothing at the
  same or lower severity while the snooze lasts, so the next record for the alert (a rise,
  or ``snooze_expired`` when the snooze ends in event time) is what ends it here.
- Ages are wall time since the queue first saw the alert (its Kafka timestamp): the time a
  patient has waited for a pharmacist, whatever the feed's event time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..alerts import AlertRecord, AlertStatus
from ..events import AlertAction

STATUSES = ("open", "acknowledged", "snoozed")
#: Reasons of a record that puts an alert in front of a pharmacist again.
RAISES = frozenset({"opened", "severity_increased", "snooze_expired"})


@dataclass(slots=True)
class ActionSeen:
    action: AlertAction
    at: float  # wall time the action was recorded (its Kafka timestamp)


@dataclass(slots=True)
class Entry:
    """One alert on the worklist."""

    record: AlertRecord
    first_seen: float
    last_record_at: float
    last_raise_at: float
    details: dict[str, Any]
    evidence_items: list[dict[str, Any]]
    actions: list[ActionSeen] = field(default_factory=list)

    @property
    def acknowledgement(self) -> ActionSeen | None:
        acks = [a for a in self.actions if a.action.action.value == "acknowledge" and a.at >= self.last_raise_at]
        return acks[-1] if acks else None

    @property
    def snooze(self) -> ActionSeen | None:
        snoozes = [a for a in self.actions if a.action.action.value == "snooze" and a.at >= self.last_record_at]
        return snoozes[-1] if snoozes else None

    @property
    def status(self) -> str:
        if self.acknowledgement is not None:
            return "acknowledged"
        if self.snooze is not None:
            return "snoozed"
        return "open"

    def to_json(self, now: float) -> dict[str, Any]:
        r = self.record
        ack, snooze = self.acknowledgement, self.snooze
        return {
            "alert_id": r.alert_id, "revision": r.revision, "status": self.status, "kind": r.kind.value,
            "severity": r.severity.value, "patient_id": r.patient_id, "unit": r.unit, "summary": r.summary,
            "recommendation": r.recommendation, "reason": r.reason, "raised_at": r.raised_at.isoformat(),
            "opened_at": r.opened_at.isoformat(), "age_seconds": round(max(0.0, now - self.first_seen), 1),
            "details": self.details, "evidence": list(r.evidence), "evidence_items": self.evidence_items,
            "flags": list(r.flags),
            "acknowledged": _action_json(ack) if ack else None,
            "snoozed": _action_json(snooze) if snooze else None,
        }


def _action_json(seen: ActionSeen) -> dict[str, Any]:
    a = seen.action
    out: dict[str, Any] = {"action_id": a.event_id, "user": a.user, "at": a.occurred_at.isoformat()}
    if a.intervention is not None:
        out["intervention"] = a.intervention.value
    if a.note:
        out["note"] = a.note
    if a.snooze_for is not None:
        out["snooze_minutes"] = round(a.snooze_for.total_seconds() / 60)
    return out


_MAX_PENDING = 10_000
_SEVERITY_ORDER = {"critical": 0, "high": 1, "warning": 2, "info": 3}


class Worklist:
    """Open alerts (latest record each) and the actions taken on them."""

    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}
        self._revisions: dict[str, int] = {}  # every alert id seen: drops re-published revisions
        self._action_ids: set[str] = set()
        #: Actions read before their alert's record (the two topics are read side by side).
        self._pending: dict[str, list[ActionSeen]] = {}
        self.actions_ignored = 0

    # -- input --------------------------------------------------------------------------
    def add_record(self, record: AlertRecord, at: float) -> bool:
        """Apply one alert record seen at wall time ``at``; False for a duplicate."""
        if self._revisions.get(record.alert_id, 0) >= record.revision:
            return False
        self._revisions[record.alert_id] = record.revision
        if record.status is AlertStatus.RESOLVED:
            self.entries.pop(record.alert_id, None)
            return True
        entry = self.entries.get(record.alert_id)
        if entry is None:
            entry = self.entries[record.alert_id] = Entry(record, at, at, at, {}, [])
            entry.actions.extend(self._pending.pop(record.alert_id, ()))
        entry.record, entry.last_record_at = record, at
        if record.reason in RAISES:
            entry.last_raise_at = at
        if record.details:
            entry.details = dict(record.details)
        if record.evidence_items:
            entry.evidence_items = list(record.evidence_items)
        return True

    def add_action(self, action: AlertAction, at: float) -> bool:
        """Apply one action recorded at wall time ``at``; False for a repeat or an unknown alert."""
        if action.event_id in self._action_ids:
            return False
        self._action_ids.add(action.event_id)
        entry = self.entries.get(action.alert_id)
        if entry is None:
            if action.alert_id in self._revisions:  # resolved already: nothing left to act on
                self.actions_ignored += 1
            elif len(self._pending) < _MAX_PENDING:
                self._pending.setdefault(action.alert_id, []).append(ActionSeen(action, at))
            return False
        entry.actions.append(ActionSeen(action, at))
        return True

    # -- queries ------------------------------------------------------------------------
    def get(self, alert_id: str) -> Entry | None:
        return self.entries.get(alert_id)

    def select(self, unit: str | None = None, kind: str | None = None, status: str | None = "open") -> list[Entry]:
        """Sorted by severity (critical first), then age (oldest first). ``status`` None or
        "all": every status."""
        chosen = [e for e in self.entries.values()
                  if (not unit or e.record.unit == unit) and (not kind or e.record.kind.value == kind)
                  and (status in (None, "", "all") or e.status == status)]
        return sorted(chosen, key=lambda e: (_SEVERITY_ORDER[e.record.severity.value], e.record.opened_at,
                                             e.first_seen, e.record.alert_id))

    def units(self) -> list[str]:
        return sorted({e.record.unit for e in self.entries.values() if e.record.unit})

    def open_by_severity(self) -> dict[str, int]:
        counts = dict.fromkeys(_SEVERITY_ORDER, 0)
        for entry in self.entries.values():
            if entry.status == "open":
                counts[entry.record.severity.value] += 1
        return counts


def rebuild(records: Iterable[tuple[AlertRecord | AlertAction, float]]) -> Worklist:
    """A worklist from (record or action, wall time) pairs, in topic order."""
    worklist = Worklist()
    for item, at in records:
        if isinstance(item, AlertAction):
            worklist.add_action(item, at)
        else:
            worklist.add_record(item, at)
    return worklist

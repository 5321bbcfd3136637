"""Test helpers: build one patient's canonical events by the hour, run them, read episodes."""

from __future__ import annotations

from bisect import insort
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from itertools import count
from typing import Any, Iterable

from monitor.alerts import AlertRecord
from monitor.clinical.context import ClinicalRules
from monitor.engine import Engine
from monitor.events import AnyEvent, PainScore, PatientRef, PatientUpdate, Prescription
from monitor.settings import RuleSettings

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


@dataclass
class Patient:
    """Events of one patient; ``h`` arguments are hours after T0."""

    id: str = "P1"
    birth_date: date | None = date(1970, 1, 1)
    unit: str | None = "5 West Med-Surg"
    monitored: bool | None = False
    events: list[AnyEvent] = field(default_factory=list)
    _serial: Any = field(default_factory=lambda: count(1), repr=False)

    def _add(self, event: AnyEvent) -> None:
        """Keep ``events`` in event-time order (stable), as a feed would deliver them."""
        insort(self.events, event, key=lambda e: e.occurred_at)

    def _event_id(self, prefix: str, fields: dict[str, Any]) -> str:
        """Deterministic per patient, so two builds of one scenario have equal ids."""
        return fields.pop("event_id", None) or f"{self.id}-{prefix}-{next(self._serial)}"

    def _ref(self, with_context: bool, **overrides: Any) -> PatientRef:
        if not with_context:
            return PatientRef(id=self.id, **overrides)
        return PatientRef(id=self.id, birth_date=self.birth_date, unit=self.unit, monitored=self.monitored, **overrides)

    def rx(self, h: float, order_id: str, drug: str, action: str = "new", *, dose: float | None = 5,
           dose_unit: str | None = "mg", frequency_per_day: float | None = 4, **fields: Any) -> Prescription:
        if action in ("discontinue", "entered_in_error"):
            dose = dose_unit = frequency_per_day = None
        event = Prescription(
            event_id=self._event_id("rx", fields), occurred_at=at(h),
            patient=self._ref(not self.events), order_id=order_id, action=action, drug=drug, dose=dose,
            dose_unit=dose_unit, frequency_per_day=frequency_per_day, **fields,
        )
        self._add(event)
        return event

    def pain(self, h: float, score: int, **fields: Any) -> PainScore:
        event = PainScore(event_id=self._event_id("pain", fields), occurred_at=at(h),
                          patient=self._ref(not self.events), score=score, **fields)
        self._add(event)
        return event

    def update(self, h: float, *, patient: dict[str, Any] | None = None, **fields: Any) -> PatientUpdate:
        ref = PatientRef(id=self.id, **(patient or {})) if patient is not None else self._ref(not self.events)
        event = PatientUpdate(event_id=self._event_id("adt", fields), occurred_at=at(h),
                              patient=ref, **fields)
        self._add(event)
        return event

    def transfer(self, h: float, unit: str, monitored: bool | None) -> PatientUpdate:
        return self.update(h, patient={"unit": unit, "monitored": monitored})

    def pains(self, hours_and_scores: Iterable[tuple[float, int]], **fields: Any) -> None:
        for h, score in hours_and_scores:
            self.pain(h, score, **fields)


def rules(**overrides: Any) -> ClinicalRules:
    return ClinicalRules.from_settings(RuleSettings(**overrides))


def run(events: Iterable[AnyEvent], engine: Engine | None = None, **overrides: Any) -> list[AlertRecord]:
    engine = engine or Engine(rules(**overrides))
    records: list[AlertRecord] = []
    for event in events:
        records.extend(engine.submit(event))
    records.extend(engine.finish())
    return records


@dataclass
class EpisodeView:
    kind: str
    records: list[AlertRecord]

    @property
    def severities(self) -> list[str]:
        return [r.severity.value for r in self.records]

    @property
    def max_severity(self) -> str:
        return max(self.records, key=lambda r: r.severity.rank).severity.value

    @property
    def status(self) -> str:
        return self.records[-1].status.value

    @property
    def reason(self) -> str:
        return self.records[-1].reason

    @property
    def opened(self) -> AlertRecord:
        return self.records[0]


def episodes(records: Iterable[AlertRecord], kind: str | None = None) -> list[EpisodeView]:
    by_id: dict[str, list[AlertRecord]] = defaultdict(list)
    for record in records:
        by_id[record.alert_id].append(record)
    views = [EpisodeView(recs[0].kind.value, recs) for recs in by_id.values()]
    for view in views:
        revisions = [r.revision for r in view.records]
        assert revisions == list(range(1, len(revisions) + 1)), f"revisions must grow by one: {revisions}"
        assert view.records[0].status.value == "open"
    return [view for view in views if kind is None or view.kind == kind]


def kinds(records: Iterable[AlertRecord]) -> set[str]:
    return {record.kind.value for record in records}


def laxative(patient: Patient, h: float = 0.5) -> Prescription:
    """A scheduled bowel regimen, so that laxative alerts stay out of other rules' tests."""
    return patient.rx(h, f"LAX-{patient.id}-{h}", "senna", dose=8.6, dose_unit="mg", frequency_per_day=2)

"""The engine: exact event-time order over an unordered feed, and time-driven rules.

Kafka keeps order only within a partition, and charting is often late, so events of one
patient arrive out of order. The engine holds each event until the *watermark* (the
newest event time seen minus the allowed lateness) passes it, then releases held events
sorted by :func:`monitor.events.event_sort_key`. Any arrival order within the allowed
lateness therefore yields exactly the alerts of the sorted feed. An event older than the
watermark is *late*: it is applied at once (its facts keep their own event time; it is
judged at the patient's current time) and counted, never silently dropped.

Rules that fire on an absence (no laxative after 24 h) are deadlines: when the watermark
passes a patient's next deadline, the patient is judged at that deadline even if it has
no further event. Offline, time stops at the last event (:meth:`Engine.finish`); the live
worker also advances the watermark by wall time when the feed is idle.

The engine is pure (no I/O, no wall clock) and keeps patient state in any mutable
mapping, so the same code runs over a dict offline and over a faust table live.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import MutableMapping

from .alerts import AlertRecord
from .clinical.actions import apply_action
from .clinical.context import ClinicalRules
from .clinical.patient import PatientProcessor
from .clinical.state import NEVER, ActiveOrders, PatientState
from .events import AlertAction, AnyEvent, event_order_key

#: How often (event time) idle patient states are swept out.
_SWEEP_EVERY = 24 * 3600.0

#: The deadline heap is rebuilt from its live entries (at most one per patient)
#: once it holds more than this many entries per live one (plus ``_DEADLINES_SLACK``).
#: A deadline that moves later keeps its entry (see :attr:`Engine._queued`), but one that
#: moves earlier, and a patient that ends or is forgotten, leave a stale entry behind until
#: its time, which can be the idle deadline 30 days on: without the rebuild the heap grows
#: with the feed, not the census (when every moved deadline was pushed: 93,486 entries for
#: 1,000 patients after 200,000 events of the bench's feed).
_DEADLINES_PER_PATIENT = 2
_DEADLINES_SLACK = 1024

#: Marks a patient whose next deadline the engine has not computed (a state it did not
#: schedule itself, e.g. one put into :attr:`Engine.states` from outside).
_UNSCHEDULED = object()


@dataclass(slots=True)
class EngineStats:
    """Counters for metrics and the CLI's summary (no patient data)."""

    received: Counter[str] = field(default_factory=Counter)  # by event type
    duplicates: int = 0
    late: int = 0
    stale: int = 0
    unmonitored_orders: int = 0
    alerts: Counter[str] = field(default_factory=Counter)  # by "kind/status"
    patients_ended: int = 0
    patients_expired: int = 0
    actions: Counter[str] = field(default_factory=Counter)  # by "action/outcome"


class Engine:
    """Feeds events through per-patient processors in exact event-time order."""

    def __init__(self, rules: ClinicalRules, states: MutableMapping[str, PatientState] | None = None,
                 watermark_from_input: bool = True) -> None:
        self.rules = rules
        self.processor = PatientProcessor(rules)
        self.states: MutableMapping[str, PatientState] = states if states is not None else {}
        self.stats = EngineStats()
        self.watermark = NEVER
        self.max_event_time = NEVER
        self._lateness = rules.settings.allowed_lateness.total_seconds()
        #: False when the caller drives :meth:`advance` itself (the live worker, which knows
        #: which input topics are still behind).
        self._watermark_from_input = watermark_from_input
        self._idle_ttl = rules.settings.patient_idle_ttl.total_seconds()
        self._held: list[tuple[object, ...]] = []
        #: patient id -> event id -> (event, its input record if the caller gave it), for every
        #: held event (dedup, and persistence: a live worker stores the records as they came).
        self._held_by_patient: dict[str, dict[str, tuple[AnyEvent, bytes | None]]] = {}
        self._seq = itertools.count()
        self._deadlines: list[tuple[float, str]] = []
        #: patient id -> the next deadline of that patient's current state (None: none).
        #: Written by :meth:`_schedule` after every change the engine makes to a state, so
        #: it always equals ``processor.next_deadline(state)``. Which heap entries are live
        #: is :attr:`_queued`'s to say: a live entry may be earlier than the schedule.
        self._scheduled: dict[str, float | None] = {}
        #: patient id -> the time of the patient's one live heap entry, never later than its
        #: schedule. A deadline that moves later (every event moves the idle deadline) keeps
        #: its entry: when that entry comes due it is pushed again at the schedule's time
        #: (see :meth:`_run_deadlines`). Entries that disagree with this map are stale.
        self._queued: dict[str, float] = {}
        self._last_sweep = NEVER
        #: Patients whose state changed since the last :meth:`take_touched` (to persist).
        self.touched: set[str] = set()

    # -- input ----------------------------------------------------------------------------
    def submit(self, event: AnyEvent, record: bytes | None = None) -> list[AlertRecord]:
        """Accept one validated event; returns the alert records it (or time) caused.
        ``record``: the event's input record, kept with it while it is held (see
        :meth:`held_records`); a duplicate's record never replaces the first one."""
        self.stats.received[event.type] += 1
        if isinstance(event, AlertAction):
            return self._act(event)
        patient_id = event.patient.id
        state = self.states.get(patient_id)
        held = self._held_by_patient.get(patient_id)
        if (held is not None and event.event_id in held) or (state is not None and state.seen(event.event_id)):
            self.stats.duplicates += 1
            return []
        order_key = event_order_key(event)
        occurred = order_key[0] / 1_000_000  # exactly event.occurred_at.timestamp(), without a second conversion
        if occurred < self.watermark:
            self.stats.late += 1
            return self._process(event, occurred)
        # The event time as a float first (release compares it with the watermark), then the
        # sort key with the time as integer microseconds: ties on the float (events of the
        # same instant) then compare integers, not aware datetimes.
        heapq.heappush(self._held, (occurred, *order_key, next(self._seq), event))
        self._held_by_patient.setdefault(patient_id, {})[event.event_id] = (event, record)
        self.touched.add(patient_id)  # a durable store keeps held events too
        if occurred > self.max_event_time:
            self.max_event_time = occurred
            if self._watermark_from_input:
                return self.advance(occurred - self._lateness)
        return []

    def advance(self, watermark: float) -> list[AlertRecord]:
        """Move event time forward: release held events and run deadlines up to it."""
        if watermark <= self.watermark:
            return []
        self.watermark = watermark
        records = self._release(watermark)
        records.extend(self._run_deadlines(watermark))
        if watermark - self._last_sweep >= _SWEEP_EVERY:
            self._sweep(watermark)
        return records

    def finish(self) -> list[AlertRecord]:
        """End of input (offline replay): release everything; time stops at the last event."""
        records = self._release(math.inf)
        if self.max_event_time > self.watermark:
            self.watermark = self.max_event_time
        records.extend(self._run_deadlines(self.watermark))
        return records

    def recover(self) -> None:
        """After state was restored from a store (a changelog), re-arm every deadline and
        resume event time from the newest event the states have seen."""
        for patient_id, state in self.states.items():
            self._schedule(patient_id, state)
            self.max_event_time = max(self.max_event_time, state.last_event_at)

    def take_touched(self) -> set[str]:
        """Patients whose state changed since the last call (their state now in
        :attr:`states`, or gone: forgotten), for a durable store. A patient is also touched
        when an event of theirs is held or released, so a store that keeps
        :meth:`held_records` beside the state loses nothing the engine accepted."""
        touched, self.touched = self.touched, set()
        return touched

    def held_records(self, patient_id: str) -> list[tuple[AnyEvent, bytes | None]]:
        """This patient's events still waiting for the watermark (accepted, not yet applied),
        each with the input record :meth:`submit` was given for it. A live worker persists
        them with the state: the input offsets behind them are committed, so a worker that
        takes the partition over must get them from the store."""
        return list(self._held_by_patient.get(patient_id, {}).values())

    @property
    def held(self) -> int:
        """Events waiting for the watermark."""
        return len(self._held)

    # -- internals ------------------------------------------------------------------------
    def _act(self, action: AlertAction) -> list[AlertRecord]:
        """A pharmacist's action: applied at once at the patient's event-time clock, never
        held for the watermark and never moving it (it carries no event time of the feed)."""
        patient_id = action.patient.id
        state = self.states.get(patient_id)
        if state is not None and state.seen(action.event_id):
            self.stats.duplicates += 1
            outcome = "duplicate"
        else:
            outcome = apply_action(state, action)
            if state is not None:
                state.remember(action.event_id, self.rules.settings.recent_event_ids)
                self.touched.add(patient_id)
                self._schedule(patient_id, state)
        self.stats.actions[f"{action.action.value}/{outcome}"] += 1
        return []

    def _release(self, until: float) -> list[AlertRecord]:
        """Apply the held events that occurred at ``until`` or before, in order."""
        records: list[AlertRecord] = []
        held, held_by_patient, process = self._held, self._held_by_patient, self._process
        while held and held[0][0] <= until:
            entry = heapq.heappop(held)
            event = entry[-1]
            patient_id = event.patient.id
            patient_held = held_by_patient[patient_id]
            del patient_held[event.event_id]
            if not patient_held:
                del held_by_patient[patient_id]
            found = process(event, entry[0])  # type: ignore[arg-type]
            if found:
                records.extend(found)
        return records

    def _process(self, event: AnyEvent, occurred: float) -> list[AlertRecord]:
        """Apply one event (``occurred``: its time as POSIX seconds) to its patient."""
        patient_id = event.patient.id
        state = self.states.get(patient_id)
        if state is None:
            state = PatientState(patient_id)
        # Deadlines due before this event are judged first. The engine already knows the
        # next one of a state it scheduled (nothing changed the state since), which spares
        # recomputing it for every event: only a deadline before the event needs the run.
        due = self._scheduled.get(patient_id, _UNSCHEDULED) if patient_id in self.states else None
        if due is _UNSCHEDULED or (due is not None and due < occurred):  # type: ignore[operator]
            records = self.processor.run_until(state, occurred, inclusive=False)
        else:
            records = []
        outcome = self.processor.apply(state, event, max(occurred, state.clock), occurred=occurred)
        records.extend(outcome.records)
        if outcome.stale:
            self.stats.stale += 1
        if event.type == "prescription" and not outcome.monitored_drug:
            self.stats.unmonitored_orders += 1
        self.touched.add(patient_id)
        if outcome.ended:
            self.stats.patients_ended += 1
            self.states.pop(patient_id, None)
            self._unschedule(patient_id)
        else:
            self.states[patient_id] = state
            self._schedule(patient_id, state, outcome.active)
        self._count(records)
        return records

    def _schedule(self, patient_id: str, state: PatientState, active: ActiveOrders | None = None) -> None:
        due = self.processor.next_deadline(state, active)
        self._scheduled[patient_id] = due
        if due is not None:
            queued = self._queued.get(patient_id)
            if queued is None or due < queued:  # a later deadline keeps its earlier entry
                self._queue(patient_id, due)

    def _queue(self, patient_id: str, due: float) -> None:
        """Push the patient's live heap entry (an older one turns stale)."""
        self._queued[patient_id] = due
        heapq.heappush(self._deadlines, (due, patient_id))
        if len(self._deadlines) > _DEADLINES_PER_PATIENT * len(self._queued) + _DEADLINES_SLACK:
            self._compact_deadlines()

    def _unschedule(self, patient_id: str) -> None:
        """The patient has no state any more: no deadline, and its heap entry is stale."""
        self._scheduled.pop(patient_id, None)
        self._queued.pop(patient_id, None)

    def _compact_deadlines(self) -> None:
        """Keep only the live heap entries (:attr:`_queued`, at most one per patient):
        the others are skipped when popped anyway. Linear in the heap, which then
        holds more than twice the entries kept: it discards more entries than it keeps, and
        each was pushed once, so the cost is amortised constant per push. Safe inside
        :meth:`_run_deadlines`, which reads the heap afresh at every step."""
        self._deadlines = [(due, patient_id) for patient_id, due in self._queued.items()]
        heapq.heapify(self._deadlines)

    def _run_deadlines(self, until: float) -> list[AlertRecord]:
        records: list[AlertRecord] = []
        while self._deadlines and self._deadlines[0][0] <= until:
            queued, patient_id = heapq.heappop(self._deadlines)
            if self._queued.get(patient_id) != queued:
                continue  # stale: superseded by an earlier entry, or the patient was forgotten
            del self._queued[patient_id]
            due = self._scheduled.get(patient_id)
            if due is None:
                continue  # no deadline any more
            if due != queued:  # moved later since the entry was pushed: it waits for its time
                self._queue(patient_id, due)
                continue
            del self._scheduled[patient_id]
            state = self.states.get(patient_id)
            if state is None:
                continue
            found = self.processor.run_until(state, until)
            self.states[patient_id] = state
            self.touched.add(patient_id)
            self._schedule(patient_id, state)
            self._count(found)
            records.extend(found)
        return records

    def _sweep(self, watermark: float) -> None:
        """Forget patients with nothing left to judge and no event for ``patient_idle_ttl``."""
        self._last_sweep = watermark
        expired = [
            patient_id
            for patient_id, state in self.states.items()
            if state.last_event_at < watermark - self._idle_ttl and state.is_idle()
        ]
        for patient_id in expired:
            del self.states[patient_id]
            self.touched.add(patient_id)
            self._unschedule(patient_id)
        self.stats.patients_expired += len(expired)

    def _count(self, records: list[AlertRecord]) -> None:
        for record in records:
            self.stats.alerts[f"{record.kind.value}/{record.status.value}"] += 1

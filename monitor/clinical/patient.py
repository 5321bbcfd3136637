"""One patient: apply an event to the state, judge the moment, know the next deadline.

Pure: no I/O, no clock, no faust. The offline replay, the live worker and the tests all
drive patients through this module, so they cannot disagree about a rule.
"""

from __future__ import annotations

from bisect import insort
from dataclasses import dataclass, field

from ..alerts import AlertKind, AlertRecord
from ..events import AnyEvent, OrderAction, PainScore, PatientRef, PatientUpdate, Prescription
from ..knowledge import DrugClass, DrugInfo, MmeTotal, PatientMME, daily_dose, is_oud_indication, infer_route
from .context import ClinicalRules, Moment
from .detectors.coprescription import detect_coprescriptions
from .detectors.laxative import detect_missing_laxative, laxative_deadline
from .detectors.oih import detect_escalation_during_oih, detect_oih, oih_hold_or_resolve
from .lifecycle import EpisodeBook
from .mme_timeline import mme_at, mme_total_at, mme_total_of
from .state import (
    BENZODIAZEPINE,
    BOWEL_REGIMEN,
    GABAPENTINOID,
    NMDA_ANTAGONIST,
    OPIOID,
    SOFTENER_ONLY,
    Order,
    OrderVersion,
    PainRecord,
    ActiveOrders,
    PatientState,
)

_CLASS_FLAGS = {
    DrugClass.OPIOID: OPIOID,
    DrugClass.BENZODIAZEPINE: BENZODIAZEPINE,
    DrugClass.GABAPENTINOID: GABAPENTINOID,
    DrugClass.NMDA_ANTAGONIST: NMDA_ANTAGONIST,
}
_NO_OPIOID = PatientMME(0.0, True, ())
_NO_OPIOID_TOTAL = MmeTotal(0.0, True, False)


@dataclass(slots=True)
class Outcome:
    """What processing one event or deadline did."""

    records: list[AlertRecord] = field(default_factory=list)
    ended: bool = False  # the patient's state is over (discharge)
    stale: bool = False  # an older version of something already applied: ignored
    monitored_drug: bool = False  # the event touched a drug of a monitored class
    #: The orders active when the patient was judged, for :meth:`PatientProcessor.next_deadline`
    #: (None when not judged: a discharge).
    active: ActiveOrders | None = None


class PatientProcessor:
    def __init__(self, rules: ClinicalRules) -> None:
        self.rules = rules

    # -- events ---------------------------------------------------------------------------
    def apply(self, state: PatientState, event: AnyEvent, at: float, occurred: float | None = None) -> Outcome:
        """Apply ``event`` (occurred at its own time) and judge the patient at ``at``
        (equal to the event's time unless the event arrived late). ``occurred`` is the
        event's time as POSIX seconds when the caller has converted it already."""
        outcome = Outcome()
        if occurred is None:
            occurred = event.occurred_at.timestamp()
        self._update_context(state, event.patient)
        mme_before = None
        retracted: frozenset[str] = frozenset()
        if isinstance(event, Prescription):
            mme_before = self._mme(state, at)
            retracted, outcome.stale, outcome.monitored_drug = self._apply_order(state, event, occurred)
        elif isinstance(event, PainScore):
            self._apply_pain(state, event, occurred)
        elif isinstance(event, PatientUpdate):
            if event.disease_progression:
                if not any(eid == event.event_id for _, eid in state.progressions):
                    insort(state.progressions, (occurred, event.event_id))
            if event.comfort_care is not None:
                state.comfort_care = event.comfort_care
        state.remember(event.event_id, self.rules.settings.recent_event_ids)
        if occurred >= state.last_event_at:
            offset = event.occurred_at.utcoffset()
            state.utc_offset = int(offset.total_seconds()) if offset is not None else 0
        state.last_event_at = max(state.last_event_at, occurred)
        state.clock = max(state.clock, at)
        moment = Moment.of(state, at, self.rules, trigger=event, mme_before=mme_before,
                           retracted_event_ids=retracted)
        if isinstance(event, PatientUpdate) and event.discharged:
            book = EpisodeBook(state, moment, self.rules, state.unit)
            book.resolve_all("discharged")
            outcome.records = book.records
            outcome.ended = True
            return outcome
        outcome.records = self.judge(state, moment)
        self.prune(state, at)
        outcome.active = moment.active
        return outcome

    # -- deadlines ------------------------------------------------------------------------
    def next_deadline(self, state: PatientState, active: ActiveOrders | None = None) -> float | None:
        """The next event time at which this patient must be judged with no new event.
        ``active``: the orders active at ``state.clock`` if the caller has them (the moment
        :meth:`apply` just judged), which spares finding them again for every event. Judging
        changes no order; pruning can drop a one-time order whose effect ended before the
        window, which may still be listed there: the only reader, the laxative clock, never
        counts one-time orders."""
        t = state.clock
        due = [laxative_deadline(state, t, self.rules, active)]
        for order in state.orders.values():
            ends = order.ends_at(self.rules.one_time_active)
            due.append(ends if ends is not None and ends > t else None)
        due.extend(episode.snoozed_until for episode in state.episodes.values())  # a snooze's end re-raises
        oih = state.episodes.get(AlertKind.OIH_SUSPECTED.value)
        if oih is not None:
            due.append(oih.details.get("last_signature_at", oih.opened_at) + self.rules.window)
        if not state.is_idle():
            due.append(self._inactive_at(state))
        future = [d for d in due if d is not None and d > t]
        return min(future) if future else None

    def run_until(self, state: PatientState, until: float, inclusive: bool = True) -> list[AlertRecord]:
        """Judge the patient at every deadline up to ``until`` (before it if not inclusive)."""
        records: list[AlertRecord] = []
        while True:
            due = self.next_deadline(state)
            if due is None or due > until or (due == until and not inclusive):
                return records
            state.clock = due
            if due >= self._inactive_at(state):
                records.extend(self._expire(state, due))
                continue
            records.extend(self.judge(state, Moment.of(state, due, self.rules)))
            self.prune(state, due)

    def _inactive_at(self, state: PatientState) -> float:
        return state.last_event_at + self.rules.patient_idle_ttl

    def _expire(self, state: PatientState, t: float) -> list[AlertRecord]:
        """No event for ``patient_idle_ttl``: presume the patient gone (a missed discharge),
        resolve what is open and drop the clinical history, so that state stays bounded even
        when a feed never sends discharges. Recent event ids stay for de-duplication until
        the engine forgets the patient."""
        book = EpisodeBook(state, Moment.of(state, t, self.rules), self.rules, state.unit)
        book.resolve_all("inactive")
        state.orders.clear()
        state.pain.clear()
        state.progressions.clear()
        state.episodes.clear()
        return book.records

    # -- judgement ------------------------------------------------------------------------
    def judge(self, state: PatientState, moment: Moment) -> list[AlertRecord]:
        rules = self.rules
        book = EpisodeBook(state, moment, rules, state.unit)
        current = mme_total_of(moment.active_of(OPIOID), rules.factors) if self._has_opioid(state) else _NO_OPIOID_TOTAL
        oih_finding = detect_oih(state, moment, rules, current)
        oih = book.settle(AlertKind.OIH_SUSPECTED, oih_finding,
                          hold=lambda episode: oih_hold_or_resolve(state, moment, rules, episode, current))
        book.settle(AlertKind.OPIOID_ESCALATION_DURING_OIH,
                    detect_escalation_during_oih(state, moment, rules, oih, current))
        found = {finding.kind: finding for finding in detect_coprescriptions(state, moment, rules)}
        cleared = "comfort_care" if state.comfort_care else "condition_cleared"
        for kind in (AlertKind.OPIOID_BENZODIAZEPINE, AlertKind.OPIOID_GABAPENTINOID):
            book.settle(kind, found.get(kind), default_reason=cleared)
        book.settle(AlertKind.MISSING_LAXATIVE, detect_missing_laxative(state, moment, rules))
        return book.records

    def mme(self, state: PatientState, t: float) -> PatientMME:
        """The patient's MME at ``t`` with its per-order breakdown."""
        if not self._has_opioid(state):
            return _NO_OPIOID
        return mme_at(state, t, self.rules.factors)

    def _mme(self, state: PatientState, t: float) -> MmeTotal:
        """The total the detectors compare (no per-order breakdown: cheaper, memoised)."""
        if not self._has_opioid(state):
            return _NO_OPIOID_TOTAL
        return mme_total_at(state, t, self.rules.factors)

    @staticmethod
    def _has_opioid(state: PatientState) -> bool:
        return any(order.versions[-1].flags & OPIOID or order.versions[0].flags & OPIOID
                   for order in state.orders.values())

    # -- applying events ------------------------------------------------------------------
    @staticmethod
    def _update_context(state: PatientState, patient: PatientRef) -> None:
        if patient.birth_date is not None:
            state.birth_date = patient.birth_date
        if patient.unit is not None:
            state.unit = patient.unit
            state.monitored_explicit = patient.monitored  # a transfer without the flag: derive from the unit
        elif patient.monitored is not None:
            state.monitored_explicit = patient.monitored

    def _apply_order(self, state: PatientState, event: Prescription, occurred: float) -> tuple[frozenset[str], bool, bool]:
        """Returns (event ids retracted, stale?, monitored drug?)."""
        order = state.orders.get(event.order_id)
        key = (occurred, event.event_id)
        if order is not None and key <= order.last_applied:
            return frozenset(), True, True
        action = event.action
        if action is OrderAction.ENTERED_IN_ERROR:
            if order is None:
                return frozenset(), False, False
            del state.orders[event.order_id]
            return frozenset(order.event_ids() | {event.event_id}), False, True
        if action is OrderAction.DISCONTINUE:
            if order is None:
                return frozenset(), False, False
            if order.stopped_at is None or occurred < order.stopped_at:
                order.stopped_at, order.stop_event_id = occurred, event.event_id
            order.last_applied = key
            return frozenset(), False, True
        info = self.rules.catalogue.classify(event.drug, event.rxnorm)
        if info is None:
            if order is not None:  # changed to a drug outside the monitored classes: it ends here
                order.stopped_at, order.stop_event_id = occurred, event.event_id
                order.last_applied = key
            return frozenset(), False, False
        version = self._version(event, info, occurred)
        if order is None:
            state.orders[event.order_id] = Order(event.order_id, occurred, [version], last_applied=key)
        else:
            if order.stopped_at is not None and order.stopped_at <= occurred:
                order.stopped_at, order.stop_event_id = None, None  # re-activated
            order.versions = [v for v in order.versions if v.at != occurred]
            insort(order.versions, version, key=lambda v: v.at)
            order.started_at = min(order.started_at, occurred)
            order.last_applied = key
        return frozenset(), False, True

    def _version(self, event: Prescription, info: DrugInfo, occurred: float) -> OrderVersion:
        flags = 0
        for drug_class in info.classes:
            flags |= _CLASS_FLAGS.get(drug_class, 0)
        if info.bowel_regimen:
            flags |= BOWEL_REGIMEN
        if info.softener_only:
            flags |= SOFTENER_ONLY
        route = infer_route(event.route, event.dose_unit, event.strength_unit)
        version = OrderVersion(
            at=occurred,
            event_id=event.event_id,
            drug=info.opioid or (info.ingredients[0] if info.ingredients else event.drug.casefold()),
            flags=flags,
            route=route,
            prn=event.prn,
            one_time=event.one_time,
            end_at=event.end_at.timestamp() if event.end_at is not None else None,
        )
        if flags & OPIOID:
            dose = daily_dose(
                dose=event.dose, dose_max=event.dose_max, dose_unit=event.dose_unit, strength=event.strength,
                strength_unit=event.strength_unit, frequency_per_day=event.frequency_per_day,
                max_frequency_per_day=event.max_frequency_per_day, prn=event.prn, one_time=event.one_time,
                route=route,
            )
            version.daily_amount, version.daily_unit, version.dose_note = dose.amount, dose.unit, dose.note
            version.for_oud = is_oud_indication(event.indication)
        return version

    def _apply_pain(self, state: PatientState, event: PainScore, occurred: float) -> None:
        if any(record.event_id == event.event_id for record in state.pain):
            return
        insort(state.pain, PainRecord(occurred, event.score, event.event_id, event.body_site, bool(event.allodynia)),
               key=lambda record: (record.at, record.event_id))

    # -- bounded state --------------------------------------------------------------------
    def prune(self, state: PatientState, t: float) -> None:
        """Drop history older than the longest window (current facts are kept)."""
        horizon = t - self.rules.window
        if state.pain and (state.pain[0].at < horizon or len(state.pain) > self.rules.settings.max_pain_scores):
            kept = [record for record in state.pain if record.at >= horizon]
            state.pain = kept[-self.rules.settings.max_pain_scores:]
        if state.progressions and state.progressions[0][0] < horizon:
            state.progressions = [item for item in state.progressions if item[0] >= horizon]
        for order_id in [oid for oid, order in state.orders.items() if _ended_before(order, horizon, self.rules)]:
            del state.orders[order_id]
        for order in state.orders.values():
            if len(order.versions) > 1 and order.versions[1].at <= horizon:
                keep_from = max(i for i, version in enumerate(order.versions) if version.at <= horizon)
                order.versions = order.versions[keep_from:]


def _ended_before(order: Order, horizon: float, rules: ClinicalRules) -> bool:
    ends = order.ends_at(rules.one_time_active)
    return ends is not None and ends < horizon

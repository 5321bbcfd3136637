"""Opioid-induced hyperalgesia (OIH) signature, and opioid escalation while it is suspected.

Computable form of "pain escalates while opioid doses increase and the disease has not
progressed" (see clinical-rules.md):

1. dose escalation: within the window the complete total daily MME rose by at least
   ``oih_min_rise_fraction`` and ``oih_min_rise_mme`` over its lowest positive value, after
   ``oih_min_exposure`` of continuous exposure (an opioid-naive start is not an escalation);
2. pain escalation after it: median of >= ``oih_min_scores`` scores taken at least
   ``oih_pain_delay`` after the escalation exceeds the median of >= ``oih_min_scores``
   window scores before it by ``oih_min_pain_rise``;
3. no documented disease progression in the window.

A rise that falls within an opioid rotation (one opioid stopped, another started within
``rotation_window``) is not an escalation; the rotated regimen becomes the new baseline.
Pain rising across a rotation is still noted, at severity info.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import median

from ...alerts import AlertKind, Severity
from ...events import OrderAction, Prescription
from ...knowledge import MmeTotal
from ..context import ClinicalRules, Moment
from ..mme_timeline import exposure_start, mme_timeline, rotation_intervals
from ..state import OPIOID, Episode, PainRecord, PatientState
from .finding import Finding


@dataclass(frozen=True, slots=True)
class Escalation:
    at: float
    baseline_mme: float
    escalated_mme: float
    rotation: bool


def escalations(state: PatientState, t: float, rules: ClinicalRules) -> list[Escalation]:
    """Dose escalations (and rotation rises) within the window ending at ``t``."""
    settings = rules.settings
    window_start = t - rules.window
    timeline = mme_timeline(state, window_start, t, rules.factors, rules.one_time_active)
    rotations = rotation_intervals(state, rules.rotation_window)
    exposed_since = exposure_start(state, window_start, rules.factors, rules.one_time_active)
    min_exposure = rules.oih_min_exposure
    found: list[Escalation] = []
    lowest: float | None = None
    for point in timeline:
        if not point.exposed:
            lowest, exposed_since = None, None
            continue
        if exposed_since is None:
            exposed_since = point.at
        if not point.complete:
            continue
        in_rotation = any(start <= point.at <= end for start, end, _, _ in rotations)
        if lowest is not None and point.at - exposed_since >= min_exposure:
            rise = point.total - lowest
            if rise >= settings.oih_min_rise_mme and point.total >= lowest * (1 + settings.oih_min_rise_fraction):
                found.append(Escalation(point.at, lowest, point.total, in_rotation))
        if point.total > 0:
            # A rotation resets the baseline to the rotated regimen.
            lowest = point.total if (lowest is None or in_rotation) else min(lowest, point.total)
    return found


def _normalise_site(site: str | None) -> str | None:
    return " ".join(site.casefold().replace("_", " ").replace("-", " ").split()) if site else None


def detect_oih(state: PatientState, moment: Moment, rules: ClinicalRules, current: MmeTotal) -> Finding | None:
    settings = rules.settings
    t = moment.t
    if not any(v.flags & OPIOID for order in state.orders.values() for v in order.versions):
        return None
    window_start = t - rules.window
    pain = [record for record in state.pain if window_start <= record.at <= t]
    if len(pain) < 2 * settings.oih_min_scores:
        return None
    if any(window_start <= at <= t for at, _ in state.progressions):
        return None
    delay = rules.oih_pain_delay
    matches = []
    for escalation in escalations(state, t, rules):
        if current.complete and current.total <= escalation.baseline_mme + 1e-9:
            continue  # already back at (or below) the pre-escalation dose: the advice was taken
        before = [r for r in pain if r.at < escalation.at]
        after = [r for r in pain if r.at >= escalation.at + delay]
        if len(before) < settings.oih_min_scores or len(after) < settings.oih_min_scores:
            continue
        baseline, recent = median(r.score for r in before), median(r.score for r in after)
        if recent - baseline >= settings.oih_min_pain_rise:
            matches.append((escalation, before, after, baseline, recent))
    if not matches:
        return None
    # Prefer a true escalation; a rotation rise only explains pain at severity info.
    matches.sort(key=lambda match: (match[0].rotation, match[0].at))
    escalation, before, after, baseline, recent = matches[0]
    return _finding(state, moment, rules, current, escalation, before, after, baseline, recent)


def _finding(state: PatientState, moment: Moment, rules: ClinicalRules, current: MmeTotal,
             escalation: Escalation, before: list[PainRecord], after: list[PainRecord],
             baseline: float, recent: float) -> Finding:
    before_sites = {s for s in (_normalise_site(r.site) for r in before) if s}
    after_sites = {s for s in (_normalise_site(r.site) for r in after) if s}
    new_sites = sorted(after_sites - before_sites) if before_sites else []
    allodynia = any(r.allodynia for r in after)
    high_mme = current.complete and current.total >= rules.settings.mme_high
    reasons = [label for label, present in (("pain spreading", bool(new_sites)), ("allodynia", allodynia),
                                            (f"total >= {rules.settings.mme_high:g} MME/day", high_mme)) if present]
    if escalation.rotation:
        severity = Severity.INFO
    else:
        severity = Severity.HIGH if reasons else Severity.WARNING
    opioid_events = [v.event_id for _, v in state.active_versions(escalation.at, OPIOID)]
    drugs = sorted({v.drug for _, v in moment.active_of(OPIOID)})
    if escalation.rotation:
        summary = (f"Pain rose from median {baseline:g} to {recent:g} across an opioid rotation "
                   f"(computed MME {escalation.baseline_mme:g} -> {escalation.escalated_mme:g}; rotation, not escalation)")
    else:
        summary = (f"Pain rose from median {baseline:g} to {recent:g} after opioid escalation "
                   f"{escalation.baseline_mme:g} -> {escalation.escalated_mme:g} MME/day ({', '.join(drugs) or 'opioid'})")
        if reasons:
            summary += f"; {', '.join(reasons)}"
    return Finding(
        kind=AlertKind.OIH_SUSPECTED,
        severity=severity,
        evidence=opioid_events + [r.event_id for r in before] + [r.event_id for r in after],
        summary=summary,
        details={
            "escalation_at": escalation.at,
            "pre_escalation_mme": round(escalation.baseline_mme, 2),
            "escalated_mme": round(escalation.escalated_mme, 2),
            "total_mme": round(current.total, 2),
            "mme_complete": current.complete,
            "baseline_pain_median": baseline,
            "recent_pain_median": recent,
            "new_pain_sites": new_sites,
            "allodynia": allodynia,
            "rotation": escalation.rotation,
            "drugs": drugs,
        },
    )


def oih_hold_or_resolve(state: PatientState, moment: Moment, rules: ClinicalRules, episode: Episode,
                        current: MmeTotal) -> str | None:
    """An open OIH episode whose signature no longer holds at this moment: the reason to
    resolve it, or None to keep it open (the signature may simply be between scores)."""
    t = moment.t
    if any(t - rules.window <= at <= t for at, _ in state.progressions):
        return "disease_progression"
    if set(moment.retracted_event_ids) & set(episode.evidence):
        return "retracted"
    pre = episode.details.get("pre_escalation_mme")
    if pre is not None and current.complete and current.total <= pre + 1e-9:
        return "dose_reduced"
    last_seen = episode.details.get("last_signature_at", episode.opened_at)
    if t - last_seen >= rules.window:
        return "window_elapsed"
    escalated_at = episode.details.get("escalation_at")
    if escalated_at is not None and t - escalated_at < rules.window:
        still_there = any(e.at == escalated_at and not e.rotation for e in escalations(state, t, rules))
        if not still_there and episode.severity != Severity.INFO.value:
            return "retracted" if moment.retracted_event_ids else "rotation"
    return None


def detect_escalation_during_oih(state: PatientState, moment: Moment, rules: ClinicalRules,
                                 oih: Episode | None, current: MmeTotal) -> Finding | None:
    """A new or changed opioid order that raises the complete total while OIH is open."""
    if oih is None or oih.severity == Severity.INFO.value:
        return None
    open_episode = state.episodes.get(AlertKind.OPIOID_ESCALATION_DURING_OIH.value)
    if open_episode is not None:
        before_total = open_episode.details.get("mme_before")
        if before_total is not None and current.complete and current.total > before_total + 1e-9:
            return _escalation_finding(open_episode.evidence, before_total, current, moment)
        return None
    trigger, before = moment.trigger, moment.mme_before
    if not isinstance(trigger, Prescription) or trigger.action not in (OrderAction.NEW, OrderAction.MODIFY):
        return None
    if before is None or not before.complete or not current.complete or current.total <= before.total + 1e-9:
        return None
    order = state.orders.get(trigger.order_id)
    if order is None or not order.versions[-1].flags & OPIOID:
        return None
    rotations = rotation_intervals(state, rules.rotation_window)
    if any(start <= moment.t <= end for start, end, _, _ in rotations):
        return None
    return _escalation_finding([trigger.event_id] + list(oih.evidence[:1]), before.total, current, moment)


def _escalation_finding(evidence: list[str], before_total: float, current: MmeTotal, moment: Moment) -> Finding:
    return Finding(
        kind=AlertKind.OPIOID_ESCALATION_DURING_OIH,
        severity=Severity.HIGH,
        evidence=list(evidence),
        summary=f"Opioid raised {before_total:g} -> {current.total:g} MME/day while OIH is suspected",
        details={"mme_before": round(before_total, 2), "total_mme": round(current.total, 2), "mme_complete": True},
    )

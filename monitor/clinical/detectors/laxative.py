"""Missing bowel regimen: an opioid without a scheduled laxative after a grace period.

Fires on event-time progress (a deadline), not on the next event: a patient may have no
further event for days. One-time doses do not start the clock.
"""

from __future__ import annotations

from ...alerts import AlertKind, Severity
from ..context import ClinicalRules, Moment
from ..state import BOWEL_REGIMEN, OPIOID, SOFTENER_ONLY, ActiveOrders, Order, OrderVersion, PatientState
from .finding import Finding


#: The classes the laxative rule reads (a softener only counts when the settings say so).
_LAXATIVE_RULE_CLASSES = OPIOID | BOWEL_REGIMEN | SOFTENER_ONLY


def laxative_clock(state: PatientState, t: float, rules: ClinicalRules) -> tuple[float, list[tuple[Order, OrderVersion]]] | None:
    """When the grace period started (the earliest active opioid order, one-time doses
    excluded) and those orders; None when there is no such opioid or a regimen is active."""
    return _clock(state.active_versions(t, _LAXATIVE_RULE_CLASSES), rules)


def _clock(active: ActiveOrders, rules: ClinicalRules) -> tuple[float, list[tuple[Order, OrderVersion]]] | None:
    """:func:`laxative_clock` over the orders active at that time (at least those of
    :data:`_LAXATIVE_RULE_CLASSES`; any others are ignored)."""
    opioids = [(o, v) for o, v in active if v.flags & OPIOID and not v.one_time]
    if not opioids:
        return None
    regimen_flags = BOWEL_REGIMEN | (SOFTENER_ONLY if rules.settings.docusate_counts_as_bowel_regimen else 0)
    for _, version in active:
        if version.flags & regimen_flags and not version.prn and not version.one_time:
            return None
    started = min(order.started_at for order, _ in opioids)
    return started, opioids


def laxative_deadline(state: PatientState, t: float, rules: ClinicalRules,
                      active: ActiveOrders | None = None) -> float | None:
    """The moment the alert would fire if nothing changes, if that is still ahead.
    ``active``: the orders active at ``t`` (at least those the rule reads), if known."""
    clock = laxative_clock(state, t, rules) if active is None else _clock(active, rules)
    if clock is None:
        return None
    deadline = clock[0] + rules.laxative_grace
    return deadline if deadline > t else None


def detect_missing_laxative(state: PatientState, moment: Moment, rules: ClinicalRules) -> Finding | None:
    clock = _clock(moment.active, rules)
    if clock is None:
        return None
    started, opioids = clock
    deadline = started + rules.laxative_grace
    if moment.t < deadline:
        return None
    opioids.sort(key=lambda item: (item[0].started_at, item[0].order_id))
    first_order = opioids[0][0]
    drugs = sorted({version.drug for _, version in opioids})
    hours = rules.laxative_grace / 3600
    return Finding(
        kind=AlertKind.MISSING_LAXATIVE,
        severity=Severity.HIGH if moment.elderly else Severity.WARNING,
        evidence=[version.event_id for _, version in opioids],
        summary=f"{', '.join(drugs)} without a scheduled bowel regimen for over {hours:g} h",
        details={"drugs": drugs, "opioid_started_at": started, "grace_hours": hours, "age": moment.age},
        anchor_event_id=first_order.versions[0].event_id,
        raised_at=deadline,
    )

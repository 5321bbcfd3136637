"""A patient's total daily MME over event time, derived from the order versions.

The timeline is derived rather than stored, so retracting an order (entered in error) or
inserting a late one corrects history for free: there is no second copy to keep in sync.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..knowledge import DailyDose, FactorSet, MmeTotal, OpioidExposure, PatientMME, mme_total, patient_mme
from .state import OPIOID, ActiveOrders, Order, OrderVersion, PatientState


@dataclass(frozen=True, slots=True)
class MmePoint:
    """The patient's opioid picture from ``at`` until the next point."""

    at: float
    total: float
    complete: bool
    exposed: bool  # any opioid counted for pain therapy (OUD treatment excluded)


def exposure_of(order: Order, version: OrderVersion) -> OpioidExposure:
    return OpioidExposure(
        order_id=order.order_id,
        ingredient=version.drug,
        route=version.route,
        daily=DailyDose(version.daily_amount, version.daily_unit, version.dose_note),
        prn=version.prn,
        for_oud=version.for_oud,
    )


def mme_at(state: PatientState, t: float, factors: FactorSet) -> PatientMME:
    """Total daily MME of the opioid orders active at ``t``."""
    return patient_mme(
        (exposure_of(order, version) for order, version in state.active_versions(t, OPIOID)), factors
    )


def mme_total_at(state: PatientState, t: float, factors: FactorSet) -> MmeTotal:
    """:func:`mme_at` without the per-order breakdown (what the detectors compare): built
    from the order versions directly, the doses exactly as :func:`exposure_of` gives them."""
    return mme_total_of(state.active_versions(t, OPIOID), factors)


def mme_total_of(opioids: ActiveOrders, factors: FactorSet) -> MmeTotal:
    """:func:`mme_total_at` over the opioid orders active at that time."""
    return mme_total(tuple((version.drug, version.route, version.daily_amount, version.daily_unit, version.prn,
                            version.for_oud) for _, version in opioids), factors)


def opioid_change_times(state: PatientState, one_time_active: float) -> list[float]:
    """Every event time at which some opioid order's contribution may change."""
    times: set[float] = set()
    for order in state.orders.values():
        if not any(version.flags & OPIOID for version in order.versions):
            continue
        for version in order.versions:
            times.add(version.at)
            if version.end_at is not None:
                times.add(version.end_at)
            if version.one_time:
                times.add(version.at + one_time_active)
        if order.stopped_at is not None:
            times.add(order.stopped_at)
    return sorted(times)


def mme_timeline(
    state: PatientState, start: float, end: float, factors: FactorSet, one_time_active: float
) -> list[MmePoint]:
    """Points of change in ``[start, end]``; the first point is the picture at ``start``."""
    points: list[MmePoint] = []
    for at in [start] + [t for t in opioid_change_times(state, one_time_active) if start < t <= end]:
        mme = mme_total_at(state, at, factors)
        point = MmePoint(at, mme.total, mme.complete, mme.exposed)
        if points and (points[-1].total, points[-1].complete, points[-1].exposed) == (
            point.total,
            point.complete,
            point.exposed,
        ):
            continue
        points.append(point)
    return points


def exposure_start(state: PatientState, t: float, factors: FactorSet, one_time_active: float) -> float | None:
    """Start of the continuous opioid exposure in force at ``t`` (None if not exposed)."""
    start: float | None = None
    for at in opioid_change_times(state, one_time_active):
        if at > t:
            break
        if mme_total_at(state, at, factors).exposed:
            if start is None:
                start = at
        else:
            start = None
    return start


def rotation_intervals(state: PatientState, window: float) -> list[tuple[float, float, str, str]]:
    """Spans where one opioid stopped and a different one started within ``window``.

    Returns ``(from, to, stopped_ingredient, started_ingredient)``; between the two
    moments the computed MME reflects the switch, not a dose escalation.
    """
    starts: list[tuple[float, str]] = []
    stops: list[tuple[float, str]] = []
    for order in state.orders.values():
        opioid_versions = [v for v in order.versions if v.flags & OPIOID]
        if not opioid_versions:
            continue
        if order.versions[0].flags & OPIOID:
            starts.append((order.started_at, order.versions[0].drug))
        last = order.versions[-1]
        stop = order.stopped_at
        if last.end_at is not None and (stop is None or last.end_at < stop):
            stop = last.end_at
        if stop is not None and last.flags & OPIOID:
            stops.append((stop, last.drug))
    spans = []
    for start_at, started in starts:
        for stop_at, stopped in stops:
            if started != stopped and abs(start_at - stop_at) <= window:
                spans.append((min(start_at, stop_at), max(start_at, stop_at), stopped, started))
    return sorted(spans)

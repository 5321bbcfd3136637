"""Evidence made readable: the orders and scores behind an alert as the worklist shows them.

An alert record names its evidence by event id; a pharmacist needs the drug, route, daily
dose and MME of each order and the pain scores with their times. The worker knows them (in
the patient's state) when it writes the record, so it writes them into the record: the
queue needs no copy of the input topics.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from ..knowledge import FactorSet, patient_mme
from .mme_timeline import exposure_of
from .state import OPIOID, Order, OrderVersion, PatientState


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).isoformat()


def readable_evidence(state: PatientState, event_ids: list[str], factors: FactorSet) -> list[dict[str, Any]]:
    """One small dict per evidence event still in state (retracted orders are gone), in time order."""
    wanted = set(event_ids)
    items: list[tuple[float, dict[str, Any]]] = []
    for order in state.orders.values():
        for version in order.versions:
            if version.event_id in wanted:
                items.append((version.at, _order_item(order, version, factors)))
        if order.stop_event_id in wanted and order.stopped_at is not None:
            items.append((order.stopped_at, {"event_id": order.stop_event_id, "type": "order_stop",
                                             "at": iso(order.stopped_at), "drug": order.versions[-1].drug}))
    for record in state.pain:
        if record.event_id in wanted:
            item: dict[str, Any] = {"event_id": record.event_id, "type": "pain_score", "at": iso(record.at),
                                    "score": record.score}
            if record.site:
                item["site"] = record.site
            items.append((record.at, item))
    items.sort(key=lambda pair: (pair[0], pair[1]["event_id"]))
    return [item for _, item in items]


def _order_item(order: Order, version: OrderVersion, factors: FactorSet) -> dict[str, Any]:
    item: dict[str, Any] = {"event_id": version.event_id, "type": "order", "at": iso(version.at),
                            "drug": version.drug, "route": version.route, "prn": version.prn}
    if version.daily_amount is not None:
        item["daily_dose"] = f"{version.daily_amount:g} {version.daily_unit}/day"
    elif version.dose_note:
        item["daily_dose"] = version.dose_note
    if version.has(OPIOID):
        mme = patient_mme([exposure_of(order, version)], factors)
        item["mme"] = round(mme.orders[0].mme, 1) if mme.orders and mme.orders[0].mme is not None else None
    return item

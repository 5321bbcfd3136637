"""Per-patient state: what the detectors need to know about one patient, and no more.

State is bounded: orders of monitored classes only (an antibiotic or saline order is
counted and forgotten), order versions and pain scores within the longest window, a
fixed number of recent event ids. Times are POSIX seconds (floats) of event time: compact
to store in a changelog-backed table and cheap to compare.

Everything here is plain data with ``to_dict``/``from_dict`` so a live worker can keep
it in a faust table and an offline replay in a dict, with the same detector code.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field, fields
from datetime import date
from typing import Any

# Class flags of an order version (a bit set: compact and fast to test).
OPIOID = 1
BENZODIAZEPINE = 2
GABAPENTINOID = 4
BOWEL_REGIMEN = 8
SOFTENER_ONLY = 16
NMDA_ANTAGONIST = 32
#: Every class flag: an order version with none of them is never asked for.
ANY_CLASS = OPIOID | BENZODIAZEPINE | GABAPENTINOID | BOWEL_REGIMEN | SOFTENER_ONLY | NMDA_ANTAGONIST

#: Orders active at one time, each with the version in force, in the state's order.
ActiveOrders = list[tuple["Order", "OrderVersion"]]

#: "No time yet": before any event time.
NEVER = float("-inf")


def _finite_or_none(value: float) -> float | None:
    return None if value == NEVER else value


@dataclass(slots=True)
class OrderVersion:
    """One version of a monitored order, in force from ``at`` until the next version."""

    at: float
    event_id: str
    drug: str  # the canonical ingredient (opioid ingredient for opioids) for display
    flags: int
    route: str | None = None
    daily_amount: float | None = None
    daily_unit: str | None = None
    dose_note: str = ""
    prn: bool = False
    one_time: bool = False
    for_oud: bool = False
    end_at: float | None = None

    def has(self, flag: int) -> bool:
        return bool(self.flags & flag)


@dataclass(slots=True)
class Order:
    """A monitored order and its versions (bounded to the window plus the one before)."""

    order_id: str
    started_at: float  # kept apart from versions: old versions are pruned, the start is not
    versions: list[OrderVersion]
    stopped_at: float | None = None
    stop_event_id: str | None = None
    last_applied: tuple[float, str] = (NEVER, "")

    def version_at(self, t: float) -> OrderVersion | None:
        """The version in force at ``t``, or None if the order is not active then."""
        if self.stopped_at is not None and t >= self.stopped_at:
            return None
        current = None
        for version in self.versions:
            if version.at <= t:
                current = version
            else:
                break
        if current is None:
            return None
        if current.end_at is not None and t >= current.end_at:
            return None
        return current

    def ends_at(self, one_time_active: float) -> float | None:
        """When the latest version stops being active on its own (scheduled stop or
        the end of a one-time dose's effect), if it does."""
        latest = self.versions[-1]
        # The earliest of the candidates, the first of equal ones (as min() would), without
        # building a list: this runs for every order at every deadline computation.
        ends = self.stopped_at
        if latest.end_at is not None and (ends is None or latest.end_at < ends):
            ends = latest.end_at
        if latest.one_time:
            effect_ends = latest.at + one_time_active
            if ends is None or effect_ends < ends:
                ends = effect_ends
        return ends

    def event_ids(self) -> set[str]:
        ids = {version.event_id for version in self.versions}
        if self.stop_event_id:
            ids.add(self.stop_event_id)
        return ids


@dataclass(slots=True)
class PainRecord:
    at: float
    score: int
    event_id: str
    site: str | None = None
    allodynia: bool = False


@dataclass(slots=True)
class Episode:
    """An open alert episode of one kind for one patient."""

    alert_id: str
    revision: int
    severity: str
    opened_at: float
    evidence: list[str]
    details: dict[str, Any] = field(default_factory=dict)
    # The pharmacist queue's actions (monitor.clinical.actions), all in event time.
    snoozed_until: float | None = None
    acknowledged_at: float | None = None
    acknowledged_by: str | None = None
    #: The severity the pharmacist snoozed: only a rise above it breaks through the snooze.
    snooze_severity: str | None = None
    #: The latest summary line, for the record a snooze expiry publishes without a new finding.
    summary: str = ""

    @property
    def snoozed(self) -> bool:
        return self.snoozed_until is not None


@dataclass(slots=True)
class PatientState:
    patient_id: str
    birth_date: date | None = None
    unit: str | None = None
    monitored_explicit: bool | None = None
    comfort_care: bool = False
    orders: dict[str, Order] = field(default_factory=dict)
    pain: list[PainRecord] = field(default_factory=list)
    progressions: list[tuple[float, str]] = field(default_factory=list)
    episodes: dict[str, Episode] = field(default_factory=dict)
    #: The latest event ids, oldest first (at most ``recent_event_ids``), for de-duplication.
    recent_ids: list[str] = field(default_factory=list)
    #: ``hash()`` of each of :attr:`recent_ids`, in the same order; memory only. A new event
    #: (nearly every one) is told from the recent ones by this one contiguous array rather
    #: than by comparing a string object each: the strings live apart in the heap, and at a
    #: census of 100,000 each was a cache miss on every event.
    recent_hashes: array[int] = field(init=False, compare=False, repr=False)  # set by __post_init__
    clock: float = NEVER
    last_event_at: float = NEVER
    #: UTC offset (seconds) of the latest event: ages are counted on the hospital's local date.
    utc_offset: int = 0

    def __post_init__(self) -> None:
        self.recent_hashes = array("q", map(hash, self.recent_ids))  # follows the ids given (or replaced)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without the hash array: another process hashes strings differently."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "recent_hashes"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            object.__setattr__(self, name, value)
        self.__post_init__()

    # -- de-duplication -------------------------------------------------------------
    def seen(self, event_id: str) -> bool:
        """Whether ``event_id`` is one of the recent ids (a hash that matches is checked
        against the id itself, so a collision never drops an event)."""
        if hash(event_id) not in self.recent_hashes:
            return False
        return event_id in self.recent_ids

    def remember(self, event_id: str, limit: int) -> None:
        if limit <= 0:
            return
        self.recent_ids.append(event_id)
        self.recent_hashes.append(hash(event_id))
        if len(self.recent_ids) > limit:
            excess = len(self.recent_ids) - limit
            del self.recent_ids[:excess]
            del self.recent_hashes[:excess]

    # -- queries ----------------------------------------------------------------------
    def active_versions(self, t: float, flag: int) -> ActiveOrders:
        """Orders of a class active at ``t`` with the version in force."""
        found = []
        for order in self.orders.values():
            versions = order.versions
            if len(versions) == 1 and not versions[0].flags & flag:
                continue  # its only version is of another class: no need to find the one in force
            version = order.version_at(t)
            if version is not None and version.flags & flag:
                found.append((order, version))
        return found

    def is_idle(self) -> bool:
        """Nothing left that a detector could act on."""
        return not self.orders and not self.episodes and not self.pain and not self.progressions

    # -- serialization (compact, JSON-compatible) -------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "p": self.patient_id,
            "b": self.birth_date.isoformat() if self.birth_date else None,
            "u": self.unit,
            "m": self.monitored_explicit,
            "c": self.comfort_care,
            "o": [_order_to_list(order) for order in self.orders.values()],
            "s": [[r.at, r.score, r.event_id, r.site, r.allodynia] for r in self.pain],
            "g": [list(item) for item in self.progressions],
            "e": {
                kind: [ep.alert_id, ep.revision, ep.severity, ep.opened_at, ep.evidence, ep.details,
                       ep.snoozed_until, ep.acknowledged_at, ep.acknowledged_by, ep.snooze_severity, ep.summary]
                for kind, ep in self.episodes.items()
            },
            "r": list(self.recent_ids),
            "k": [_finite_or_none(self.clock), _finite_or_none(self.last_event_at), self.utc_offset],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PatientState":
        state = cls(
            patient_id=data["p"],
            birth_date=date.fromisoformat(data["b"]) if data.get("b") else None,
            unit=data.get("u"),
            monitored_explicit=data.get("m"),
            comfort_care=bool(data.get("c")),
            recent_ids=list(data.get("r", [])),
        )
        for item in data.get("o", []):
            order = _order_from_list(item)
            state.orders[order.order_id] = order
        state.pain = [PainRecord(at, score, eid, site, allo) for at, score, eid, site, allo in data.get("s", [])]
        state.progressions = [(at, eid) for at, eid in data.get("g", [])]
        for kind, (aid, rev, sev, opened, evidence, details, snoozed, acked, *queue) in data.get("e", {}).items():
            by, snooze_severity, summary = (*queue, None, None, "")[:3]  # older records lack the queue's slots
            state.episodes[kind] = Episode(aid, rev, sev, opened, list(evidence), dict(details), snoozed, acked,
                                           by, snooze_severity, summary or "")
        clock, last_event_at, *rest = data.get("k", [None, None])
        state.utc_offset = int(rest[0]) if rest else 0
        state.clock = NEVER if clock is None else clock
        state.last_event_at = NEVER if last_event_at is None else last_event_at
        return state


def of_class(active: ActiveOrders, flag: int) -> ActiveOrders:
    """The orders of a class among ``active``, in the same order: what
    ``state.active_versions(t, flag)`` gives when ``active`` is ``state.active_versions(t, ANY_CLASS)``."""
    return [(order, version) for order, version in active if version.flags & flag]


def _order_to_list(order: Order) -> list[Any]:
    return [
        order.order_id,
        order.started_at,
        [
            [v.at, v.event_id, v.drug, v.flags, v.route, v.daily_amount, v.daily_unit, v.dose_note,
             v.prn, v.one_time, v.for_oud, v.end_at]
            for v in order.versions
        ],
        order.stopped_at,
        order.stop_event_id,
        [_finite_or_none(order.last_applied[0]), order.last_applied[1]],
    ]


def _order_from_list(item: list[Any]) -> Order:
    order_id, started_at, versions, stopped_at, stop_event_id, last_applied = item
    return Order(
        order_id=order_id,
        started_at=started_at,
        versions=[OrderVersion(*v) for v in versions],
        stopped_at=stopped_at,
        stop_event_id=stop_event_id,
        last_applied=(NEVER if last_applied[0] is None else last_applied[0], last_applied[1]),
    )

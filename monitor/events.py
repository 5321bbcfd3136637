"""Canonical input events: the contract every producer (JSON, FHIR, HL7 v2) maps into.

These pydantic models are validated once, at the edge; everything behind the edge works
with typed events. Their JSON Schemas are generated into ``schemas/`` (see
``monitor.schemas``) so producers in other languages share the contract.

Unknown fields are ignored rather than rejected, so producers can add fields without
breaking older workers. Validation errors never echo input values
(``hide_input_in_errors``): inputs carry patient data.
"""

from __future__ import annotations

import re

from datetime import date, datetime, timezone
from enum import Enum
from typing import Annotated, Literal, Union

from datetime import timedelta

from pydantic import (AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictInt,
                      model_validator)
from pydantic_core import PydanticCustomError

from .actions import INTERVENTIONS, MAX_SNOOZE, ActionKind
from .alerts import AlertKind

#: Units that express a continuous rate (infusions, transdermal patches): ×24 per day.
#: A dose unit that is a rate (amount, optionally per kg, per hour or minute): a continuous
#: dose (infusion or patch) that needs no ``frequency_per_day``. Covers what pumps and
#: patches are ordered in: mg/h, mcg/h, units/h, mL/hr, mcg/kg/min, mEq/h, ...
RATE_UNIT_PATTERN = (
    r"^\s*(?:mg|ug|µg|g|mcg|ng|micrograms?|milligrams?|units?|u|iu|meq|mmol|ml|l)"
    r"(?:\s*/\s*kg)?\s*/\s*(?:h|hr|hrs|hour|min|minute)\s*$"
)
_RATE_UNIT = re.compile(RATE_UNIT_PATTERN, re.IGNORECASE)


def _ecma_case_insensitive(pattern: str) -> str:
    """The pattern with every letter as ``[xX]``: JSON Schema (ECMA-262) has no ``(?i)``."""
    out, escaped = [], False
    for char in pattern:
        if escaped or not char.isalpha() or char.lower() == char.upper():
            out.append(char)
        else:
            out.append(f"[{char.lower()}{char.upper()}]")
        escaped = char == "\\" and not escaped
    return "".join(out)


def is_rate_unit(unit: str | None) -> bool:
    return unit is not None and _RATE_UNIT.match(unit) is not None

_MODEL_CONFIG = ConfigDict(
    extra="ignore",
    frozen=True,
    hide_input_in_errors=True,
    str_strip_whitespace=True,
)

Identifier = Annotated[str, Field(min_length=1, max_length=128)]
ShortText = Annotated[str, Field(min_length=1, max_length=256)]


class PatientRef(BaseModel):
    """Who an event is about, plus any patient facts the producer knows at that moment.

    Any event may carry ``birth_date``, ``unit`` and ``monitored``; they update the
    patient's context. ``monitored`` states continuous respiratory monitoring explicitly;
    when absent, the unit is looked up in the monitored-units data file.
    """

    model_config = _MODEL_CONFIG

    id: Identifier
    birth_date: date | None = None
    unit: ShortText | None = None
    monitored: StrictBool | None = None


class OrderAction(str, Enum):
    """What a prescription event does to the order it names."""

    NEW = "new"
    MODIFY = "modify"
    DISCONTINUE = "discontinue"
    ENTERED_IN_ERROR = "entered_in_error"


def _not_a_number(value: object) -> object:
    """pydantic's lax mode reads a number as Unix seconds (12.5 -> 1970-01-01T00:00:12.5Z);
    the contract says an ISO 8601 string with its UTC offset, so a number is refused."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise ValueError("must be an ISO 8601 date-time string with a UTC offset, not a number")
    return value


#: An event time: timezone-aware, given as text (or a datetime by an adapter), never a number.
EventTime = Annotated[AwareDatetime, BeforeValidator(_not_a_number)]


class _EventBase(BaseModel):
    model_config = _MODEL_CONFIG

    event_id: Identifier
    occurred_at: EventTime
    patient: PatientRef


class Prescription(_EventBase):
    """A medication-order event.

    ``modify`` replaces the order with the same ``order_id``; ``discontinue`` ends it;
    ``entered_in_error`` retracts it as if it never existed. ``dose``/``dose_unit`` with
    ``frequency_per_day`` give the daily dose; a rate unit (mg/h, mcg/h) is a continuous
    dose and needs no frequency; ``strength``/``strength_unit`` turn tablets, patches or
    mL into mg. ``dose_max`` and ``max_frequency_per_day`` (optional extensions) carry
    dose ranges and "up to N times a day" so PRN orders count at their maximum.
    """

    model_config = ConfigDict(
        **_MODEL_CONFIG,
        json_schema_extra={
            # The conditional requirements the model validator enforces, for other languages.
            "allOf": [
                {
                    "if": {"properties": {"action": {"enum": ["new", "modify"]}}, "required": ["action"]},
                    "then": {"required": ["dose", "dose_unit"]},
                },
                {
                    "if": {
                        "properties": {"action": {"enum": ["new", "modify"]}},
                        "required": ["action"],
                        "not": {
                            "anyOf": [
                                {"properties": {"one_time": {"const": True}}, "required": ["one_time"]},
                                {"properties": {"dose_unit": {"pattern": _ecma_case_insensitive(RATE_UNIT_PATTERN)}},
                                 "required": ["dose_unit"]},
                            ]
                        },
                    },
                    "then": {"required": ["frequency_per_day"]},
                },
            ]
        },
    )

    type: Literal["prescription"] = "prescription"
    order_id: Identifier
    action: OrderAction
    drug: ShortText
    rxnorm: Annotated[str, Field(max_length=32)] | None = None
    ndc: Annotated[str, Field(max_length=32)] | None = None
    route: Annotated[str, Field(max_length=64)] | None = None
    dose: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    dose_max: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    dose_unit: Annotated[str, Field(min_length=1, max_length=32)] | None = None
    strength: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    strength_unit: Annotated[str, Field(min_length=1, max_length=32)] | None = None
    frequency_per_day: Annotated[float, Field(gt=0, le=1440, allow_inf_nan=False)] | None = None
    max_frequency_per_day: Annotated[float, Field(gt=0, le=1440, allow_inf_nan=False)] | None = None
    prn: StrictBool = False
    one_time: StrictBool = False
    end_at: EventTime | None = None
    indication: Annotated[str, Field(max_length=256)] | None = None

    @model_validator(mode="after")
    def _dose_required_for_active_orders(self) -> "Prescription":
        if self.action in (OrderAction.NEW, OrderAction.MODIFY):
            missing = [name for name in ("dose", "dose_unit") if getattr(self, name) is None]
            if self.frequency_per_day is None and not (self.is_continuous or self.one_time):
                missing.append("frequency_per_day")
            if missing:
                raise PydanticCustomError(
                    "missing_conditional",
                    "{fields} required when action is {action}",
                    {"fields": ", ".join(missing), "action": self.action.value},
                )
        if self.dose_max is not None and self.dose is not None and self.dose_max < self.dose:
            raise PydanticCustomError("dose_range", "dose_max is below dose")
        return self

    @property
    def is_continuous(self) -> bool:
        """A rate dose (infusion or patch) rather than discrete administrations."""
        return is_rate_unit(self.dose_unit)


class PainScore(_EventBase):
    """A charted pain-intensity score (0–10 numeric rating scale)."""

    type: Literal["pain_score"] = "pain_score"
    score: Annotated[StrictInt, Field(ge=0, le=10)]
    body_site: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    allodynia: StrictBool | None = None


class PatientUpdate(_EventBase):
    """Admission, transfer, discharge and problem-list facts about a patient."""

    type: Literal["patient_update"] = "patient_update"
    disease_progression: StrictBool | None = None
    comfort_care: StrictBool | None = None
    discharged: StrictBool | None = None


InterventionCode = Enum("InterventionCode", {code: code for code in INTERVENTIONS}, type=str)  # type: ignore[misc]
InterventionCode.__doc__ = "What the pharmacist did (monitor.actions.INTERVENTIONS)."


class AlertAction(_EventBase):
    """A pharmacist's action on an alert, from the queue (the alert-actions topic).

    Unlike the clinical events it carries no event time of the patient's timeline:
    ``occurred_at`` is when the pharmacist acted (the audit record's wall-clock "when").
    The engine therefore never holds it for the watermark nor lets it move event time; it
    applies it on arrival at the patient's event-time clock, so a snooze of
    ``snooze_for`` lasts until that clock plus ``snooze_for`` (see monitor.clinical.actions).
    """

    model_config = ConfigDict(
        **_MODEL_CONFIG,
        json_schema_extra={
            "allOf": [
                {"if": {"properties": {"action": {"const": "acknowledge"}}, "required": ["action"]},
                 "then": {"required": ["intervention"]}},
                {"if": {"properties": {"action": {"const": "snooze"}}, "required": ["action"]},
                 "then": {"required": ["snooze_for"]}},
            ]
        },
    )

    type: Literal["alert_action"] = "alert_action"
    action: ActionKind
    alert_id: Identifier
    kind: AlertKind
    user: Identifier = Field(description="The authenticated user who acted.")
    revision: Annotated[StrictInt, Field(ge=1)] | None = Field(
        None, description="The alert revision the pharmacist saw when acting (audit).")
    intervention: InterventionCode | None = Field(None, description="acknowledge: what was done.")
    note: Annotated[str, Field(max_length=500)] | None = Field(None, description="Free-text note (audit only).")
    snooze_for: timedelta | None = Field(None, description="snooze: how long, in the patient's event time.")

    @model_validator(mode="after")
    def _fields_of_the_action(self) -> "AlertAction":
        if self.action is ActionKind.ACKNOWLEDGE and self.intervention is None:
            raise PydanticCustomError("missing_conditional", "intervention required when action is acknowledge")
        if self.action is ActionKind.SNOOZE:
            if self.snooze_for is None:
                raise PydanticCustomError("missing_conditional", "snooze_for required when action is snooze")
            if not timedelta(0) < self.snooze_for <= MAX_SNOOZE:
                raise PydanticCustomError("snooze_range", "snooze_for must be positive and at most {limit}",
                                          {"limit": str(MAX_SNOOZE)})
        return self


Event = Annotated[Union[Prescription, PainScore, PatientUpdate, AlertAction], Field(discriminator="type")]
EVENT_TYPES: dict[str, type[BaseModel]] = {
    "prescription": Prescription,
    "pain_score": PainScore,
    "patient_update": PatientUpdate,
    "alert_action": AlertAction,
}
#: The clinical events: those with an event time in the patient's timeline.
ClinicalEvent = Prescription | PainScore | PatientUpdate
AnyEvent = Prescription | PainScore | PatientUpdate | AlertAction


def event_sort_key(event: AnyEvent) -> tuple[datetime, int, str]:
    """Deterministic event-time order for one patient's events.

    Ties at the same instant are broken by kind so that context comes first, then
    stops before starts (a same-minute rotation is never counted as two opioids at
    once), then scores, then a discharge (which ends the patient's state), and finally
    by ``event_id`` so that any arrival order sorts alike.
    """
    if isinstance(event, PatientUpdate):
        rank = 4 if event.discharged else 0
    elif isinstance(event, Prescription):
        rank = 1 if event.action in (OrderAction.DISCONTINUE, OrderAction.ENTERED_IN_ERROR) else 2
    else:
        rank = 3
    return (event.occurred_at, rank, event.event_id)


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


def instant_microseconds(moment: datetime) -> int:
    """An aware datetime as exact integer microseconds since the epoch: ordered as the
    datetimes are, and far cheaper to compare (aware datetimes compare through their UTC
    offsets). ``n / 1_000_000`` is exactly ``moment.timestamp()`` (CPython computes that
    as the same integer divided by 10**6, correctly rounded)."""
    return (moment - _EPOCH) // _MICROSECOND


def event_order_key(event: AnyEvent) -> tuple[int, int, str]:
    """:func:`event_sort_key` with the event time as :func:`instant_microseconds`: the
    same order, for the engine's heap of held events."""
    occurred, rank, event_id = event_sort_key(event)
    return (instant_microseconds(occurred), rank, event_id)

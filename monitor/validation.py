"""The validation edge: raw bytes in, a typed event or a reasoned rejection out.

Nothing behind this module sees unvalidated input. It never raises on bad input: every
failure becomes a :class:`Rejection` whose ``reason`` is a short, bounded code (safe as a
metric label) and whose ``detail`` names fields and rules but never echoes input values,
since inputs carry patient data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError

from .events import EVENT_TYPES, AnyEvent, Event

#: Default upper bound on one record; larger ones are rejected unread.
DEFAULT_MAX_BYTES = 64 * 1024

#: Every reason code this module can produce (bounded: used as a metric label).
REASONS = (
    "oversized",
    "not_utf8",
    "invalid_json",
    "not_an_object",
    "unknown_type",
    "missing_field",
    "wrong_type",
    "invalid_value",
    "wrong_topic",
)

EVENT_ADAPTER: TypeAdapter[AnyEvent] = TypeAdapter(Event)

_MISSING_TYPES = frozenset({"missing", "missing_conditional", "union_tag_not_found"})
_VALUE_TYPES_PREFIXES = (
    "greater_than",
    "less_than",
    "too_short",
    "too_long",
    "string_too",
    "literal_error",
    "enum",
    "value_error",
    "dose_range",
    "snooze_range",
    "finite_number",
    "timezone_aware",
    "datetime_from_date_parsing",
    "date_from_datetime_parsing",
    "datetime_parsing",
    "date_parsing",
)


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why an input was refused: ``reason`` is a code from :data:`REASONS`."""

    reason: str
    detail: str

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}"


def decode_event(raw: bytes | str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> AnyEvent | Rejection:
    """Validate one serialized canonical event. Never raises for bad input."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", errors="surrogatepass")
    if len(raw) > max_bytes:
        return Rejection("oversized", f"record of {len(raw)} bytes exceeds the limit of {max_bytes}")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Rejection("not_utf8", f"invalid UTF-8 at byte {exc.start}")
    try:
        return EVENT_ADAPTER.validate_json(raw)
    except ValidationError as exc:
        return rejection_from_errors(exc.errors(include_input=False, include_url=False))
    except (RecursionError, ValueError):  # pragma: no cover - defensive: pydantic wraps these
        return Rejection("invalid_json", "record could not be parsed")


def validate_event_object(obj: Any) -> AnyEvent | Rejection:
    """Validate an already-parsed object (as the FHIR adapter produces). Never raises."""
    if not isinstance(obj, dict):
        return Rejection("not_an_object", "an event must be a JSON object")
    try:
        return EVENT_ADAPTER.validate_python(obj)
    except ValidationError as exc:
        return rejection_from_errors(exc.errors(include_input=False, include_url=False))


def rejection_from_errors(errors: list[Any]) -> Rejection:
    """Turn pydantic errors into a reason code and a detail that holds no input values."""
    first = errors[0] if errors else {"type": "value_error", "loc": ()}
    error_type = str(first.get("type", ""))
    loc = [str(part) for part in first.get("loc", ())]
    if error_type == "json_invalid":
        return Rejection("invalid_json", "record is not valid JSON")
    if error_type in ("model_attributes_type", "dict_type", "model_type") and not loc:
        return Rejection("not_an_object", "an event must be a JSON object")
    if error_type == "union_tag_invalid":
        return Rejection("unknown_type", "field 'type' is not one of prescription, pain_score, patient_update, alert_action")
    if error_type == "union_tag_not_found":
        return Rejection("missing_field", "field 'type' is required")
    # A discriminated union prefixes the location with the tag: drop it.
    if loc and loc[0] in EVENT_TYPES:
        loc = loc[1:]
    where = ".".join(loc) or "event"
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    if error_type == "missing_conditional":
        return Rejection("missing_field", f"{_safe_message(first)}{more}")
    if error_type in _MISSING_TYPES:
        return Rejection("missing_field", f"{where}: field required{more}")
    if error_type == "value_error":
        # Our own validators' messages name fields only, never values.
        message = str(first.get("ctx", {}).get("error", "invalid value"))
        return Rejection("invalid_value", f"{where}: {message}{more}")
    message = _safe_message(first)
    if error_type.startswith(_VALUE_TYPES_PREFIXES):
        return Rejection("invalid_value", f"{where}: {message}{more}")
    return Rejection("wrong_type", f"{where}: {message}{more}")


def _safe_message(error: Any) -> str:
    """pydantic's message for rule violations states the rule (limits, expected values),
    not the input; ``hide_input_in_errors`` and ``include_input=False`` keep values out."""
    return str(error.get("msg", error.get("type", "invalid")))

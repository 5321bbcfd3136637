"""HL7 v2 → canonical events: pharmacy orders, pain scores and ADT, as hospitals send them.

Pure: message bytes in, an :class:`Hl7Result` out (the canonical events, or one reasoned
:class:`Hl7Rejection`), no I/O and no Kafka. The MLLP gateway (``monitor.gateway``) is a
thin shell around :func:`Hl7Mapper.map`. Parsing is the ``hl7`` library's (python-hl7);
this module only decides what the fields mean. It never raises for any input, and no
rejection detail carries a value from the message (patient ids, drug names, doses): the
details name segments and fields (``PID-3``, ``RXE-5``) and rules.

A message maps all or nothing: one bad order in an ``RDE^O11`` rejects the message, so
an interface engine's resend after a fix never half-duplicates it.

Mapping (also in the README's "HL7 v2 gateway" section):

=====================  ===================================================================
HL7 v2                 canonical
=====================  ===================================================================
event_id               ``hl7:<MSH-3>:<MSH-4>:<MSH-10>:<n>``: sending application and
                       facility (whole fields, percent-encoded so ``:`` cannot collide),
                       control id, and n = the order group (ORC) or OBX position in the
                       message (1 for ADT); over 128 characters → ``hl7:sha256:<digest>``
patient.id             PID-3: the repetition with identifier type (CX-5) ``MR``, else the
                       first; its CX-1 only (the assigning authority is not part of the id,
                       so JSON/FHIR feeds of the same MRN meet the same patient)
patient.birth_date     PID-7 (YYYYMMDD...; a year or month alone is left out)
patient.unit           PV1-3 point of care (PL-1); ``monitored`` is left to the monitor,
                       which derives it from the unit (care-units data)
RDE^O11 / OMP^O09      one ``prescription`` per ORC group; the give segment is RXE (RDE),
                       else RXO (OMP)
action                 ORC-1 (table 0119 via ``hl7_v2.json``): NW new; XO, RP modify;
                       DC, OD, CA, OC discontinue; others rejected
order_id               ORC-2 placer order number (EI-1, ``^``EI-2 namespace when given),
                       else ORC-3 filler order number
occurred_at            ORC-9, else MSH-7
drug, rxnorm, ndc      RXE-2 / RXO-1 (CE): text, else alternate text, else identifier;
                       the identifier is ``rxnorm`` when CE-3 is RXNORM (digits), ``ndc``
                       when NDC (alternate triplet likewise)
dose, dose_unit        RXE-23/24 (RXO-21/22) give rate when present (a continuous dose);
                       else RXE-3 (RXO-2) give amount minimum, RXE-4 (RXO-3) maximum →
                       ``dose_max``, RXE-5 (RXO-4) units (CE-1, else CE-2)
strength               RXE-25/26 (RXO-18/19) give strength and units
frequency              TQ1-3 repeat pattern, else RXE-1.2 / ORC-7.2 (TQ interval): table
                       0335 codes (Q6H, BID, Q4-6H, 3ID, Q72H, QAM...); ONCE/STAT/NOW →
                       one_time; TQ1-14 total occurrences 1 → one_time
prn                    TQ1-9 priority PRN, RXE-1.6 / ORC-7.6 PRN, or a PRN repeat pattern
end_at                 TQ1-8, else RXE-1.5 / ORC-7.5
route                  RXR-1 (table 0162 → oral, iv, sc, transdermal...); without RXR the
                       dosage form (RXE-6 / RXO-5: TAB → oral, PATCH → transdermal)
indication             RXE-27 / RXO-20 text
ORU^R01                one ``pain_score`` per OBX with OBX-3 LOINC 72514-3 (CE-1/CE-3 or
                       the alternate triplet); other OBX are skipped
score                  OBX-5: an integer 0–10 (``7.0`` is 7), else rejected
status                 OBX-11 F/C/P/R/U/S/A or empty mapped; W, D, X, N, I, O skipped
occurred_at            OBX-14, else OBR-7 of its OBR, else MSH-7
body_site              OBX-20 (CWE-2 text, else CWE-1)
ADT^A01/A02/A08        one ``patient_update`` with birth date and unit
ADT^A03                ``discharged: true`` (not for patient class PV1-2 ``E``: an
                       emergency visit often ends by admission)
occurred_at            EVN-6 event occurred, else EVN-2 recorded, else MSH-7
times                  HL7 DTM to the minute at least; without an offset the
                       ``HL7_TIMEZONE`` setting's zone (default UTC)
=====================  ===================================================================
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from typing import Any
from urllib.parse import quote

import hl7
import hl7.util

from .events import AnyEvent, is_rate_unit
from .knowledge.catalogue import DATA_DIR
from .validation import Rejection, validate_event_object

__all__ = [
    "HL7_TABLES_PATH",
    "Hl7Header",
    "Hl7Mapper",
    "Hl7Rejection",
    "Hl7Result",
    "MESSAGE_TYPES",
    "REJECTIONS",
    "build_ack",
]

HL7_TABLES_PATH = DATA_DIR / "hl7_v2.json"

# python-hl7 logs a field's value at WARNING when it meets a bad escape sequence (its
# logger is named after its file): message values are patient data, so only errors pass.
logging.getLogger(hl7.util.__file__).setLevel(logging.ERROR)

#: The message types the gateway maps (bounded: a metric label; anything else is ``other``).
MESSAGE_TYPES = ("RDE^O11", "OMP^O09", "ORU^R01", "ADT^A01", "ADT^A02", "ADT^A03", "ADT^A08")
_ORDER_TYPES = ("RDE^O11", "OMP^O09")
_ADT_TYPES = ("ADT^A01", "ADT^A02", "ADT^A03", "ADT^A08")


@dataclass(frozen=True, slots=True)
class _RejectionKind:
    ack_code: str   # HL7 table 0008: AE (content error) or AR (rejected: type/structure/transport)
    error_code: str  # HL7 table 0357, in ERR-3
    error_text: str


#: Every reason the gateway can give (bounded: a metric label), with its ACK code and
#: table 0357 error code. AE 207 means "try again" (nothing was published durably).
REJECTIONS: dict[str, _RejectionKind] = {
    "oversized": _RejectionKind("AR", "100", "Segment sequence error"),
    "invalid_frame": _RejectionKind("AR", "100", "Segment sequence error"),
    "bad_encoding": _RejectionKind("AR", "102", "Data type error"),
    "not_hl7": _RejectionKind("AR", "100", "Segment sequence error"),
    "unsupported_message": _RejectionKind("AR", "200", "Unsupported message type"),
    "unsupported_trigger": _RejectionKind("AR", "201", "Unsupported event code"),
    "unsupported_order_control": _RejectionKind("AE", "103", "Table value not found"),
    "missing_field": _RejectionKind("AE", "101", "Required field missing"),
    "wrong_type": _RejectionKind("AE", "102", "Data type error"),
    "invalid_value": _RejectionKind("AE", "102", "Data type error"),
    "control_id_reused": _RejectionKind("AR", "205", "Duplicate key identifier"),
    "publish_failed": _RejectionKind("AE", "207", "Application internal error"),
}


@dataclass(frozen=True, slots=True)
class Hl7Rejection:
    """Why a message was refused: ``reason`` is a key of :data:`REJECTIONS`; ``detail``
    names segments and fields, never values."""

    reason: str
    detail: str

    def __post_init__(self) -> None:
        if self.reason not in REJECTIONS:
            raise ValueError(f"unknown rejection reason {self.reason!r}")

    @property
    def ack_code(self) -> str:
        return REJECTIONS[self.reason].ack_code

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}"


@dataclass(frozen=True, slots=True)
class Hl7Header:
    """What the gateway needs from MSH (none of it patient data)."""

    sending_application: str  # MSH-3 as sent (escaped field text)
    sending_facility: str     # MSH-4
    control_id: str           # MSH-10
    message_type: str         # MSH-9 as CODE^TRIGGER

    @property
    def sender(self) -> str:
        """One sender: application and facility together (two hospitals' PHARM differ)."""
        return f"{self.sending_application}|{self.sending_facility}"


@dataclass(frozen=True, slots=True)
class Hl7Result:
    """One message's outcome: events (possibly none: an ORU without a pain score) or a
    rejection. ``message`` is the parsed message (for the ACK) when MSH could be read."""

    events: tuple[AnyEvent, ...] = ()
    rejection: Hl7Rejection | None = None
    header: Hl7Header | None = None
    message: Any = None
    #: sha256 of the segments after MSH: a resend carries the same, a reused control id not.
    content_digest: str = ""

    @property
    def message_type_label(self) -> str:
        """A bounded label: one of :data:`MESSAGE_TYPES`, else ``other``."""
        kind = self.header.message_type if self.header else ""
        return kind if kind in MESSAGE_TYPES else "other"


class _Reject(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.rejection = Hl7Rejection(reason, detail)


# --- the tables -------------------------------------------------------------------------


@dataclass(frozen=True)
class Hl7Tables:
    """``hl7_v2.json``: code tables, data not code."""

    order_control: dict[str, str]
    repeat_patterns: dict[str, float]
    one_time_patterns: frozenset[str]
    continuous_patterns: frozenset[str]
    prn_codes: frozenset[str]
    routes: dict[str, str]
    dosage_form_routes: dict[str, str]
    unit_aliases: dict[str, str]
    rxnorm_systems: frozenset[str]
    ndc_systems: frozenset[str]
    loinc_systems: frozenset[str]
    pain_loinc: str
    mapped_result_statuses: frozenset[str]
    patient_classes_without_discharge: frozenset[str]

    @classmethod
    def load(cls, path: str | None = None) -> "Hl7Tables":
        with open(path or HL7_TABLES_PATH, encoding="utf-8") as handle:
            data = json.load(handle)

        def table(name: str) -> dict[str, Any]:
            return {k: v for k, v in data[name].items() if not k.startswith("_")}

        def codes(name: str) -> frozenset[str]:
            return frozenset(str(code).upper() for code in data[name])

        return cls(
            order_control=table("order_control"),
            repeat_patterns={k: float(v) for k, v in table("repeat_patterns").items()},
            one_time_patterns=codes("one_time_patterns"),
            continuous_patterns=codes("continuous_patterns"),
            prn_codes=codes("prn_codes"),
            routes=table("routes"),
            dosage_form_routes=table("dosage_form_routes"),
            unit_aliases={k.lower(): v for k, v in table("unit_aliases").items()},
            rxnorm_systems=codes("rxnorm_systems"),
            ndc_systems=codes("ndc_systems"),
            loinc_systems=codes("loinc_systems"),
            pain_loinc=data["pain_loinc"],
            mapped_result_statuses=codes("mapped_result_statuses"),
            patient_classes_without_discharge=codes("patient_classes_without_discharge"),
        )


@lru_cache(maxsize=1)
def _default_tables() -> Hl7Tables:
    return Hl7Tables.load()


# --- field access -----------------------------------------------------------------------


def _value(segment: Any, field_num: int, component: int = 1, repetition: int = 1, sub: int = 1) -> str:
    """One unescaped leaf (``""`` when absent); python-hl7's accessor raises on short paths."""
    try:
        if field_num >= len(segment):
            return ""
        return str(segment.extract_field(1, field_num, repetition, component, sub)).strip()
    except (IndexError, KeyError, TypeError, ValueError, AttributeError):
        return ""


def _raw_field(segment: Any, field_num: int) -> str:
    """A whole field as sent (escaped), e.g. an HD ``PHARM^1.2.3^ISO``."""
    try:
        return str(segment(field_num)).strip() if field_num < len(segment) else ""
    except (IndexError, TypeError, ValueError):
        return ""


def _repetitions(segment: Any, field_num: int) -> int:
    try:
        value = segment(field_num) if field_num < len(segment) else None
    except (IndexError, TypeError, ValueError):
        return 0
    if value is None:
        return 0
    return len(value) if isinstance(value, hl7.Field) else 1


def _segment_id(segment: Any) -> str:
    try:
        return str(segment[0]).strip()
    except (IndexError, TypeError):
        return ""


@dataclass(frozen=True, slots=True)
class _Coded:
    """A CE/CWE: identifier, text, coding system and the alternate triplet."""

    code: str
    text: str
    system: str
    alt_code: str
    alt_text: str
    alt_system: str

    @classmethod
    def read(cls, segment: Any, field_num: int, repetition: int = 1) -> "_Coded":
        parts = [_value(segment, field_num, c, repetition) for c in range(1, 7)]
        return cls(*parts)

    @property
    def label(self) -> str:
        """Text, else alternate text, else identifier, else alternate identifier."""
        return self.text or self.alt_text or self.code or self.alt_code

    def code_in(self, systems: frozenset[str]) -> str | None:
        if self.code and self.system.upper() in systems:
            return self.code
        if self.alt_code and self.alt_system.upper() in systems:
            return self.alt_code
        return None


# --- times ------------------------------------------------------------------------------

_DTM_RE = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,4}))?([+-]\d{4})?$")


def _datetime(text: str, where: str, zone: tzinfo) -> datetime:
    """An HL7 DTM/TS with at least minutes; no offset → ``zone``."""
    match = _DTM_RE.match(text.split("^", 1)[0])
    if match is None:
        raise _Reject("invalid_value", f"{where}: not an HL7 date/time (YYYYMMDDHHMM[SS][+/-ZZZZ])")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    if minute is None:
        raise _Reject("invalid_value", f"{where}: a date/time to the minute is required")
    try:
        if offset:
            sign = -1 if offset[0] == "-" else 1
            hours, minutes = int(offset[1:3]), int(offset[3:5])
            if hours > 14 or minutes > 59:
                raise ValueError
            tz: tzinfo = timezone(sign * timedelta(hours=hours, minutes=minutes))
        else:
            tz = zone
        micro = int((fraction or "0").ljust(6, "0"))
        instant = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0), micro,
                           tzinfo=tz)
        instant.astimezone(timezone.utc)  # event time works in UTC: must be representable
        return instant
    except (ValueError, OverflowError):
        raise _Reject("invalid_value", f"{where}: not a valid date and time") from None


def _first_time(candidates: list[tuple[str, str]], zone: tzinfo) -> datetime:
    """The first non-empty (where, text) as a date/time; the last is MSH-7, always checked."""
    for where, text in candidates:
        if text:
            return _datetime(text, where, zone)
    raise _Reject("missing_field", f"{candidates[-1][0]}: a message date/time is required")


def _birth_date(pid: Any) -> date | None:
    text = _value(pid, 7)
    if not text:
        return None
    match = _DTM_RE.match(text)
    if match is None:
        raise _Reject("invalid_value", "PID-7: not an HL7 date")
    year, month, day = match.group(1), match.group(2), match.group(3)
    if day is None:
        return None  # a year or year-month only: age unknown rather than guessed
    try:
        return date(int(year), int(month), int(day))
    except ValueError:
        raise _Reject("invalid_value", "PID-7: not a valid date") from None


# --- numbers, units, timing -------------------------------------------------------------

_NUMBER_RE = re.compile(r"^[+]?(\d+(?:\.\d*)?|\.\d+)$")


def _number(text: str, where: str) -> float | None:
    if not text:
        return None
    if not _NUMBER_RE.match(text):
        raise _Reject("invalid_value", f"{where}: must be a positive number")
    number = float(text)
    if not math.isfinite(number) or number <= 0:
        raise _Reject("invalid_value", f"{where}: must be a positive number")
    return number


@dataclass(frozen=True, slots=True)
class _Schedule:
    """What a repeat pattern says: administrations per day (a range: the slower and the
    faster rate), a single dose, or a continuous administration; and whether as needed."""

    per_day: float | None = None
    max_per_day: float | None = None
    one_time: bool = False
    continuous: bool = False
    prn: bool = False


_Q_INTERVAL_RE = re.compile(r"^Q(\d+(?:\.\d+)?)(?:-(\d+(?:\.\d+)?))?([SMHDWL])$")
_TIMES_A_DAY_RE = re.compile(r"^(\d+)ID$")
_WEEKDAY_RE = re.compile(r"^Q(\d+)J\d+$")
_PER_DAY = {"S": 86400.0, "M": 1440.0, "H": 24.0, "D": 1.0, "W": 1 / 7, "L": 1 / 30}


def _repeat_pattern(text: str, tables: Hl7Tables) -> _Schedule | None:
    """A table 0335 repeat pattern (``Q6H``, ``Q4-6H PRN``, ``PRNQ6H``, ``BID``, ``3ID``);
    ``None`` when it is not one the gateway knows."""
    code = re.sub(r"[\s.]", "", text.upper())
    prn = next((p for p in tables.prn_codes if code.startswith(p) or code.endswith(p)), None)
    if prn is not None:
        code = code[len(prn):] if code.startswith(prn) else code[: -len(prn)]
    as_needed = prn is not None
    if not code:
        return _Schedule(prn=True) if as_needed else None
    if code in tables.repeat_patterns:
        return _Schedule(tables.repeat_patterns[code], prn=as_needed)
    if code in tables.one_time_patterns:
        return _Schedule(one_time=True, prn=as_needed)
    if code in tables.continuous_patterns:
        return _Schedule(continuous=True, prn=as_needed)
    if match := _Q_INTERVAL_RE.match(code):
        low, high = float(match.group(1)), float(match.group(2)) if match.group(2) else None
        per_day = _PER_DAY[match.group(3)]
        if low <= 0 or (high is not None and high < low):
            return None
        if high is not None:
            return _Schedule(round(per_day / high, 9), round(per_day / low, 9), prn=as_needed)
        return _Schedule(round(per_day / low, 9), prn=as_needed)
    if (match := _TIMES_A_DAY_RE.match(code)) and int(match.group(1)):
        return _Schedule(float(match.group(1)), prn=as_needed)
    if (match := _WEEKDAY_RE.match(code)) and int(match.group(1)):
        return _Schedule(round(1 / (7 * int(match.group(1))), 9), prn=as_needed)
    return None


def _unit(coded: _Coded, tables: Hl7Tables) -> str | None:
    unit = coded.code or coded.text
    if not unit:
        return None
    return tables.unit_aliases.get(unit.lower(), unit)


# --- identifiers --------------------------------------------------------------------------


def _id_part(text: str) -> str:
    """Percent-encode everything but letters, digits and ``.-_^&~``: ``:`` and ``%`` never
    stand for themselves, so ``A:B`` + ``C`` and ``A`` + ``B:C`` give different ids."""
    return quote(text, safe=".-_^&~")


def _event_id(header: Hl7Header, index: int) -> str:
    event_id = (f"hl7:{_id_part(header.sending_application)}:{_id_part(header.sending_facility)}:"
                f"{_id_part(header.control_id)}:{index}")
    if len(event_id) > 128:
        event_id = f"hl7:sha256:{hashlib.sha256(event_id.encode()).hexdigest()}"
    return event_id


# --- the mapper ---------------------------------------------------------------------------


@dataclass(slots=True)
class _OrderGroup:
    orc: Any
    give: Any = None            # RXE, else RXO
    give_is_rxe: bool = False
    timing: list[Any] = field(default_factory=list)  # TQ1
    routes: list[Any] = field(default_factory=list)  # RXR


@dataclass(frozen=True, slots=True)
class _GiveLayout:
    """Where a give segment keeps each part (RXE and RXO number them differently)."""

    name: str
    code: int
    amount: int
    amount_max: int
    units: int
    form: int
    strength: int
    strength_units: int
    rate: int
    rate_units: int
    indication: int


_RXE = _GiveLayout("RXE", code=2, amount=3, amount_max=4, units=5, form=6, strength=25, strength_units=26,
                   rate=23, rate_units=24, indication=27)
_RXO = _GiveLayout("RXO", code=1, amount=2, amount_max=3, units=4, form=5, strength=18, strength_units=19,
                   rate=21, rate_units=22, indication=20)

#: Drug text of a discontinue that names no drug (the monitor ends the order by order_id).
DISCONTINUED_WITHOUT_DRUG = "unspecified (discontinued order)"


class Hl7Mapper:
    """Maps HL7 v2 messages to canonical events. Stateless between messages: every
    message carries its own patient, order and time."""

    def __init__(self, zone: tzinfo = timezone.utc, max_bytes: int = 1024 * 1024,
                 tables: Hl7Tables | None = None) -> None:
        self.zone = zone
        self.max_bytes = max_bytes
        self.tables = tables or _default_tables()

    def map(self, raw: bytes | str) -> Hl7Result:
        """Map one message (the MLLP block without its framing). Never raises."""
        header: Hl7Header | None = None
        message: Any = None
        digest = ""
        try:
            text = self._decode(raw)
            message = self._parse(text)
            header = self._header(message)
            digest = hashlib.sha256(text.strip().split("\r", 1)[-1].encode("utf-8", "surrogatepass")).hexdigest()
            events = self._events(message, header)
            return Hl7Result(events=tuple(events), header=header, message=message, content_digest=digest)
        except _Reject as exc:
            return Hl7Result(rejection=exc.rejection, header=header, message=message, content_digest=digest)
        except Exception:  # defensive: a message shape nobody foresaw is a rejection, not a crash
            return Hl7Result(rejection=Hl7Rejection("invalid_value", "message could not be mapped"),
                             header=header, message=message, content_digest=digest)

    # parsing ------------------------------------------------------------------------------

    def _decode(self, raw: bytes | str) -> str:
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogatepass")
        if len(raw) > self.max_bytes:
            raise _Reject("oversized", f"message of {len(raw)} bytes exceeds the limit of {self.max_bytes}")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            pass
        first_segment = raw.split(b"\r", 1)[0]
        if b"8859/1" in first_segment:  # MSH-18 character set ISO 8859-1
            return raw.decode("latin-1")
        raise _Reject("bad_encoding", "not UTF-8, and MSH-18 does not declare 8859/1")

    @staticmethod
    def _parse(text: str) -> Any:
        text = text.replace("\r\n", "\r").replace("\n", "\r").strip()
        if not text.startswith("MSH") or len(text) < 8 or text[3].isalnum() or text[3].isspace():
            raise _Reject("not_hl7", "the message must start with an MSH segment")
        try:
            message = hl7.parse(text)
        except Exception:
            raise _Reject("not_hl7", "the message could not be parsed as HL7 v2") from None
        if not isinstance(message, hl7.Message):
            raise _Reject("not_hl7", "the message could not be parsed as HL7 v2")
        return message

    @staticmethod
    def _header(message: Any) -> Hl7Header:
        msh = message[0]
        kind = f"{_value(msh, 9, 1).upper()}^{_value(msh, 9, 2).upper()}"
        header = Hl7Header(_raw_field(msh, 3), _raw_field(msh, 4), _value(msh, 10), kind)
        if not header.control_id:
            raise _Reject("missing_field", "MSH-10: message control id required")
        if not (header.sending_application or header.sending_facility):
            raise _Reject("missing_field", "MSH-3/MSH-4: a sending application or facility is required")
        return header

    def _events(self, message: Any, header: Hl7Header) -> list[AnyEvent]:
        code, trigger = header.message_type.split("^", 1)
        if header.message_type in _ORDER_TYPES:
            return self._orders(message, header)
        if header.message_type == "ORU^R01":
            return self._pain_scores(message, header)
        if header.message_type in _ADT_TYPES:
            return [self._adt(message, header, trigger)]
        if code in ("RDE", "OMP", "ORU", "ADT"):
            raise _Reject("unsupported_trigger", f"MSH-9: trigger event not mapped for {code}")
        raise _Reject("unsupported_message", "MSH-9: message type not mapped (RDE^O11, OMP^O09, ORU^R01, "
                                             "ADT^A01/A02/A03/A08)")

    # context ----------------------------------------------------------------------------

    def _patient(self, message: Any) -> dict[str, Any]:
        pid = _first(message, "PID")
        if pid is None:
            raise _Reject("missing_field", "PID: segment required")
        chosen = ""
        for repetition in range(1, _repetitions(pid, 3) + 1):
            identifier = _value(pid, 3, 1, repetition)
            if identifier and not chosen:
                chosen = identifier
            if identifier and _value(pid, 3, 5, repetition).upper() == "MR":
                chosen = identifier
                break
        if not chosen:
            raise _Reject("missing_field", "PID-3: patient identifier required")
        patient: dict[str, Any] = {"id": chosen}
        birth = _birth_date(pid)
        if birth is not None:
            patient["birth_date"] = birth.isoformat()
        pv1 = _first(message, "PV1")
        unit = _value(pv1, 3, 1) if pv1 is not None else ""
        if unit:
            patient["unit"] = unit
        return patient

    def _validated(self, event: dict[str, Any], where: str) -> AnyEvent:
        result = validate_event_object(event)
        if isinstance(result, Rejection):
            raise _Reject(result.reason if result.reason in REJECTIONS else "invalid_value",
                          f"{where} as {event['type']}: {result.detail}")
        return result

    # orders -----------------------------------------------------------------------------

    def _orders(self, message: Any, header: Hl7Header) -> list[AnyEvent]:
        patient = self._patient(message)
        groups = _order_groups(message)
        if not groups:
            raise _Reject("missing_field", "ORC: at least one order group required")
        msh_time = _value(message[0], 7)
        events = []
        for index, group in enumerate(groups, start=1):
            event = self._order(group, index, header, patient, msh_time)
            events.append(self._validated(event, f"ORC[{index}]"))
        return events

    def _order(self, group: _OrderGroup, index: int, header: Hl7Header, patient: dict[str, Any],
               msh_time: str) -> dict[str, Any]:
        where = f"ORC[{index}]"
        control = _value(group.orc, 1).upper()
        if not control:
            raise _Reject("missing_field", f"{where} ORC-1: order control required")
        action = self.tables.order_control.get(control)
        if action is None:
            raise _Reject("unsupported_order_control", f"{where} ORC-1: order control code not mapped "
                                                       f"({', '.join(self.tables.order_control)})")
        order_id = _entity_id(group.orc, 2) or _entity_id(group.orc, 3)
        if not order_id:
            raise _Reject("missing_field", f"{where} ORC-2/ORC-3: placer or filler order number required")
        occurred = _first_time([(f"{where} ORC-9", _value(group.orc, 9)), ("MSH-7", msh_time)], self.zone)
        event: dict[str, Any] = {
            "type": "prescription", "event_id": _event_id(header, index), "occurred_at": occurred,
            "patient": patient, "order_id": order_id, "action": action,
        }
        if group.give is None:
            if action != "discontinue":
                raise _Reject("missing_field", f"{where}: an RXE (or RXO) segment is required for a new or "
                                               "changed order")
            event["drug"] = DISCONTINUED_WITHOUT_DRUG
            return event
        layout = _RXE if group.give_is_rxe else _RXO
        self._drug(event, group.give, layout, where)
        if action == "discontinue":
            return event
        self._dose(event, group, layout, where)
        self._timing(event, group, layout, where)
        route = self._route(group, layout)
        if route:
            event["route"] = route
        indication = _Coded.read(group.give, layout.indication).label
        if indication:
            event["indication"] = indication[:256]
        return event

    def _drug(self, event: dict[str, Any], give: Any, layout: _GiveLayout, where: str) -> None:
        coded = _Coded.read(give, layout.code)
        if not coded.label:
            raise _Reject("missing_field", f"{where} {layout.name}-{layout.code}: give code required")
        event["drug"] = coded.label[:256]
        rxnorm = coded.code_in(self.tables.rxnorm_systems)
        if rxnorm and rxnorm.isdigit() and len(rxnorm) <= 12:
            event["rxnorm"] = rxnorm
        ndc = coded.code_in(self.tables.ndc_systems)
        if ndc and re.fullmatch(r"[0-9-]{1,32}", ndc):
            event["ndc"] = ndc

    def _dose(self, event: dict[str, Any], group: _OrderGroup, layout: _GiveLayout, where: str) -> None:
        give, name = group.give, layout.name
        rate = _number(_value(give, layout.rate), f"{where} {name}-{layout.rate}")
        rate_units = _unit(_Coded.read(give, layout.rate_units), self.tables)
        strength = _number(_value(give, layout.strength), f"{where} {name}-{layout.strength}")
        strength_units = _unit(_Coded.read(give, layout.strength_units), self.tables)
        if rate is not None:
            if not rate_units:
                raise _Reject("missing_field", f"{where} {name}-{layout.rate_units}: rate units required with a rate")
            if not is_rate_unit(rate_units):
                raise _Reject("invalid_value", f"{where} {name}-{layout.rate_units}: rate units must be per hour "
                                               "or per minute")
            event["dose"], event["dose_unit"] = rate, rate_units
        else:
            amount = _number(_value(give, layout.amount), f"{where} {name}-{layout.amount}")
            amount_max = _number(_value(give, layout.amount_max), f"{where} {name}-{layout.amount_max}")
            if amount is None:
                raise _Reject("missing_field", f"{where} {name}-{layout.amount}: give amount required")
            units = _unit(_Coded.read(give, layout.units), self.tables)
            if not units:
                raise _Reject("missing_field", f"{where} {name}-{layout.units}: give units required")
            event["dose"], event["dose_unit"] = amount, units
            if amount_max is not None and amount_max > amount:
                event["dose_max"] = amount_max
        if strength is not None and strength_units:
            event["strength"], event["strength_unit"] = strength, strength_units

    def _timing(self, event: dict[str, Any], group: _OrderGroup, layout: _GiveLayout, where: str) -> None:
        tq1 = group.timing[0] if group.timing else None
        # (segment, name, TQ field) in order of preference: TQ1 (v2.5+), then the TQ data
        # type of RXE-1 and ORC-7 (repeat pattern TQ.2, end TQ.5, priority TQ.6)
        legacy = [(group.give, "RXE-1", 1)] if layout is _RXE else []
        legacy.append((group.orc, "ORC-7", 7))
        patterns = [(f"{where} TQ1-3", _value(tq1, 3, 1) or _value(tq1, 3, 2))] if tq1 is not None else []
        patterns += [(f"{where} {name}.2", _value(segment, num, 2)) for segment, name, num in legacy]
        schedule = next((self._pattern(text, source) for source, text in patterns if text), _Schedule())
        priorities = [_value(tq1, 9, 1)] if tq1 is not None else []
        priorities += [_value(segment, num, 6) for segment, _, num in legacy]
        prn = schedule.prn or any(p.upper() in self.tables.prn_codes for p in priorities)
        one_time = schedule.one_time or (tq1 is not None and _value(tq1, 14) == "1")  # TQ1-14 total occurrences
        if schedule.per_day is not None and not one_time:
            event["frequency_per_day"] = schedule.per_day
            if schedule.max_per_day is not None:
                event["max_frequency_per_day"] = schedule.max_per_day
        if schedule.continuous and not is_rate_unit(event.get("dose_unit")):
            raise _Reject("invalid_value", f"{where}: a continuous order needs a give rate "
                                           f"({layout.name}-{layout.rate}/{layout.rate_units})")
        event["prn"], event["one_time"] = prn, one_time
        ends = [(f"{where} TQ1-8", _value(tq1, 8))] if tq1 is not None else []
        ends += [(f"{where} {name}.5", _value(segment, num, 5)) for segment, name, num in legacy]
        end = next(((source, text) for source, text in ends if text), None)
        if end is not None:
            event["end_at"] = _datetime(end[1], end[0], self.zone)

    def _pattern(self, text: str, source: str) -> _Schedule:
        schedule = _repeat_pattern(text, self.tables)
        if schedule is None:
            raise _Reject("invalid_value", f"{source}: repeat pattern not recognised (table 0335: Q6H, BID, "
                                           "Q4-6H, ONCE, PRN...)")
        return schedule

    def _route(self, group: _OrderGroup, layout: _GiveLayout) -> str | None:
        if group.routes:
            coded = _Coded.read(group.routes[0], 1)
            code = coded.code.upper()
            if code in self.tables.routes and coded.system.upper() in ("", "HL70162"):
                return self.tables.routes[code]
            text = coded.text or coded.code
            return text[:64] if text else None
        form = _Coded.read(group.give, layout.form)
        return self.tables.dosage_form_routes.get((form.code or form.text).upper())

    # pain scores ------------------------------------------------------------------------

    def _pain_scores(self, message: Any, header: Hl7Header) -> list[AnyEvent]:
        patient: dict[str, Any] | None = None
        msh_time = _value(message[0], 7)
        obr_time = ""
        events: list[AnyEvent] = []
        obx_index = 0
        for segment in message:
            sid = _segment_id(segment)
            if sid == "OBR":
                obr_time = _value(segment, 7)
                continue
            if sid != "OBX":
                continue
            obx_index += 1
            if not self._is_pain_score(segment):
                continue
            if patient is None:
                patient = self._patient(message)
            where = f"OBX[{obx_index}]"
            status = _value(segment, 11).upper()
            if status not in self.tables.mapped_result_statuses:
                continue  # wrong, deleted, cannot obtain, pending: nothing to chart
            occurred = _first_time([(f"{where} OBX-14", _value(segment, 14)), (f"{where} OBR-7", obr_time),
                                    ("MSH-7", msh_time)], self.zone)
            event: dict[str, Any] = {
                "type": "pain_score", "event_id": _event_id(header, obx_index), "occurred_at": occurred,
                "patient": patient, "score": _pain_value(_value(segment, 5), where),
            }
            site = _Coded.read(segment, 20)
            if site.text or site.code:
                event["body_site"] = (site.text or site.code)[:128]
            events.append(self._validated(event, where))
        return events

    def _is_pain_score(self, obx: Any) -> bool:
        coded = _Coded.read(obx, 3)
        return coded.code_in(self.tables.loinc_systems) == self.tables.pain_loinc

    # ADT --------------------------------------------------------------------------------

    def _adt(self, message: Any, header: Hl7Header, trigger: str) -> AnyEvent:
        patient = self._patient(message)
        evn = _first(message, "EVN")
        candidates = [("EVN-6", _value(evn, 6)), ("EVN-2", _value(evn, 2))] if evn is not None else []
        occurred = _first_time([*candidates, ("MSH-7", _value(message[0], 7))], self.zone)
        event: dict[str, Any] = {"type": "patient_update", "event_id": _event_id(header, 1),
                                 "occurred_at": occurred, "patient": patient}
        if trigger == "A03":
            pv1 = _first(message, "PV1")
            patient_class = _value(pv1, 2).upper() if pv1 is not None else ""
            if patient_class not in self.tables.patient_classes_without_discharge:
                event["discharged"] = True
        return self._validated(event, f"ADT^{trigger}")


def _first(message: Any, segment_id: str) -> Any:
    for segment in message:
        if _segment_id(segment) == segment_id:
            return segment
    return None


def _order_groups(message: Any) -> list[_OrderGroup]:
    """ORC starts a group; the RXE/RXO, TQ1 and RXR after it belong to it."""
    groups: list[_OrderGroup] = []
    for segment in message:
        sid = _segment_id(segment)
        if sid == "ORC":
            groups.append(_OrderGroup(orc=segment))
        elif not groups:
            continue
        elif sid == "RXE":
            groups[-1].give, groups[-1].give_is_rxe = segment, True
        elif sid == "RXO" and not groups[-1].give_is_rxe:
            groups[-1].give = segment
        elif sid == "TQ1":
            groups[-1].timing.append(segment)
        elif sid == "RXR":
            groups[-1].routes.append(segment)
    return groups


def _entity_id(segment: Any, field_num: int) -> str:
    """An EI as ``id`` or ``id^namespace`` (the namespace keeps two placers' numbers apart)."""
    identifier = _value(segment, field_num, 1)
    if not identifier:
        return ""
    namespace = _value(segment, field_num, 2)
    return f"{identifier}^{namespace}" if namespace else identifier


def _pain_value(text: str, where: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise _Reject("invalid_value", f"{where} OBX-5: a pain score must be an integer 0-10") from None
    if not math.isfinite(value) or value != int(value) or not 0 <= value <= 10:
        raise _Reject("invalid_value", f"{where} OBX-5: a pain score must be an integer 0-10")
    return int(value)


# --- acknowledgements ---------------------------------------------------------------------

#: The ACK's MSH when the incoming message had none that could be read.
_FALLBACK_MSH = "MSH|^~\\&|MEDSAFETY||||{now}||ACK|{control_id}|P|2.5"


def build_ack(result: Hl7Result, code: str, control_id: str, rejection: Hl7Rejection | None = None,
              application: str = "MEDSAFETY") -> bytes:
    """An original-mode ACK (MSH, MSA, and ERR on a rejection) built with python-hl7.

    MSA-1 is ``code``, MSA-2 echoes MSH-10; MSA-3 and ERR-8 carry the rejection detail
    (fields, never values), ERR-3 the table 0357 code and ERR-5 the gateway's reason code.
    """
    if result.message is not None:
        try:
            ack = result.message.create_ack(code, message_id=control_id, application=application)
        except Exception:  # an MSH too odd to echo: answer without it
            ack = None
    else:
        ack = None
    if ack is None:
        now = datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S")
        ack = hl7.parse(_FALLBACK_MSH.format(now=now, control_id=control_id) + f"\rMSA|{code}|")
        if result.header is not None:
            ack.segment("MSA").assign_field(ack.escape(result.header.control_id), 2)
    if rejection is not None:
        kind = REJECTIONS[rejection.reason]
        text = ack.escape(rejection.detail[:200])
        ack.segment("MSA").assign_field(ack.escape(rejection.detail[:80]), 3)
        err = ack.create_segment([ack.create_field(["ERR"])])
        err.assign_field(kind.error_code, 3, 1, 1)
        err.assign_field(ack.escape(kind.error_text), 3, 1, 2)
        err.assign_field("HL70357", 3, 1, 3)
        err.assign_field("E", 4)
        err.assign_field(rejection.reason, 5, 1, 1)
        err.assign_field("medsafety", 5, 1, 3)
        err.assign_field(text, 8)
        ack.append(err)
    return str(ack).encode("utf-8")

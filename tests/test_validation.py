"""The validation edge: every bad input becomes a reasoned rejection, never an exception,
and no rejection ever echoes an input value (inputs carry patient data)."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.events import PainScore, Prescription
from monitor.validation import REASONS, Rejection, decode_event

SECRET = "ZZSECRETMRN991"  # stands for a patient identifier; must never be echoed

VALID_RX = {
    "type": "prescription",
    "event_id": "rx-1",
    "occurred_at": "2026-03-02T08:00:00-05:00",
    "patient": {"id": SECRET, "birth_date": "1950-01-01"},
    "order_id": "ORD-1",
    "action": "new",
    "drug": "oxycodone",
    "dose": 5,
    "dose_unit": "mg",
    "frequency_per_day": 4,
}
VALID_PAIN = {
    "type": "pain_score",
    "event_id": "pain-1",
    "occurred_at": "2026-03-02T08:00:00+00:00",
    "patient": {"id": SECRET},
    "score": 6,
}


def encode(obj: object) -> bytes:
    return json.dumps(obj).encode()


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json at all", "invalid_json"),
        (b"\xff\xfe\x00", "not_utf8"),
        (b"[1, 2, 3]", "not_an_object"),
        (b"x" * 70_000, "oversized"),
        (encode({**VALID_PAIN, "type": "vital_sign"}), "unknown_type"),
        (encode({k: v for k, v in VALID_PAIN.items() if k != "type"}), "missing_field"),
        (encode({k: v for k, v in VALID_PAIN.items() if k != "event_id"}), "missing_field"),
        (encode({**VALID_PAIN, "score": 11}), "invalid_value"),
        (encode({**VALID_PAIN, "score": -1}), "invalid_value"),
        (encode({**VALID_PAIN, "score": "6"}), "wrong_type"),
        (encode({**VALID_PAIN, "score": 6.5}), "wrong_type"),
        (encode({**VALID_PAIN, "occurred_at": "2026-03-02T08:00:00"}), "invalid_value"),
        (encode({**VALID_PAIN, "occurred_at": 12.5}), "invalid_value"),  # not Unix seconds
        (encode({**VALID_PAIN, "occurred_at": 1772438400}), "invalid_value"),
        (encode({**VALID_PAIN, "patient": {"id": ""}}), "invalid_value"),
        (encode({k: v for k, v in VALID_RX.items() if k != "dose"}), "missing_field"),
        (encode({k: v for k, v in VALID_RX.items() if k != "frequency_per_day"}), "missing_field"),
        (encode({**VALID_RX, "action": "suspend"}), "invalid_value"),
        (encode({**VALID_RX, "dose": 0}), "invalid_value"),
        (encode({**VALID_RX, "dose_max": 1}), "invalid_value"),
    ],
)
def test_bad_input_gets_its_reason(raw: bytes, reason: str) -> None:
    result = decode_event(raw)
    assert isinstance(result, Rejection), result
    assert result.reason == reason, str(result)
    assert SECRET not in str(result)


def test_valid_events_decode() -> None:
    assert isinstance(decode_event(encode(VALID_RX)), Prescription)
    assert isinstance(decode_event(encode(VALID_PAIN)), PainScore)


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    assert isinstance(decode_event(encode({**VALID_PAIN, "added_by_a_newer_producer": 1})), PainScore)


def test_discontinue_needs_no_dose_and_rates_need_no_frequency() -> None:
    stop = {k: v for k, v in VALID_RX.items() if k not in ("dose", "dose_unit", "frequency_per_day")}
    assert isinstance(decode_event(encode({**stop, "action": "discontinue"})), Prescription)
    infusion = {**VALID_RX, "dose": 2, "dose_unit": "mg/h"}
    del infusion["frequency_per_day"]
    assert isinstance(decode_event(encode(infusion)), Prescription)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20) | st.just(SECRET),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    result = decode_event(raw)
    assert isinstance(result, Rejection) and result.reason in REASONS


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(base=st.sampled_from([VALID_RX, VALID_PAIN]), field=st.sampled_from(sorted(set(VALID_RX) | set(VALID_PAIN))),
       value=json_values)
def test_mutated_events_never_raise_nor_echo_values(base: dict, field: str, value: object) -> None:
    mutated = {**base, field: value}
    result = decode_event(encode(mutated))
    if isinstance(result, Rejection):
        assert result.reason in REASONS
        assert SECRET not in str(result)
        assert SECRET not in repr(result)

"""The HL7 v2 mapper (monitor/hl7v2.py) on realistic messages (tests/data/hl7/, segments
separated by \\r), every rejection reason, and a property: it never raises."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import hl7
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.events import OrderAction, PainScore, PatientUpdate, Prescription
from monitor.hl7v2 import DISCONTINUED_WITHOUT_DRUG, REJECTIONS, Hl7Mapper, Hl7Result, build_ack
from monitor.knowledge import is_monitored_unit, normalize_route

DATA = Path(__file__).parent / "data" / "hl7"
EST = timezone(timedelta(hours=-5))


def sample(name: str) -> str:
    text = (DATA / f"{name}.hl7").read_bytes().decode()  # read_text would turn \r into \n
    assert "\n" not in text and text.count("\r") >= 3, "samples separate segments with \\r only"
    return text


def mapped(name: str, mapper: Hl7Mapper | None = None) -> Hl7Result:
    result = (mapper or Hl7Mapper()).map(sample(name).encode())
    assert result.rejection is None, result.rejection
    return result


def only(result: Hl7Result):  # type: ignore[no-untyped-def]
    assert len(result.events) == 1
    return result.events[0]


def replace_segment(text: str, segment_id: str, new: str | None) -> str:
    """``text`` with the first ``segment_id`` segment replaced (or removed when None)."""
    segments = text.strip("\r").split("\r")
    index = next(i for i, s in enumerate(segments) if s.startswith(segment_id + "|"))
    if new is None:
        del segments[index]
    else:
        segments[index] = new
    return "\r".join(segments) + "\r"


# --- orders -----------------------------------------------------------------------------


def test_rde_new_oxycodone_po_q6h() -> None:
    event = only(mapped("rde_o11_oxycodone_new"))
    assert isinstance(event, Prescription)
    assert event.event_id == "hl7:PHARMSYS^1.2.840.1.5^ISO:GENHOSP:RX000101:1"
    assert event.action is OrderAction.NEW and event.order_id == "ORD-7001^CPOE"
    assert event.occurred_at == datetime(2026, 3, 2, 11, 55, tzinfo=EST)  # ORC-9, not MSH-7
    assert event.patient.id == "MRN1001"  # the MR repetition's CX-1, not the SS one
    assert event.patient.birth_date == date(1958, 3, 12) and event.patient.unit == "5W"
    assert event.patient.monitored is None  # left to the monitor's care-units data
    assert (event.drug, event.rxnorm) == ("oxycodone hydrochloride 5 MG Oral Tablet", "1049621")
    assert (event.dose, event.dose_unit, event.frequency_per_day) == (5.0, "mg", 4.0)
    assert event.route == "oral" and not event.prn and not event.one_time
    assert event.end_at == datetime(2026, 3, 9, 23, 59, tzinfo=EST)  # TQ1-8


def test_rde_change_and_discontinue_keep_the_order_id() -> None:
    change = only(mapped("rde_o11_oxycodone_change"))
    stop = only(mapped("rde_o11_oxycodone_discontinue"))
    assert change.action is OrderAction.MODIFY and stop.action is OrderAction.DISCONTINUE
    assert change.order_id == stop.order_id == "ORD-7001^CPOE"
    assert (change.dose, change.frequency_per_day) == (10.0, 6.0)  # 10 mg q4h
    assert stop.dose is None and stop.frequency_per_day is None  # a discontinue needs no dose
    assert len({change.event_id, stop.event_id}) == 2


@pytest.mark.parametrize("control, action", [("RP", "modify"), ("OD", "discontinue"), ("CA", "discontinue"),
                                             ("OC", "discontinue")])
def test_other_order_controls(control: str, action: str) -> None:
    text = sample("rde_o11_oxycodone_change").replace("ORC|XO|", f"ORC|{control}|")
    assert only(Hl7Mapper().map(text)).action.value == action


def test_discontinue_without_a_give_segment_names_no_drug() -> None:
    text = replace_segment(sample("rde_o11_oxycodone_discontinue"), "RXE", None)
    event = only(Hl7Mapper().map(text))
    assert event.action is OrderAction.DISCONTINUE and event.drug == DISCONTINUED_WITHOUT_DRUG


def test_omp_o09_uses_rxo_and_tq1_priority_prn() -> None:
    event = only(mapped("omp_o09_hydromorphone"))
    assert event.event_id == "hl7:CPOE:GENHOSP:CP55501:1" and event.action is OrderAction.NEW
    assert (event.dose, event.dose_max, event.dose_unit) == (2.0, 4.0, "mg")
    assert event.frequency_per_day == 6.0 and event.prn and event.route == "oral"
    assert event.occurred_at == datetime(2026, 3, 2, 13, 25, tzinfo=timezone.utc)  # no offset: UTC default


def test_fentanyl_patch_dose_in_patches_with_strength_per_hour() -> None:
    event = only(mapped("rde_o11_fentanyl_patch"))
    assert (event.dose, event.dose_unit, event.strength, event.strength_unit) == (1.0, "PATCH", 25.0, "MCG/HR")
    assert event.frequency_per_day == pytest.approx(1 / 3) and event.route == "transdermal"


def test_iv_infusion_takes_the_rate_as_a_continuous_dose() -> None:
    event = only(mapped("rde_o11_morphine_infusion"))
    assert (event.dose, event.dose_unit) == (2.0, "mg/h") and event.is_continuous
    assert event.frequency_per_day is None and event.route == "iv"
    assert (event.strength, event.strength_unit) == (1.0, "mg/mL")


def test_prn_range_from_the_legacy_rxe1_timing() -> None:
    event = only(mapped("rde_o11_prn_range"))
    assert (event.dose, event.dose_max) == (0.5, 1.0)
    assert (event.frequency_per_day, event.max_frequency_per_day) == (4.0, 6.0)  # q4-6h
    assert event.prn and event.route == "iv"


def test_several_orders_in_one_message_get_their_position_in_the_id() -> None:
    text = sample("rde_o11_prn_range")
    second = ("ORC|NW|ORD-9202^CPOE|||||||202603061356+0000\r"
              "RXE||6960^midazolam^RXNORM|2||mg|INJ\rTQ1|1||ONCE\rRXR|IV")
    result = Hl7Mapper().map(text + second + "\r")
    assert [e.event_id.rsplit(":", 1)[1] for e in result.events] == ["1", "2"]
    midazolam = result.events[1]
    assert midazolam.one_time and midazolam.frequency_per_day is None and midazolam.rxnorm == "6960"


@pytest.mark.parametrize("pattern, per_day, max_per_day, prn", [
    ("BID", 2.0, None, False), ("TID", 3.0, None, False), ("QID", 4.0, None, False), ("Q8H", 3.0, None, False),
    ("Q72H", 1 / 3, None, False), ("3ID", 3.0, None, False), ("Q30M", 48.0, None, False),
    ("PRNQ6H", 4.0, None, True), ("Q4-6H PRN", 4.0, 6.0, True), ("QAM", 1.0, None, False),
    ("Q1J1", 1 / 7, None, False), ("QOD", 0.5, None, False),
])
def test_repeat_patterns(pattern: str, per_day: float, max_per_day: float | None, prn: bool) -> None:
    text = replace_segment(sample("rde_o11_oxycodone_new"), "TQ1", f"TQ1|1||{pattern}")
    event = only(Hl7Mapper().map(text))
    assert event.frequency_per_day == pytest.approx(per_day)
    assert event.max_frequency_per_day == (None if max_per_day is None else pytest.approx(max_per_day))
    assert event.prn is prn


def test_ndc_and_local_codes() -> None:
    text = sample("rde_o11_oxycodone_new").replace("1049621^oxycodone hydrochloride 5 MG Oral Tablet^RXNORM",
                                                   "OXY5^Oxycodone 5mg tab^LOCAL^00406-0552-01^^NDC")
    event = only(Hl7Mapper().map(text))
    assert (event.drug, event.rxnorm, event.ndc) == ("Oxycodone 5mg tab", None, "00406-0552-01")


def test_routes_from_table_0162_and_from_the_dosage_form() -> None:
    nasal = replace_segment(sample("rde_o11_oxycodone_new"), "RXR", "RXR|NS^Nasal^HL70162")
    assert only(Hl7Mapper().map(nasal)).route == "intranasal"  # a table code: NS is nasal
    free_text = replace_segment(sample("rde_o11_oxycodone_new"), "RXR", "RXR|^by mouth")
    assert normalize_route(only(Hl7Mapper().map(free_text)).route) == "oral"
    no_rxr = replace_segment(sample("rde_o11_oxycodone_new"), "RXR", None)
    assert only(Hl7Mapper().map(no_rxr)).route == "oral"  # TAB


def test_local_time_zone_setting_applies_to_times_without_offset() -> None:
    event = only(mapped("omp_o09_hydromorphone", Hl7Mapper(zone=ZoneInfo("America/New_York"))))
    assert event.occurred_at.utcoffset() == timedelta(hours=-5)
    assert event.occurred_at.astimezone(timezone.utc) == datetime(2026, 3, 2, 18, 25, tzinfo=timezone.utc)


def test_event_ids_of_two_senders_never_collide() -> None:
    one = sample("adt_a01").replace("|ADTSYS|GENHOSP|", "|A:B|C|")
    two = sample("adt_a01").replace("|ADTSYS|GENHOSP|", "|A|B:C|")
    ids = {only(Hl7Mapper().map(text)).event_id for text in (one, two)}
    assert ids == {"hl7:A%3AB:C:ADT0001:1", "hl7:A:B%3AC:ADT0001:1"}


def test_a_long_sender_is_hashed_into_the_event_id_limit() -> None:
    text = sample("adt_a01").replace("|ADTSYS|", "|" + "X" * 200 + "|")
    event_id = only(Hl7Mapper().map(text)).event_id
    assert event_id.startswith("hl7:sha256:") and len(event_id) <= 128


# --- pain scores ------------------------------------------------------------------------


def test_oru_pain_score_with_body_site_skips_other_and_retracted_obx() -> None:
    event = only(mapped("oru_r01_pain"))  # OBX 1 is heart rate, OBX 3 is status W
    assert isinstance(event, PainScore)
    assert event.score == 7 and event.body_site == "Lower back"
    assert event.event_id == "hl7:EHRNURSING:GENHOSP:NS0001:2"  # OBX position 2
    assert event.occurred_at == datetime(2026, 3, 2, 16, 25, tzinfo=EST)  # OBX-14


def test_oru_without_a_pain_score_maps_to_no_event() -> None:
    text = "\r".join(s for s in sample("oru_r01_pain").split("\r") if "72514-3" not in s)
    result = Hl7Mapper().map(text)
    assert result.rejection is None and result.events == ()


def test_pain_score_time_falls_back_to_obr7() -> None:
    text = sample("oru_r01_pain").replace("|F|||202603021625-0500|", "|F||||")
    assert only(Hl7Mapper().map(text)).occurred_at == datetime(2026, 3, 2, 16, 20, tzinfo=EST)


# --- ADT --------------------------------------------------------------------------------


def test_adt_a01_admission_context() -> None:
    event = only(mapped("adt_a01"))
    assert isinstance(event, PatientUpdate) and not event.discharged
    assert event.occurred_at == datetime(2026, 3, 2, 8, 55, tzinfo=EST)  # EVN-6 before EVN-2
    assert (event.patient.unit, event.patient.birth_date) == ("5W", date(1958, 3, 12))


def test_adt_a02_transfer_to_a_monitored_unit() -> None:
    event = only(mapped("adt_a02"))
    assert event.patient.unit == "MICU" and is_monitored_unit("MICU") is True
    assert event.occurred_at == datetime(2026, 3, 3, 18, 1, tzinfo=EST)  # EVN-2


def test_adt_a03_discharge_but_not_of_an_emergency_visit() -> None:
    assert only(mapped("adt_a03")).discharged is True
    emergency = sample("adt_a03").replace("PV1|1|I|", "PV1|1|E|")
    assert not only(Hl7Mapper().map(emergency)).discharged


def test_adt_a08_updates_the_birth_date() -> None:
    assert only(mapped("adt_a08")).patient.birth_date == date(1958, 3, 13)


def test_partial_birth_date_is_left_out() -> None:
    text = sample("adt_a08").replace("|19580313|", "|1958|")
    assert only(Hl7Mapper().map(text)).patient.birth_date is None


# --- rejections -------------------------------------------------------------------------

NEW = "rde_o11_oxycodone_new"
REJECTED = [
    ("not HL7", lambda t: "hello world", "not_hl7", "AR"),
    ("PID first", lambda t: t.split("\r", 1)[1], "not_hl7", "AR"),
    ("unknown type", lambda t: t.replace("RDE^O11^RDE_O11", "MFN^M01"), "unsupported_message", "AR"),
    ("unknown trigger", lambda t: t.replace("RDE^O11^RDE_O11", "ADT^A04"), "unsupported_trigger", "AR"),
    ("order control", lambda t: t.replace("ORC|NW|", "ORC|HD|"), "unsupported_order_control", "AE"),
    ("no ORC-1", lambda t: t.replace("ORC|NW|", "ORC||"), "missing_field", "AE"),
    ("no PID", lambda t: replace_segment(t, "PID", None), "missing_field", "AE"),
    ("no PID-3", lambda t: t.replace("MRN1001^^^GENHOSP^MR~998877^^^STATE^SS", ""), "missing_field", "AE"),
    ("no MSH-10", lambda t: t.replace("|RX000101|", "||"), "missing_field", "AE"),
    ("no sender", lambda t: t.replace("|PHARMSYS^1.2.840.1.5^ISO|GENHOSP|", "|||"), "missing_field", "AE"),
    ("no ORC", lambda t: replace_segment(t, "ORC", None), "missing_field", "AE"),
    ("no order number", lambda t: t.replace("ORD-7001^CPOE|FIL-7001^PHARMSYS", "|"), "missing_field", "AE"),
    ("no RXE", lambda t: replace_segment(t, "RXE", None), "missing_field", "AE"),
    ("no give code", lambda t: t.replace("1049621^oxycodone hydrochloride 5 MG Oral Tablet^RXNORM", ""),
     "missing_field", "AE"),
    ("no amount", lambda t: t.replace("^RXNORM|5||", "^RXNORM|||"), "missing_field", "AE"),
    ("no units", lambda t: t.replace("|mg^milligram^UCUM|", "||"), "missing_field", "AE"),
    ("amount text", lambda t: t.replace("^RXNORM|5||", "^RXNORM|five||"), "invalid_value", "AE"),
    ("amount zero", lambda t: t.replace("^RXNORM|5||", "^RXNORM|0||"), "invalid_value", "AE"),
    ("no frequency", lambda t: replace_segment(t.replace("RXE|^Q6H&0600,1200,1800,2400^^202603021200-0500|",
                                                         "RXE||"), "TQ1", None), "missing_field", "AE"),
    ("odd pattern", lambda t: t.replace("Q6H^every 6 hours", "SOMETIMES"), "invalid_value", "AE"),
    ("continuous without rate", lambda t: t.replace("Q6H^every 6 hours", "C"), "invalid_value", "AE"),
    ("bad ORC-9", lambda t: t.replace("202603021155-0500", "2026-03-02"), "invalid_value", "AE"),
    ("date only", lambda t: t.replace("202603021155-0500", "20260302"), "invalid_value", "AE"),
    ("bad PID-7", lambda t: t.replace("|19580312|", "|1958-03-12|"), "invalid_value", "AE"),
    ("impossible date", lambda t: t.replace("|19580312|", "|19580231|"), "invalid_value", "AE"),
    ("rate unit", lambda t: replace_segment(t, "RXE", "RXE||7052^morphine^RXNORM|1||mg|" + "|" * 16 + "2|mg"),
     "invalid_value", "AE"),
]


@pytest.mark.parametrize("name, change, reason, code", REJECTED, ids=[r[0] for r in REJECTED])
def test_rejections(name: str, change, reason: str, code: str) -> None:  # type: ignore[no-untyped-def]
    original = sample(NEW)
    result = Hl7Mapper().map(change(original))
    assert result.rejection is not None and result.events == ()
    assert (result.rejection.reason, result.rejection.ack_code) == (reason, code)
    for secret in ("MRN1001", "Rivera", "oxycodone", "19580312", "998877"):
        assert secret not in result.rejection.detail  # details name fields, never values


def test_pain_score_out_of_range_or_not_an_integer() -> None:
    for value in ("11", "6.5", "-1", "severe"):
        text = sample("oru_r01_pain").replace("||7|{score}", f"||{value}|{{score}}")
        result = Hl7Mapper().map(text)
        assert result.rejection is not None and result.rejection.reason == "invalid_value", value
    assert only(Hl7Mapper().map(sample("oru_r01_pain").replace("||7|{score}", "||7.0|{score}"))).score == 7


def test_oversized_and_encoding() -> None:
    assert Hl7Mapper(max_bytes=100).map(sample(NEW)).rejection.reason == "oversized"  # type: ignore[union-attr]
    latin = sample("adt_a01").replace("Rivera", "Rivéra")
    assert Hl7Mapper().map(latin.encode("latin-1")).rejection.reason == "bad_encoding"  # type: ignore[union-attr]
    declared = latin.replace("|P|2.5.1", "|P|2.5.1||||||8859/1", 1)
    assert Hl7Mapper().map(declared.encode("latin-1")).rejection is None


def test_no_message_value_reaches_the_logs(caplog: pytest.LogCaptureFixture) -> None:
    text = sample("adt_a01").replace("MRN1001^", "MRN\\\\1001^")  # an empty escape sequence
    with caplog.at_level(logging.INFO):
        Hl7Mapper().map(text)
    assert "MRN" not in caplog.text


def test_every_reason_has_an_ack_code_and_a_table_0357_code() -> None:
    for kind in REJECTIONS.values():
        assert kind.ack_code in ("AE", "AR") and kind.error_code.isdigit()


# --- acknowledgements -------------------------------------------------------------------


def test_ack_echoes_the_control_id_and_carries_err_on_rejection() -> None:
    good = Hl7Mapper().map(sample(NEW))
    ack = hl7.parse(build_ack(good, "AA", "ACK0001").decode())
    assert str(ack.segment("MSA")(1)) == "AA" and str(ack.segment("MSA")(2)) == "RX000101"
    assert str(ack.segment("MSH")(10)) == "ACK0001" and str(ack.segment("MSH")(5)) == "PHARMSYS^1.2.840.1.5^ISO"

    bad = Hl7Mapper().map(sample(NEW).replace("ORC|NW|", "ORC|HD|"))
    ack = hl7.parse(build_ack(bad, bad.rejection.ack_code, "ACK0002", bad.rejection).decode())  # type: ignore[union-attr]
    assert str(ack.segment("MSA")(1)) == "AE" and str(ack.segment("MSA")(2)) == "RX000101"
    err = ack.segment("ERR")
    assert ack["ERR.F3.R1.C1"] == "103" and ack["ERR.F5.R1.C1"] == "unsupported_order_control"
    assert "ORC-1" in str(err(8))

    unreadable = Hl7Mapper().map(b"\x00\x01 not hl7")
    ack = hl7.parse(build_ack(unreadable, "AR", "ACK0003", unreadable.rejection).decode())
    assert str(ack.segment("MSA")(1)) == "AR" and str(ack.segment("MSA")(2)) == ""


def test_resend_maps_to_the_same_events_and_digest() -> None:
    first, again = Hl7Mapper().map(sample(NEW)), Hl7Mapper().map(sample(NEW))
    assert first.events == again.events and first.content_digest == again.content_digest
    changed = Hl7Mapper().map(sample(NEW).replace("^RXNORM|5||", "^RXNORM|10||"))
    assert changed.content_digest != first.content_digest


# --- never raises -----------------------------------------------------------------------

SEGMENT_IDS = ["MSH", "PID", "PV1", "ORC", "RXE", "RXO", "TQ1", "RXR", "OBR", "OBX", "EVN", "ZZZ"]


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=400), st.text(max_size=400)))
def test_the_mapper_never_raises_on_arbitrary_input(raw: bytes | str) -> None:
    result = Hl7Mapper().map(raw)
    assert (result.rejection is None) or result.events == ()


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([NEW, "omp_o09_hydromorphone", "oru_r01_pain", "adt_a03", "rde_o11_morphine_infusion"]),
       st.lists(st.tuples(st.integers(0, 400), st.text(alphabet="|^~&\\\r0123456789AZ.-+ ", max_size=12)),
                max_size=6))
def test_the_mapper_never_raises_on_mutated_messages(name: str, edits: list[tuple[int, str]]) -> None:
    text = sample(name)
    for position, insert in edits:
        text = text[:position] + insert + text[position + len(insert):]
    result = Hl7Mapper().map(text)
    assert isinstance(result, Hl7Result)
    if result.rejection is not None:
        assert result.rejection.reason in REJECTIONS and result.events == ()
    build_ack(result, "AA" if result.rejection is None else result.rejection.ack_code, "X", result.rejection)

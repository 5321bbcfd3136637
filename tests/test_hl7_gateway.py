"""The gateway's decisions without a network: publish before AA, AE when the broker does
not acknowledge, the control-id window, dead letters and metrics (a fake record sink)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import hl7
import pytest

from monitor.gateway import ControlIdWindow, Gateway, OutgoingRecord, PublishError
from monitor.gateway_settings import GatewaySettings
from monitor.settings import ServiceSettings

DATA = Path(__file__).parent / "data" / "hl7"


def sample(name: str) -> bytes:
    return (DATA / f"{name}.hl7").read_bytes()


class FakeSink:
    """Records what was published; fails the next ``fail`` publishes."""

    def __init__(self) -> None:
        self.records: list[OutgoingRecord] = []
        self.fail = 0

    async def publish(self, records: list[OutgoingRecord]) -> None:
        if self.fail:
            self.fail -= 1
            raise PublishError("TimeoutError")
        self.records.extend(records)


def gateway(**settings: object) -> tuple[Gateway, FakeSink]:
    sink = FakeSink()
    return Gateway(sink, ServiceSettings(), GatewaySettings(**settings)), sink


def ack_of(raw: bytes) -> tuple[str, str, str]:
    """(MSA-1, MSA-2, ERR-5 reason) of an ACK."""
    message = hl7.parse(raw.decode())
    reason = message["ERR.F5.R1.C1"] if any(str(s[0]) == "ERR" for s in message) else ""
    return str(message.segment("MSA")(1)), str(message.segment("MSA")(2)), reason


def metric(g: Gateway, name: str, **labels: str) -> float:
    return g.metrics.registry.get_sample_value(name, labels) or 0.0


def test_events_are_published_keyed_by_patient_before_aa() -> None:
    g, sink = gateway()
    assert ack_of(asyncio.run(g.handle(sample("rde_o11_oxycodone_new")))) == ("AA", "RX000101", "")
    [record] = sink.records
    assert record.topic == "medsafety.rx-orders" and record.key == b"MRN1001"
    assert b'"event_id":"hl7:PHARMSYS^1.2.840.1.5^ISO:GENHOSP:RX000101:1"' in record.value
    assert metric(g, "medsafety_gateway_events_published_total", type="prescription") == 1
    assert metric(g, "medsafety_gateway_messages_received_total", message_type="RDE^O11") == 1
    assert metric(g, "medsafety_gateway_latency_seconds_count") == 1


def test_a_resend_is_acknowledged_without_publishing_again() -> None:
    g, sink = gateway()
    for _ in range(3):
        assert ack_of(asyncio.run(g.handle(sample("adt_a01"))))[0] == "AA"
    assert len(sink.records) == 1
    assert metric(g, "medsafety_gateway_resends_total") == 2
    assert metric(g, "medsafety_gateway_acked_total", code="AA") == 3


def test_a_reused_control_id_with_other_content_is_refused_not_lost_silently() -> None:
    g, sink = gateway()
    asyncio.run(g.handle(sample("adt_a01")))
    other = sample("adt_a01").replace(b"PV1|1|I|5W", b"PV1|1|I|6E")
    assert ack_of(asyncio.run(g.handle(other))) == ("AR", "ADT0001", "control_id_reused")
    assert [r.topic for r in sink.records] == ["medsafety.patient-updates", "medsafety.dead-letter"]


def test_a_broker_that_does_not_acknowledge_gets_ae_207_and_the_resend_is_published() -> None:
    g, sink = gateway()
    sink.fail = 1
    raw = asyncio.run(g.handle(sample("adt_a01")))
    assert ack_of(raw) == ("AE", "ADT0001", "publish_failed")
    assert hl7.parse(raw.decode())["ERR.F3.R1.C1"] == "207"
    assert sink.records == [] and metric(g, "medsafety_gateway_broker_connected") == 0
    assert ack_of(asyncio.run(g.handle(sample("adt_a01"))))[0] == "AA"  # not remembered: published now
    assert len(sink.records) == 1 and metric(g, "medsafety_gateway_broker_connected") == 1
    assert metric(g, "medsafety_gateway_rejected_total", reason="publish_failed") == 1


def test_a_bad_message_is_dead_lettered_with_its_bytes_and_reason() -> None:
    g, sink = gateway()
    bad = sample("rde_o11_oxycodone_new").replace(b"ORC|NW|", b"ORC|HD|")
    assert ack_of(asyncio.run(g.handle(bad))) == ("AE", "RX000101", "unsupported_order_control")
    [letter] = sink.records
    headers = dict(letter.headers)
    assert letter.topic == "medsafety.dead-letter" and letter.value == bad
    assert headers["medsafety-topic"] == b"hl7-mllp" and headers["medsafety-reason"] == b"unsupported_order_control"
    assert headers["medsafety-control-id"] == b"RX000101" and b"MRN" not in headers["medsafety-detail"]
    assert metric(g, "medsafety_gateway_rejected_total", reason="unsupported_order_control") == 1
    assert metric(g, "medsafety_gateway_dead_letters_total") == 1


def test_when_the_dead_letter_cannot_be_written_the_sender_is_told_to_resend() -> None:
    g, sink = gateway()
    sink.fail = 1
    assert ack_of(asyncio.run(g.handle(b"not hl7 at all")))[::2] == ("AE", "publish_failed")
    assert ack_of(asyncio.run(g.handle(b"not hl7 at all")))[::2] == ("AR", "not_hl7")
    assert len(sink.records) == 1


def test_concurrent_copies_of_one_message_publish_once() -> None:
    g, sink = gateway()

    async def both() -> list[bytes]:
        return await asyncio.gather(*(g.handle(sample("oru_r01_pain")) for _ in range(5)))

    assert {ack_of(a)[0] for a in asyncio.run(both())} == {"AA"}
    assert len(sink.records) == 1 and g._locks == {}


def test_the_window_is_bounded_per_sender() -> None:
    window = ControlIdWindow(per_sender=2, max_senders=2)
    for control_id in ("1", "2", "3"):
        window.remember("A|X", control_id, "d")
    assert window.digest_of("A|X", "1") is None and window.digest_of("A|X", "3") == "d"
    window.remember("B|X", "1", "d")
    window.remember("C|X", "1", "d")  # a third sender evicts the least recently seen
    assert window.digest_of("A|X", "3") is None and window.digest_of("C|X", "1") == "d"


def test_a_zero_window_publishes_every_resend() -> None:
    g, sink = gateway(hl7_dedup_window=0)
    for _ in range(2):
        asyncio.run(g.handle(sample("adt_a01")))
    assert len(sink.records) == 2


def test_settings_from_the_environment() -> None:
    s = GatewaySettings.from_env({"MEDSAFETY_HL7_PORT": "3000", "MEDSAFETY_HL7_TIMEZONE": "Europe/Paris"})
    assert s.hl7_port == 3000 and str(s.zone) == "Europe/Paris"
    with pytest.raises(ValueError, match="IANA"):
        GatewaySettings.from_env({"MEDSAFETY_HL7_TIMEZONE": "Mars/Olympus"})

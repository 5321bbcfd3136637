"""``medmon gateway`` over TCP on each broker: HL7 v2 messages sent with python-hl7's MLLP
client, the ACKs checked, the canonical events read back from the input topics; resends,
bad messages, dead letters and /metrics; and HL7 in → alerts out through a real worker."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.cli import main as medmon
from monitor.hl7v2 import Hl7Mapper
from tests.integration.gateways import DATA, Gateway, msa, sample
from tests.integration.workers import Worker, assert_same_alerts

pytestmark = pytest.mark.integration

SAMPLES = sorted(path.stem for path in DATA.glob("*.hl7"))
TOPIC_OF_TYPE = {"prescription": "rx", "pain_score": "pain", "patient_update": "patient"}


@pytest.fixture()
def topics(broker: str, tmp_path: Path) -> Worker:
    """A namespace of topics (a worker's settings, the worker not started)."""
    return Worker(broker, tmp_path)


@pytest.fixture()
def gateway(topics: Worker) -> Iterator[Gateway]:
    g = Gateway(topics)
    yield g.start()
    g.stop()


def control_id(message: bytes) -> str:
    return message.split(b"\r", 1)[0].split(b"|")[9].decode()


def records_by_topic(topics: Worker) -> dict[str, list]:
    return {kind: topics.read_to_end(topics.topic(kind)) for kind in ("rx", "pain", "patient")}


def test_messages_become_canonical_events_on_the_input_topics_and_a_resend_adds_nothing(
        gateway: Gateway, topics: Worker) -> None:
    messages = [sample(name) for name in SAMPLES]
    acks = gateway.send(*messages)
    assert [msa(ack) for ack in acks] == [("AA", control_id(m)) for m in messages]

    expected = [event for m in messages for event in Hl7Mapper().map(m).events]
    assert len(expected) == len(messages)  # one event each: no sample maps to none or two
    published = records_by_topic(topics)
    for kind, records in published.items():
        wanted = [e for e in expected if TOPIC_OF_TYPE[e.type] == kind]
        assert sorted(r.value.decode() for r in records) == sorted(e.model_dump_json(exclude_none=True)
                                                                    for e in wanted)
        assert all(r.key == json.loads(r.value)["patient"]["id"].encode() for r in records)  # keyed by patient

    resent = [sample("rde_o11_oxycodone_new"), sample("oru_r01_pain"), sample("adt_a02")]
    assert [msa(ack)[0] for ack in gateway.send(*resent)] == ["AA", "AA", "AA"]
    again = records_by_topic(topics)
    assert {kind: len(records) for kind, records in again.items()} == \
           {kind: len(records) for kind, records in published.items()}  # no second record
    assert gateway.metric("medsafety_gateway_resends_total") == 3
    assert gateway.metric('medsafety_gateway_events_published_total{type="prescription"}') == 7
    assert gateway.metric("medsafety_gateway_latency_seconds_count") == len(messages) + len(resent)


def test_bad_messages_are_answered_ae_or_ar_dead_lettered_and_counted(gateway: Gateway, topics: Worker) -> None:
    good = sample("adt_a01")
    unknown_type = good.replace(b"ADT^A01^ADT_A01", b"MFN^M01").replace(b"ADT0001", b"BAD0001")
    hold_order = sample("rde_o11_oxycodone_new").replace(b"ORC|NW|", b"ORC|HD|")
    no_patient_id = good.replace(b"MRN1001^^^GENHOSP^MR", b"").replace(b"ADT0001", b"BAD0002")
    garbage = b"this is not HL7 \x00"
    acks = gateway.send(garbage, unknown_type, hold_order, no_patient_id, good)
    assert [msa(ack) for ack in acks] == [("AR", ""), ("AR", "BAD0001"), ("AE", "RX000101"), ("AE", "BAD0002"),
                                          ("AA", "ADT0001")]  # the connection keeps going after bad input
    assert [ack["ERR.F5.R1.C1"] for ack in acks[:4]] == ["not_hl7", "unsupported_message",
                                                         "unsupported_order_control", "missing_field"]

    letters = topics.read_to_end(topics.topic("dead_letter"))
    by_reason = {dict(m.headers)["medsafety-reason"].decode(): m for m in letters}
    assert set(by_reason) == {"not_hl7", "unsupported_message", "unsupported_order_control", "missing_field"}
    assert by_reason["not_hl7"].value == garbage and by_reason["missing_field"].value == no_patient_id
    assert all(dict(m.headers)["medsafety-topic"] == b"hl7-mllp" for m in letters)
    assert len(topics.read_to_end(topics.topic("patient"))) == 1  # only the good message

    text = gateway.metrics_text()
    for reason in by_reason:
        assert gateway.metric(f'medsafety_gateway_rejected_total{{reason="{reason}"}}') == 1
    assert gateway.metric('medsafety_gateway_acked_total{code="AR"}') == 2
    assert gateway.metric('medsafety_gateway_acked_total{code="AE"}') == 2
    assert gateway.metric('medsafety_gateway_messages_received_total{message_type="other"}') == 2
    assert gateway.metric("medsafety_gateway_dead_letters_total") == 4
    assert "MRN" not in text and "Rivera" not in text  # no patient data in any label


def scenario() -> list[bytes]:
    """A 50-year-old on an unmonitored unit: oxycodone, then lorazepam, no bowel regimen;
    a pain score a day later lets event time pass the laxative grace period."""
    header = "MSH|^~\\&|{app}|GENHOSP|MEDSAFETY|GENHOSP|{at}-0500||{kind}|{control}|P|2.5.1\r"
    pid = "PID|1||MRN3001^^^GENHOSP^MR||Test^Pat||19760410|M\rPV1|1|I|MEDSURG^12^A^GENHOSP\r"

    def message(app: str, at: str, kind: str, control: str, body: str) -> bytes:
        return (header.format(app=app, at=at, kind=kind, control=control) + pid + body).encode()

    return [
        message("ADTSYS", "202603020800", "ADT^A01^ADT_A01", "E2E-ADT-1", "EVN|A01|202603020800-0500\r"),
        message("PHARMSYS", "202603020900", "RDE^O11^RDE_O11", "E2E-RX-1",
                "ORC|NW|E2E-ORD-1^CPOE|||||||202603020900-0500\r"
                "RXE||7804^oxycodone^RXNORM|10||mg|TAB\rTQ1|1||Q6H\rRXR|PO^Oral^HL70162\r"),
        message("PHARMSYS", "202603021000", "RDE^O11^RDE_O11", "E2E-RX-2",
                "ORC|NW|E2E-ORD-2^CPOE|||||||202603021000-0500\r"
                "RXE||6470^lorazepam^RXNORM|1||mg|TAB\rTQ1|1||Q8H\rRXR|PO^Oral^HL70162\r"),
        message("EHRNURSING", "202603031100", "ORU^R01^ORU_R01", "E2E-PAIN-1",
                "OBR|1|||VS|||202603031100-0500\r"
                "OBX|1|NM|72514-3^Pain severity^LN||4||||||F|||202603031100-0500\r"),
    ]


def test_hl7_in_through_the_gateway_gives_the_alerts_out(broker: str, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    messages = scenario()
    canonical = tmp_path / "scenario.ndjson"
    canonical.write_text("".join(e.model_dump_json(exclude_none=True) + "\n"
                                 for m in messages for e in Hl7Mapper().map(m).events))
    offline = tmp_path / "offline.ndjson"
    monkeypatch.setenv("MEDSAFETY_ALLOWED_LATENESS", "PT1S")  # as the worker runs
    assert medmon(["evaluate", str(canonical), "--out", str(offline)]) == 0
    expected = offline.read_text().splitlines()
    kinds = sorted((json.loads(line)["kind"], json.loads(line)["severity"]) for line in expected)
    assert kinds == [("missing_laxative", "warning"), ("opioid_benzodiazepine", "high")]

    worker = Worker(broker, tmp_path).start()
    gateway = Gateway(worker).start()
    try:
        acks = gateway.send(*messages)
        assert [msa(ack) for ack in acks] == [("AA", control_id(m)) for m in messages]
        alerts = worker.read(worker.topic("alerts"), len(expected))
        assert_same_alerts([m.value.decode() for m in alerts], expected)
        assert {m.key for m in alerts} == {b"MRN3001"}
        evidence = {e for m in alerts for e in json.loads(m.value)["evidence"]}
        assert "hl7:PHARMSYS:GENHOSP:E2E-RX-1:1" in evidence and "hl7:PHARMSYS:GENHOSP:E2E-RX-2:1" in evidence
        metrics = worker.wait_caught_up()
        assert metrics['medsafety_events_processed_total{type="prescription"}'] == 2
    finally:
        gateway.stop()
        worker.stop()

"""The live worker end to end: each broker over TCP, a real worker process, the demo
feed replayed to the input topics; alerts, dead letters and /metrics asserted."""

from __future__ import annotations

import json
import urllib.request
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaProducer, TopicPartition
from kafka.partitioner.default import murmur2

from monitor.broker import KAFKA_API_VERSION, PRODUCER_OPTIONS
from monitor.cli import main as medmon
from monitor.demo import FEED_PATH
from tests.integration.workers import Worker, assert_same_alerts, offline_alerts, wait_for_assignment
from tests.test_deploy import referenced_metrics

pytestmark = pytest.mark.integration


@pytest.fixture()
def worker(broker: str, tmp_path: Path) -> Iterator[Worker]:
    w = Worker(broker, tmp_path)
    yield w.start()
    w.stop()


def test_demo_feed_gives_the_offline_alerts_dead_letters_and_metrics(worker: Worker, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    expected = offline_alerts(tmp_path)
    worker.use_env(monkeypatch)
    assert medmon(["replay", str(FEED_PATH)]) == 0

    producer = KafkaProducer(bootstrap_servers=worker.broker, **PRODUCER_OPTIONS)
    rx, pain = worker.topic("rx"), worker.topic("pain")
    bad = [
        (rx, b"MRN-X", b"{not json"),
        (pain, b"MRN-X", json.dumps({"type": "pain_score", "event_id": "b1", "occurred_at": "2026-03-06T20:00:00Z",
                                     "patient": {"id": "MRN-X"}, "score": 11}).encode()),
        (rx, b"MRN-X", b"\xff\xfe"),
        (rx, b"MRN-X", json.dumps({"type": "prescription", "event_id": "b2", "occurred_at": "2026-03-06T20:00:00Z",
                                   "patient": {"id": "MRN-X"}, "order_id": "O", "action": "new",
                                   "drug": "oxycodone"}).encode()),
    ]
    for topic, key, value in bad:
        producer.send(topic, key=key, value=value)
    producer.flush()
    producer.close()

    alerts = worker.read(worker.topic("alerts"), len(expected))
    assert_same_alerts([m.value.decode() for m in alerts], expected)
    assert all(m.key == json.loads(m.value)["patient_id"].encode() for m in alerts)

    letters = worker.read(worker.topic("dead_letter"), len(bad))
    reasons = sorted(dict(m.headers)["medsafety-reason"].decode() for m in letters)
    assert reasons == sorted(["invalid_json", "invalid_value", "not_utf8", "missing_field"])
    assert {m.value for m in letters} == {value for _, _, value in bad}  # the original bytes
    assert all(dict(m.headers)["medsafety-topic"].decode() in (rx, pain) for m in letters)

    metrics = worker.wait_caught_up()
    assert metrics["medsafety_ready"] == 1 and metrics["medsafety_broker_connected"] == 1
    ready = json.loads(urllib.request.urlopen(worker.metrics_url.replace("/metrics", "/readyz"), timeout=10).read())
    assert ready["ready"] is True and ready["recovered"] is True
    feed_types = [json.loads(line)["type"] for line in FEED_PATH.read_text().splitlines()]
    for event_type in ("prescription", "pain_score", "patient_update"):
        assert metrics[f'medsafety_events_processed_total{{type="{event_type}"}}'] == feed_types.count(event_type)
    assert metrics['medsafety_events_invalid_total{reason="invalid_json"}'] == 1
    assert metrics["medsafety_events_duplicate_total"] == 2  # the feed re-delivers two events
    published = sum(v for k, v in metrics.items() if k.startswith("medsafety_alerts_total{"))
    assert published == len(expected)
    assert metrics["medsafety_dead_letters_total"] == len(bad)
    assert metrics["medsafety_alert_latency_seconds_count"] > 0
    text = urllib.request.urlopen(worker.metrics_url, timeout=10).read().decode()
    assert "MRN" not in text  # no patient identifier in any label

    # every metric the alerting rules and the dashboard query is one this worker exports
    exported = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}
    assert referenced_metrics() - exported == set()


def test_records_keyed_otherwise_are_rekeyed_once_and_still_alert(worker: Worker) -> None:
    producer = KafkaProducer(bootstrap_servers=worker.broker, **PRODUCER_OPTIONS)
    base = {"type": "prescription", "patient": {"id": "MRN-K", "birth_date": "1950-01-01", "unit": "5 West"},
            "action": "new", "dose": 5, "dose_unit": "mg", "frequency_per_day": 4}
    opioid = dict(base, event_id="k1", occurred_at="2026-03-02T08:00:00Z", order_id="O1", drug="oxycodone")
    benzo = dict(base, event_id="k2", occurred_at="2026-03-02T09:00:00Z", order_id="O2", drug="lorazepam", dose=1)
    producer.send(worker.topic("rx"), key=None, value=json.dumps(opioid).encode())
    producer.send(worker.topic("rx"), key=b"wrong-key", value=json.dumps(benzo).encode())
    producer.flush()
    producer.close()
    [alert] = worker.read(worker.topic("alerts"), 1)
    record = json.loads(alert.value)
    assert (record["kind"], record["severity"], record["patient_id"]) == ("opioid_benzodiazepine", "critical", "MRN-K")
    assert worker.metrics()["medsafety_events_rekeyed_total"] == 2


def test_two_workers_in_one_group_give_one_workers_alerts(worker: Worker, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    expected = offline_alerts(tmp_path)
    second = worker.sibling().start()
    try:
        assert wait_for_assignment([worker, second], partitions=4) in ([2, 2], [1, 3], [3, 1])
        worker.use_env(monkeypatch)
        assert medmon(["replay", str(FEED_PATH)]) == 0
        alerts = worker.read(worker.topic("alerts"), len(expected))
        assert_same_alerts([m.value.decode() for m in alerts], expected)

        feed_types = [json.loads(line)["type"] for line in FEED_PATH.read_text().splitlines()]
        per_worker = []
        for w in (worker, second):
            metrics = w.metrics()
            per_worker.append(sum(metrics.get(f'medsafety_events_processed_total{{type="{t}"}}', 0)
                                  for t in ("prescription", "pain_score", "patient_update")))
        assert all(per_worker), per_worker  # both took part
        assert sum(per_worker) == len(feed_types)  # every record once, by one worker or the other
    finally:
        second.stop()


def test_a_worker_started_on_a_full_backlog_gives_the_offline_alerts(broker: str, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole feed is on the topics before the worker starts, so its first fetches may
    bring orders before any pain score is fetched: a topic with no fetch response yet must
    hold the watermark back. (Where that went wrong was a restarted worker, whose restored
    partitions start their idle clocks before the first fetch: the crash tests cover it;
    this is the fresh-worker form, with a short IDLE_ADVANCE to widen the window.)"""
    expected = offline_alerts(tmp_path)
    worker = Worker(broker, tmp_path, idle_advance="PT0.02S")
    worker.use_env(monkeypatch)
    worker.create_topics()
    assert medmon(["replay", str(FEED_PATH)]) == 0
    worker.start()
    try:
        worker.wait_caught_up()
        alerts = [m.value.decode() for m in worker.read_to_end(worker.topic("alerts"))]
        assert_same_alerts(alerts, expected)
        assert worker.metrics()["medsafety_events_late_total"] == 0
    finally:
        worker.stop()


def test_a_restarted_worker_on_a_backlog_gives_the_offline_alerts(broker: str, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Half the feed, a clean stop, the other half published while no worker runs, then a
    new worker: it restores the table (state and held events) and meets a backlog on every
    topic at once. Records fetched into faust's buffers but not yet handed to the agent must
    not count as delivered (taking the fetch position for it let orders overtake pain
    scores: wrong severities in the crash tests)."""
    expected = offline_alerts(tmp_path)
    lines = FEED_PATH.read_text().splitlines(keepends=True)
    halves = [tmp_path / "first.ndjson", tmp_path / "second.ndjson"]
    halves[0].write_text("".join(lines[: len(lines) // 2]))
    halves[1].write_text("".join(lines[len(lines) // 2:]))
    first = Worker(broker, tmp_path, batch_size="20", idle_advance="PT0.05S")
    first.use_env(monkeypatch)
    first.start()
    try:
        assert medmon(["replay", str(halves[0])]) == 0
        first.wait_caught_up()
    finally:
        first.stop()
    assert medmon(["replay", str(halves[1])]) == 0
    second = first.sibling().start()
    try:
        second.wait_caught_up()
        alerts = [m.value.decode() for m in second.read_to_end(second.topic("alerts"))]
        # a stop may leave the last offsets uncommitted: those alerts come again, the same
        # records under the same (alert_id, revision), which the queue drops
        queue = {(json.loads(a)["alert_id"], json.loads(a)["revision"]): a for a in alerts}
        assert len(queue) == len(set(alerts))  # a repeat is the same record, never another decision
        assert_same_alerts(list(queue.values()), expected)
    finally:
        second.stop()


def test_a_topic_whose_records_all_expired_does_not_hold_the_watermark(apache_kafka, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Retention (here DeleteRecords) emptied every patient-update partition before this
    group ever committed there: each has an end offset above 0 and nothing to read. They
    must count as caught up (the next offset is never below the log start), or those
    partitions would hold their watermark back for good and no alert would be released.
    Apache Kafka only: the embedded broker (Tansu 0.6, memory storage) drops the connection
    on DeleteRecords and applies no retention."""
    broker = apache_kafka.url
    feed = tmp_path / "no-updates.ndjson"
    feed.write_text("".join(line for line in FEED_PATH.read_text().splitlines(keepends=True)
                            if json.loads(line)["type"] != "patient_update"))
    offline = tmp_path / "offline.ndjson"
    assert medmon(["evaluate", str(feed), "--out", str(offline)]) == 0
    expected = offline.read_text().splitlines()
    assert expected
    worker = Worker(broker, tmp_path)
    worker.create_topics()
    adt = worker.topic("patient")
    producer = KafkaProducer(bootstrap_servers=broker, **PRODUCER_OPTIONS)
    sent = [producer.send(adt, partition=p, value=b"expired") for p in range(4) for _ in range(3)]
    producer.flush()
    producer.close()
    ends = {TopicPartition(adt, s.get().partition): s.get().offset + 1 for s in sent}
    admin = KafkaAdminClient(bootstrap_servers=broker, api_version=KAFKA_API_VERSION)
    try:
        admin.delete_records(ends)
    finally:
        admin.close()
    worker.start()
    try:
        worker.use_env(monkeypatch)
        assert medmon(["replay", str(feed)]) == 0
        metrics = worker.wait_caught_up()  # lag 0 on the emptied partitions too
        assert_same_alerts([m.value.decode() for m in worker.read_to_end(worker.topic("alerts"))], expected)
        assert metrics.get("medsafety_dead_letters_total", 0) == 0
    finally:
        worker.stop()


def test_states_are_kept_with_their_input_partition_whatever_the_upstream_partitioner(
        broker: str, tmp_path: Path) -> None:
    """An upstream producer that places each patient by its own rule (here CRC-32 of the
    patient id), keyed by the patient id as the contract asks: the worker must write each
    patient's table record to the changelog partition of its input partition, the one faust
    assigns with it and restores it from after a restart or a handover; the producer's
    partitioner (murmur2) would put many elsewhere."""
    expected = offline_alerts(tmp_path)
    worker = Worker(broker, tmp_path)
    worker.create_topics()
    events = [json.loads(line) for line in FEED_PATH.read_text().splitlines()]
    placed = {e["patient"]["id"]: zlib.crc32(e["patient"]["id"].encode()) % 4 for e in events}
    default = {pid: murmur2(pid.encode()) % 4 for pid in placed}  # Kafka's default partitioner
    assert any(placed[pid] != default[pid] for pid in placed)  # else this test proves nothing
    topic_for = {"prescription": worker.topic("rx"), "pain_score": worker.topic("pain"),
                 "patient_update": worker.topic("patient")}
    producer = KafkaProducer(bootstrap_servers=broker, **PRODUCER_OPTIONS)
    for event in events:
        pid = event["patient"]["id"]
        producer.send(topic_for[event["type"]], key=pid.encode(), value=json.dumps(event).encode(),
                      partition=placed[pid])
    producer.flush()
    producer.close()
    worker.start()
    try:
        worker.wait_caught_up()
        assert_same_alerts([m.value.decode() for m in worker.read_to_end(worker.topic("alerts"))], expected)
    finally:
        worker.stop()  # a clean stop writes every changed state
    changelog = worker.read_to_end(f"{worker.env['MEDSAFETY_APP_ID']}-patient-state-changelog")
    assert changelog
    misplaced = {record.key.decode() for record in changelog if record.partition != placed[record.key.decode()]}
    assert misplaced == set()

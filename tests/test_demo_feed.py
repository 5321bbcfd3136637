"""The checked-in demo feed: realistic, reproducible, and it raises exactly the expected alerts."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import pytest

from monitor.alerts import Severity
from monitor.cli import main
from monitor.demo import EXPECTED_PATH, FEED_PATH
from monitor.demo.scenarios import write_demo
from monitor.events import PainScore, Prescription
from monitor.knowledge import DrugCatalogue
from monitor.validation import Rejection, decode_event


@pytest.fixture(scope="module")
def expected() -> dict:
    return json.loads(EXPECTED_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def lines() -> list[bytes]:
    return [line for line in FEED_PATH.read_bytes().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def events(lines: list[bytes]) -> list:
    decoded = [decode_event(line) for line in lines]
    assert not [d for d in decoded if isinstance(d, Rejection)]
    return decoded


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    out = tmp_path_factory.mktemp("demo") / "alerts.ndjson"
    assert main(["evaluate", str(FEED_PATH), "--out", str(out)]) == 0
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines() if line.strip()]


def _episodes(records: list[dict]) -> set[tuple[str, str, str, str, str]]:
    by_id: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        by_id[record["alert_id"]].append(record)
    found = set()
    for recs in by_id.values():
        assert [r["revision"] for r in recs] == list(range(1, len(recs) + 1))
        top = max((Severity(r["severity"]) for r in recs), key=lambda s: s.rank)
        last = recs[-1]
        found.add((recs[0]["patient_id"], recs[0]["kind"], top.value, last["status"], last["reason"]))
    return found


def test_feed_raises_exactly_the_expected_episodes(records: list[dict], expected: dict) -> None:
    want = {(e["patient_id"], e["kind"], e["max_severity"], e["final_status"], e["final_reason"])
            for e in expected["episodes"]}
    assert len(want) == len(expected["episodes"])  # one episode per (patient, kind) in this feed
    assert _episodes(records) == want


def test_no_alert_scenarios_raise_nothing(records: list[dict], expected: dict) -> None:
    quiet = {s["patient_id"] for s in expected["scenarios"] if not s["expected_kinds"]}
    alerted = {r["patient_id"] for r in records}
    assert quiet and not quiet & alerted
    # Patients without alerts are (about) the majority, as on a real ward.
    assert len(quiet) >= len(expected["scenarios"]) / 2


def test_every_scenario_is_a_distinct_patient_with_a_story(expected: dict, events: list) -> None:
    scenarios = expected["scenarios"]
    assert len({s["patient_id"] for s in scenarios}) == len({s["scenario"] for s in scenarios}) == len(scenarios)
    assert all(s["story"] and s["why"] for s in scenarios)
    assert {s["patient_id"] for s in scenarios} == {e.patient.id for e in events}
    assert {e["scenario"] for e in expected["episodes"]} <= {s["scenario"] for s in scenarios}
    assert expected["episodes"] == sorted(expected["episodes"], key=lambda e: (e["patient_id"], e["kind"]))


def test_regenerating_gives_identical_files(tmp_path: Path) -> None:
    feed, expected = write_demo(tmp_path)
    assert feed.read_bytes() == FEED_PATH.read_bytes()
    assert expected.read_bytes() == EXPECTED_PATH.read_bytes()


def test_feed_is_big_and_realistic(events: list, lines: list[bytes]) -> None:
    assert 300 <= len(events) <= 500
    assert len({e.patient.id for e in events}) >= 30
    times = [e.occurred_at for e in events]
    assert times == sorted(times)
    assert (max(times) - min(times)).total_seconds() >= 4 * 86400
    assert min(times).date().isoformat() == "2026-03-02"
    # Realistic order traffic: most prescriptions are for drugs outside the monitored classes.
    catalogue = DrugCatalogue.default()
    prescriptions = [e for e in events if isinstance(e, Prescription)]
    unmonitored = [e for e in prescriptions if catalogue.classify(e.drug, e.rxnorm) is None]
    assert len(unmonitored) > len(prescriptions) / 2
    # Pain is charted with a body site.
    assert all(e.body_site for e in events if isinstance(e, PainScore))
    # Two events are delivered twice (same event_id); nothing else repeats.
    ids = [(e.patient.id, e.event_id) for e in events]
    assert len(ids) - len(set(ids)) == 2
    # Every timestamp carries an explicit offset.
    for line in lines:
        assert datetime.fromisoformat(json.loads(line)["occurred_at"]).utcoffset() is not None


def test_every_line_validates(lines: list[bytes]) -> None:
    for line in lines:
        event = decode_event(line)
        assert not isinstance(event, Rejection), str(event)

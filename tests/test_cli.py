"""``medmon evaluate`` and ``medmon mme``: the offline commands, end to end through files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monitor.alerts import AlertRecord
from monitor.cli import main
from tests.feeds import Patient, laxative
from tests.test_rules_oih import oxycodone_escalation

SECRET_ID = "MRN-SECRET-4242"


def write_ndjson(path: Path, events, extra_lines: list[bytes] | None = None) -> Path:
    with path.open("wb") as handle:
        for event in events:
            handle.write(event.model_dump_json().encode() + b"\n")
        for line in extra_lines or []:
            handle.write(line + b"\n")
    return path


def benzo_patient() -> Patient:
    p = Patient(id=SECRET_ID)
    p.rx(0, "OXY", "oxycodone", dose=5, frequency_per_day=4)
    laxative(p)
    p.rx(1, "LZP", "lorazepam", dose=1, frequency_per_day=2)
    return p


def records_of(text: str) -> list[AlertRecord]:
    return [AlertRecord.model_validate_json(line) for line in text.splitlines()]


def test_evaluate_prints_alert_records_as_ndjson(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    feed = write_ndjson(tmp_path / "feed.ndjson", benzo_patient().events)
    assert main(["evaluate", str(feed)]) == 0
    out, err = capsys.readouterr()
    [record] = records_of(out)
    assert (record.kind.value, record.status.value, record.patient_id) == ("opioid_benzodiazepine", "open", SECRET_ID)
    assert err == ""


def test_each_rejected_line_is_one_stderr_line_without_patient_data(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    p = benzo_patient()
    bad_score = json.loads(p.events[0].model_dump_json()) | {"type": "pain_score", "score": 11}
    missing_dose = json.loads(p.events[0].model_dump_json())
    del missing_dose["dose"]
    bad_lines = [b"{not json", json.dumps(bad_score).encode(), json.dumps(missing_dose).encode(), b"\xff\xfe\x00"]
    feed = write_ndjson(tmp_path / "feed.ndjson", p.events, bad_lines)
    assert main(["evaluate", str(feed)]) == 0
    out, err = capsys.readouterr()
    assert len(records_of(out)) == 1  # the good lines still count
    lines = err.splitlines()
    first_bad = len(p.events) + 1
    assert [line.split(": ")[0] for line in lines] == [f"{feed}:{n}" for n in range(first_bad, first_bad + 4)]
    assert [line.split(": ")[1] for line in lines] == ["invalid_json", "invalid_value", "missing_field", "not_utf8"]
    assert SECRET_ID not in err


def test_out_writes_the_file_and_leaves_stdout_empty(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    feed = write_ndjson(tmp_path / "feed.ndjson", benzo_patient().events)
    out_path = tmp_path / "alerts.ndjson"
    assert main(["evaluate", str(feed), "--out", str(out_path)]) == 0
    assert capsys.readouterr().out == ""
    assert len(records_of(out_path.read_text())) == 1


def test_an_unreadable_file_is_a_clear_error_before_any_output(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    feed = write_ndjson(tmp_path / "feed.ndjson", benzo_patient().events)
    missing = tmp_path / "nope.ndjson"
    assert main(["evaluate", str(feed), str(missing)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and f"{missing}: no such file" in err


def test_files_split_by_topic_replay_like_the_merged_feed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = oxycodone_escalation()
    p.rx(48, "OXY", "oxycodone", "modify", dose=12.5, frequency_per_day=4)
    merged = write_ndjson(tmp_path / "all.ndjson", p.events)
    orders = write_ndjson(tmp_path / "orders.ndjson", [e for e in p.events if e.type == "prescription"])
    pains = write_ndjson(tmp_path / "pain.ndjson", [e for e in p.events if e.type == "pain_score"])
    assert main(["evaluate", str(merged)]) == 0
    expected = capsys.readouterr().out
    assert main(["evaluate", str(pains), str(orders)]) == 0
    split = capsys.readouterr().out
    assert {r.kind.value for r in records_of(expected)} == {"oih_suspected", "opioid_escalation_during_oih"}
    assert split == expected


def test_a_file_out_of_order_within_the_allowed_lateness_gives_the_same_records(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = benzo_patient()
    p.rx(1.1, "LZP", "lorazepam", "discontinue")  # six minutes later; written first below
    in_order = write_ndjson(tmp_path / "a.ndjson", p.events)
    swapped = write_ndjson(tmp_path / "b.ndjson", p.events[:-2] + [p.events[-1], p.events[-2]])
    assert main(["evaluate", str(in_order)]) == 0
    expected = capsys.readouterr().out
    assert main(["evaluate", str(swapped)]) == 0
    assert capsys.readouterr().out == expected
    assert [r.status.value for r in records_of(expected)] == ["open", "resolved"]


def test_mme_prints_order_rows_and_a_patient_total(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = Patient(id="P9")
    p.rx(0, "OXY", "oxycodone", dose=10, frequency_per_day=6, prn=True)
    p.rx(0, "FEN", "fentanyl", dose=1, dose_unit="patch", strength=25, strength_unit="mcg/h",
         frequency_per_day=1 / 3, route="transdermal")  # one patch every 72 h
    p.rx(0, "BUP", "buprenorphine", dose=300, dose_unit="mcg", frequency_per_day=2, route="buccal")
    p.rx(0, "CTX", "ceftriaxone", dose=1, dose_unit="g", frequency_per_day=1, route="IV")
    feed = write_ndjson(tmp_path / "feed.ndjson", p.events)
    assert main(["mme", str(feed)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    by_order = {row["order_id"]: row for row in rows if "order_id" in row}
    assert set(by_order) == {"OXY", "FEN", "BUP"}  # not the antibiotic
    assert (by_order["OXY"]["daily_dose"], by_order["OXY"]["factor"], by_order["OXY"]["mme"]) == (60, 1.5, 90)
    assert (by_order["FEN"]["daily_dose_unit"], by_order["FEN"]["mme"]) == ("mcg/h", 60)
    assert by_order["BUP"]["mme"] is None
    assert rows[-1] == {"patient_id": "P9", "total_mme": 150, "mme_complete": False}


def test_factor_set_selects_methadone_tiers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = Patient(id="P7")
    p.rx(0, "MTD", "methadone", dose=10, frequency_per_day=3, route="PO")  # 30 mg/day
    feed = write_ndjson(tmp_path / "feed.ndjson", p.events)
    factors = {}
    for name in ("cdc-2022", "cdc-2016"):
        assert main(["mme", str(feed), "--factor-set", name]) == 0
        factors[name] = json.loads(capsys.readouterr().out.splitlines()[0])["factor"]
    assert factors == {"cdc-2022": 4.7, "cdc-2016": 8}  # 2016: the 21-40 mg/day tier


def test_verbose_adds_a_summary_without_patient_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = benzo_patient()
    feed = write_ndjson(tmp_path / "feed.ndjson", p.events + [p.events[0]])
    assert main(["evaluate", str(feed), "-v"]) == 0
    err = capsys.readouterr().err
    summary = json.loads(err.split("summary: ", 1)[1])
    assert summary["duplicates"] == 1 and summary["events"] == {"prescription": 4}
    assert SECRET_ID not in err


def test_demo_shows_the_queue_of_the_bundled_feed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    expected = json.loads((Path(__file__).parents[1] / "monitor/demo/expected_alerts.json").read_text())["episodes"]
    out_path = tmp_path / "alerts.ndjson"
    assert main(["demo", "--offline", "--out", str(out_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert f"{len(expected)} alert episodes" in lines[0]
    assert len(lines) == 2 + len(expected)  # header, column titles, one line per episode
    assert len({r.alert_id for r in records_of(out_path.read_text())}) == len(expected)

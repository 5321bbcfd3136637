"""The shipped benchmarks run and report sane fields (their speed is not asserted)."""

from __future__ import annotations

import dataclasses
import io
import json
import statistics
from datetime import datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

import pytest

from monitor.benchmarks import replay
from monitor.benchmarks.feed import census_warmup, feed_length, load_feed, patients_feed, scaled_events
from monitor.benchmarks.live import QUICK_PATIENTS, LatencyRun, ScaleRow, print_table, report
from monitor.cli import main as medmon
from monitor.demo import FEED_PATH


def test_scaled_feed_keeps_the_mix_and_event_time_order() -> None:
    source = load_feed(FEED_PATH)
    events = list(islice(scaled_events(source, timedelta(hours=6)), 30 * len(source)))  # > span / stride copies
    times = [datetime.fromisoformat(e["occurred_at"]) for e in events]
    assert times == sorted(times)
    copies = {e["patient"]["id"].rsplit("~", 1)[1] for e in events}
    assert len(copies) > 3  # copies overlap in time
    source_types = sorted(e["type"] for e in source)
    first_copy = sorted(e["type"] for e in events if e["patient"]["id"].endswith("~0"))
    assert first_copy == source_types  # copy 0 is complete and has the source's mix
    assert {e["event_id"] for e in events if e["patient"]["id"].endswith("~0")} == {
        f"{e['event_id']}~0" for e in source}


@pytest.mark.parametrize("patients", [40, 300, 1000])
def test_feed_length_counts_the_one_span_feed(patients: int) -> None:
    source = load_feed(FEED_PATH)
    assert feed_length(source, patients) == sum(1 for _ in patients_feed(source, patients))


@pytest.mark.parametrize("patients", [100, 300])
def test_a_feed_of_given_length_holds_its_census(patients: int) -> None:
    """The bench plays every census for equally many events: the census must hold over
    them (every stay ends in a discharge), not grow with the feed's length."""
    source = load_feed(FEED_PATH)
    length = 12 * feed_length(source, patients)
    events = list(patients_feed(source, patients, length))
    assert len(events) == length
    times = [datetime.fromisoformat(e["occurred_at"]) for e in events]
    assert times == sorted(times)
    steady = _census(events)[length // 3:]  # past the build-up (a span and a stay)
    assert 0.8 * patients <= min(steady) and max(steady) <= 1.25 * patients
    copies = {e["patient"]["id"].rsplit("~", 1)[1] for e in events}
    assert len(copies) > 12  # copies kept opening past the first span


@pytest.mark.parametrize("patients", [100, 300])
def test_census_warmup_counts_the_events_before_the_census_holds(patients: int) -> None:
    """The bench times each census after its warm-up: the events before the first copy's
    last one, over which the census builds up; from there it holds."""
    source = load_feed(FEED_PATH)
    warmup = census_warmup(source, patients)
    events = list(patients_feed(source, patients, 3 * warmup))
    first_copy_ends = max(datetime.fromisoformat(e["occurred_at"]) for e in events if e["patient"]["id"].endswith("~0"))
    assert warmup == sum(1 for e in events if datetime.fromisoformat(e["occurred_at"]) < first_copy_ends)
    census = _census(events)
    assert statistics.mean(census[:warmup // 4]) < 0.5 * patients  # building up
    assert 0.9 * patients <= min(census[warmup:]) and max(census[warmup:]) <= 1.1 * patients


def _census(events: list[dict[str, Any]]) -> list[int]:
    """Patients in hospital after each event (admitted by their first event, gone at discharge)."""
    in_hospital: set[str] = set()
    census = []
    for event in events:
        patient = event["patient"]["id"]
        if event["type"] == "patient_update" and event.get("discharged"):
            in_hospital.discard(patient)
        else:
            in_hospital.add(patient)
        census.append(len(in_hospital))
    return census


def test_replay_benchmark_reports_sane_fields(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    assert replay.main(["--events", "2000", "--json", str(out)]) == 0
    [run] = json.loads(out.read_text())["runs"]
    assert run["events"] == 2000 and run["alert_records"] > 0
    assert run["baseline_events_per_s"] > 0 and run["monitor_events_per_s"] > 0
    assert 0 < run["ratio"] and run["monitor_peak_rss_mb"] > run["baseline_peak_rss_mb"] > 0


def _row(patients: int, baseline: float, monitor: float, state: float = 1_000.0, gc: float = 0.1,
         written: int = 100) -> ScaleRow:
    return ScaleRow(patients, 1_000, patients, baseline, baseline * 0.95, baseline * 1.05, monitor,
                    monitor / baseline, state, 400.0, 10, gc, written, 100)


_LATENCY = LatencyRun(1_000.0, 2_000, 100.0, 105, 165.0, 240.0, 290.0, 1)


def test_flatness_relative_to_baseline_cancels_a_machine_that_speeds_up_between_rows() -> None:
    """Both consumers 20% faster in the large row (the machine, not the census): raw
    flatness 1.2 for each, the monitor's relative to the agent's 1.0."""
    rows = [_row(1_000, 4_000.0, 4_600.0), _row(100_000, 4_800.0, 5_520.0)]
    result = report(rows, _LATENCY, "Tansu")
    assert result["monitor_flatness"] == pytest.approx(1.2) and result["baseline_flatness"] == pytest.approx(1.2)
    assert result["flatness_relative_to_baseline"] == pytest.approx(1.0)
    out = io.StringIO()
    print_table(result, out)
    assert "monitor 1.20, baseline 1.20; monitor relative to baseline 1.00" in out.getvalue()
    assert "1000 patients 3800 / 4200; 100000 patients 4560 / 5040" in out.getvalue()  # the bracketing runs


def test_each_row_shows_its_gc_pauses_and_state_writes_against_its_run() -> None:
    """A row of 1,000 events at 4,000 events/s runs 0.25 s: 0.05 s of GC pauses is 20% of
    it, and 330 records written 0.33 per event."""
    rows = [_row(1_000, 4_000.0, 4_000.0, gc=0.0, written=70), _row(100_000, 4_000.0, 4_000.0, gc=0.05, written=330)]
    out = io.StringIO()
    print_table(report(rows, _LATENCY, "Tansu"), out)
    assert ("monitor's census costs over the timed events: 1000 patients GC pauses 0.00 s (0.0% of its run), 0.07 state writes per event; "
            "100000 patients GC pauses 0.05 s (20.0% of its run), 0.33 state writes per event") in out.getvalue()


def test_every_target_is_judged_and_one_miss_fails_the_run() -> None:
    """Issue 6's targets: ratio >= 1.0 in every row (not only the largest), p99 <= 250 ms,
    state <= 2 KB per patient in every row, flatness relative to the bare agent >= 0.9."""
    met = report([_row(1_000, 4_000.0, 4_400.0), _row(100_000, 4_000.0, 4_200.0)], _LATENCY, "Tansu")
    assert met["targets_met"] is True
    assert {name: target["met"] for name, target in met["targets"].items()} == {
        "ratio_lowest_row": True, "latency_p99_ms": True, "state_bytes_per_patient_highest_row": True,
        "flatness_relative_to_baseline": True}
    assert met["targets"]["ratio_lowest_row"]["measured"] == pytest.approx(1.05)
    out = io.StringIO()
    print_table(met, out)
    assert "latency_p99_ms <= 250: 240 met" in out.getvalue() and "all targets met: yes" in out.getvalue()

    small_row_slow = report([_row(1_000, 4_000.0, 3_880.0), _row(100_000, 4_000.0, 4_400.0)], _LATENCY, "Tansu")
    assert small_row_slow["ratio"] == pytest.approx(1.1)  # the headline row meets it ...
    assert small_row_slow["targets"]["ratio_lowest_row"] == {"measured": 0.97, "target": ">= 1", "met": False}
    assert small_row_slow["targets_met"] is False  # ... but the smallest does not
    not_flat = report([_row(1_000, 4_000.0, 5_000.0), _row(100_000, 4_000.0, 4_400.0)], _LATENCY, "Tansu")
    assert not_flat["targets"]["flatness_relative_to_baseline"]["met"] is False and not not_flat["targets_met"]
    slow_alerts = report([_row(1_000, 4_000.0, 4_400.0), _row(100_000, 4_000.0, 4_400.0)],
                         dataclasses.replace(_LATENCY, p99_ms=251.0), "Tansu")
    assert slow_alerts["targets"]["latency_p99_ms"]["met"] is False and not slow_alerts["targets_met"]
    big_state = report([_row(1_000, 4_000.0, 4_400.0, state=2_100.0), _row(100_000, 4_000.0, 4_400.0)], _LATENCY,
                       "Tansu")
    assert big_state["targets"]["state_bytes_per_patient_highest_row"]["measured"] == 2_100.0
    assert not big_state["targets_met"]
    one_row = report([_row(1_000, 4_000.0, 4_400.0)], _LATENCY, "Tansu")
    assert one_row["targets"]["flatness_relative_to_baseline"] == {"measured": None, "target": ">= 0.9", "met": False}
    out = io.StringIO()
    print_table(one_row, out)
    assert "flatness_relative_to_baseline >= 0.9: not measured" in out.getvalue()
    assert "throughput at 1000 patients / at 1000" not in out.getvalue()  # no flatness of one row against itself
    assert "all targets met: no" in out.getvalue()


@pytest.mark.integration
def test_live_bench_quick_reports_sane_fields(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``medmon bench --quick`` on the embedded broker: every field present and coherent,
    and nothing left behind where it ran (its workers' faust data directories included)."""
    out = tmp_path / "bench.json"
    where_it_ran = tmp_path / "cwd"
    where_it_ran.mkdir()
    monkeypatch.chdir(where_it_ran)
    assert medmon(["bench", "--quick", "--json", str(out)]) == 0
    assert sorted(path.name for path in where_it_ran.iterdir()) == []
    result = json.loads(out.read_text())
    assert result["baseline_events_per_s"] > 0 and result["monitor_events_per_s"] > 0
    assert result["ratio"] == pytest.approx(result["monitor_events_per_s"] / result["baseline_events_per_s"], rel=0.01)
    assert 0 <= result["latency_p50_ms"] <= result["latency_p99_ms"]
    assert result["latency_allowed_lateness_ms"] == 100 and result["latency"]["samples"] > 0
    assert 0 <= result["latency"]["late_events"] <= result["latency"]["events"]
    assert result["state_bytes_per_patient"] > 0 and result["peak_rss_mb"] > 0
    rows = result["scaling"]
    assert [row["patients"] for row in rows] == list(QUICK_PATIENTS)
    assert len({row["events"] for row in rows}) == 1  # every census equally long
    assert result["monitor_flatness"] == pytest.approx(
        rows[-1]["monitor_events_per_s"] / rows[0]["monitor_events_per_s"], rel=0.01)
    assert result["flatness_relative_to_baseline"] == pytest.approx(rows[-1]["ratio"] / rows[0]["ratio"], rel=0.01)
    assert set(result["targets"]) == {"ratio_lowest_row", "latency_p99_ms", "state_bytes_per_patient_highest_row",
                                      "flatness_relative_to_baseline"}
    assert result["targets"]["ratio_lowest_row"]["measured"] == min(row["ratio"] for row in rows)
    assert result["targets"]["flatness_relative_to_baseline"]["measured"] == result["flatness_relative_to_baseline"]
    assert result["targets_met"] == all(target["met"] for target in result["targets"].values())
    source = load_feed(FEED_PATH)
    for row in rows:
        # timed once the census held: the warm-up went first, and the census is the row's
        assert row["warmup_events"] == census_warmup(source, row["patients"]) > 0
        assert 0.8 * row["patients"] <= row["active_patients"] <= 1.25 * row["patients"]
        assert row["baseline_before_events_per_s"] > 0 and row["baseline_after_events_per_s"] > 0
        assert row["baseline_events_per_s"] == pytest.approx(
            (row["baseline_before_events_per_s"] + row["baseline_after_events_per_s"]) / 2, rel=0.01)
        assert row["events"] > row["patients"] and row["active_patients"] > 0 and row["alert_records"] > 0
        assert row["state_bytes_per_patient"] > 0 and row["peak_rss_mb"] > 0
        assert row["gc_pause_seconds"] >= 0 and row["states_written"] > 0  # every row changes patients
        assert row["ratio"] == pytest.approx(row["monitor_events_per_s"] / row["baseline_events_per_s"], rel=0.01)

"""The shipped benchmarks run and report sane fields (their speed is not asserted)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from itertools import islice
from pathlib import Path

import pytest

from monitor.benchmarks import replay
from monitor.benchmarks.feed import load_feed, scaled_events
from monitor.benchmarks.live import QUICK_PATIENTS
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


def test_replay_benchmark_reports_sane_fields(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    assert replay.main(["--events", "2000", "--json", str(out)]) == 0
    [run] = json.loads(out.read_text())["runs"]
    assert run["events"] == 2000 and run["alert_records"] > 0
    assert run["baseline_events_per_s"] > 0 and run["monitor_events_per_s"] > 0
    assert 0 < run["ratio"] and run["monitor_peak_rss_mb"] > run["baseline_peak_rss_mb"] > 0


@pytest.mark.integration
def test_live_bench_quick_reports_sane_fields(tmp_path: Path) -> None:
    """``medmon bench --quick`` on the embedded broker: every field present and coherent."""
    out = tmp_path / "bench.json"
    assert medmon(["bench", "--quick", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["baseline_events_per_s"] > 0 and result["monitor_events_per_s"] > 0
    assert result["ratio"] == pytest.approx(result["monitor_events_per_s"] / result["baseline_events_per_s"], rel=0.01)
    assert 0 <= result["latency_p50_ms"] <= result["latency_p99_ms"]
    assert result["latency_allowed_lateness_ms"] == 100 and result["latency"]["samples"] > 0
    assert 0 <= result["latency"]["late_events"] <= result["latency"]["events"]
    assert result["state_bytes_per_patient"] > 0 and result["peak_rss_mb"] > 0
    rows = result["scaling"]
    assert [row["patients"] for row in rows] == list(QUICK_PATIENTS)
    for row in rows:
        assert row["events"] > row["patients"] and row["active_patients"] > 0 and row["alert_records"] > 0
        assert row["state_bytes_per_patient"] > 0 and row["peak_rss_mb"] > 0
        assert row["ratio"] == pytest.approx(row["monitor_events_per_s"] / row["baseline_events_per_s"], rel=0.01)

"""The shipped benchmarks run and report sane fields (their speed is not asserted)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from itertools import islice
from pathlib import Path

from monitor.benchmarks import replay
from monitor.benchmarks.feed import load_feed, scaled_events
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

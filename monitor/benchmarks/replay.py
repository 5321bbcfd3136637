"""Offline replay benchmark: ``medmon evaluate`` on N events of the demo feed's mix.

Measures, in one run and on the same file: a **baseline** process that only reads and
JSON-decodes every line, and the real ``medmon evaluate`` (validation, every detector,
alert records written). Reports events/s of both, their ratio, and each process's peak
RSS, at several sizes, so that bounded memory shows as a flat RSS column.

    python -m monitor.benchmarks.replay --events 100000 1000000 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .feed import write_scaled_feed

# Runs a module or script and records its own peak RSS (VmHWM, which exec resets; the
# rusage maxrss of a child counts the forking parent's pages as well).
_PEAK_RSS_WRAPPER = """
import atexit, os, runpy, sys
def _record_peak():
    with open("/proc/self/status") as status:
        peak = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    with open(os.environ["MEDSAFETY_BENCH_RSS_FILE"], "w") as out:
        out.write(peak)
atexit.register(_record_peak)
mode, target, *rest = sys.argv[1:]
sys.argv = [target, *rest]
if mode == "-m":
    runpy.run_module(target, run_name="__main__", alter_sys=True)
else:
    runpy.run_path(target, run_name="__main__")
"""

_BASELINE = """
import json, sys
n = 0
with open(sys.argv[1], "rb") as handle:
    for line in handle:
        json.loads(line)
        n += 1
print(n)
"""


@dataclass(frozen=True)
class ReplayRun:
    events: int
    baseline_events_per_s: float
    monitor_events_per_s: float
    ratio: float
    baseline_peak_rss_mb: float
    monitor_peak_rss_mb: float
    alert_records: int


def _timed(argv: list[str], workdir: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of ``python argv...`` (argv: ``-m module ...`` or ``script ...``)."""
    rss_file = workdir / "peak-rss-kib"
    env = dict(os.environ, MEDSAFETY_BENCH_RSS_FILE=str(rss_file))
    started = time.perf_counter()
    completed = subprocess.run([sys.executable, "-c", _PEAK_RSS_WRAPPER, *argv], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError(f"{argv[:3]} failed ({completed.returncode}): {completed.stderr.decode()[-500:]}")
    return elapsed, int(rss_file.read_text()) / 1024


def run_once(events: int, workdir: Path, source: Path) -> ReplayRun:
    feed = workdir / f"feed-{events}.ndjson"
    with feed.open("w", encoding="utf-8") as handle:
        written = write_scaled_feed(source, handle, events)
    alerts = workdir / f"alerts-{events}.ndjson"
    baseline_script = workdir / "baseline.py"
    baseline_script.write_text(_BASELINE)
    baseline_s, baseline_rss = _timed(["-s", str(baseline_script), str(feed)], workdir)
    monitor_s, monitor_rss = _timed(["-m", "monitor.cli", "evaluate", str(feed), "--out", str(alerts)], workdir)
    with alerts.open("rb") as handle:
        alert_records = sum(1 for _ in handle)
    feed.unlink()
    alerts.unlink()
    return ReplayRun(
        events=written,
        baseline_events_per_s=round(written / baseline_s, 1),
        monitor_events_per_s=round(written / monitor_s, 1),
        ratio=round(baseline_s / monitor_s, 4),
        baseline_peak_rss_mb=round(baseline_rss, 1),
        monitor_peak_rss_mb=round(monitor_rss, 1),
        alert_records=alert_records,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--source", type=Path, help="canonical NDJSON feed to scale (default: the demo feed)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    if args.source is None:
        from ..demo import FEED_PATH
        args.source = FEED_PATH
    with tempfile.TemporaryDirectory(prefix="medsafety-bench-") as tmp:
        runs = [run_once(n, Path(tmp), args.source) for n in args.events]
    header = f"{'events':>10} {'baseline ev/s':>14} {'monitor ev/s':>13} {'ratio':>7} {'base RSS MB':>12} " \
             f"{'monitor RSS MB':>15} {'alerts':>8}"
    print(header)
    for r in runs:
        print(f"{r.events:>10} {r.baseline_events_per_s:>14.0f} {r.monitor_events_per_s:>13.0f} {r.ratio:>7.3f} "
              f"{r.baseline_peak_rss_mb:>12.1f} {r.monitor_peak_rss_mb:>15.1f} {r.alert_records:>8}")
    if args.json:
        args.json.write_text(json.dumps({"python": sys.version.split()[0], "cpus": os.cpu_count(),
                                         "runs": [asdict(r) for r in runs]}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

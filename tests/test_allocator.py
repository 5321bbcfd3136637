"""The worker's allocator environment: the tunable is added without losing the caller's,
and a process started with it gets transparent huge pages for what it mallocs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from monitor.allocator import HUGE_PAGES_TUNABLE, worker_environment
from monitor.benchmarks.live import Topics

THP_MODE = Path("/sys/kernel/mm/transparent_hugepage/enabled")

# A child that mallocs 64 MiB (a bytearray: past Python's small-object arenas), touches every
# page, and prints the anonymous huge pages it holds (kB).
CHILD = """
import re
block = bytearray(64 * 1024 * 1024)
for i in range(0, len(block), 4096):
    block[i] = 1
text = open("/proc/self/smaps_rollup").read()
print(re.search(r"AnonHugePages:\\s+(\\d+) kB", text).group(1))
"""


def test_the_tunable_is_added_and_the_callers_tunables_are_kept() -> None:
    assert worker_environment({"PATH": "/bin"}) == {"PATH": "/bin", "GLIBC_TUNABLES": HUGE_PAGES_TUNABLE}
    assert worker_environment({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"})["GLIBC_TUNABLES"] == (
        f"glibc.malloc.arena_max=2:{HUGE_PAGES_TUNABLE}")
    # the caller's own choice wins
    assert worker_environment({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"})["GLIBC_TUNABLES"] == "glibc.malloc.hugetlb=0"


def test_the_bench_runs_its_worker_with_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    env = Topics("p100").worker_env("127.0.0.1:9092")
    assert env["GLIBC_TUNABLES"] == HUGE_PAGES_TUNABLE


def _huge_kb(env: dict[str, str]) -> int:
    return int(subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True,
                              check=True).stdout)


def test_a_process_started_with_it_gets_huge_pages_for_its_malloced_memory() -> None:
    mode = THP_MODE.read_text() if THP_MODE.exists() else ""
    if "[madvise]" not in mode:
        pytest.skip(f"transparent huge pages are not in madvise mode here ({mode.strip() or 'no ' + str(THP_MODE)}): "
                    "with 'never' the tunable can do nothing, with 'always' every process has them")
    without = {"PATH": "/usr/bin:/bin"}
    assert _huge_kb(without) == 0
    assert _huge_kb(worker_environment(without)) >= 32 * 1024  # most of the 64 MiB, on 2 MiB pages

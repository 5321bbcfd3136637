"""Scaled feeds for benchmarks: the demo feed's mix, as many events as asked for.

The scaled feed tiles a canonical NDJSON feed: copy ``k`` renames every patient (and so
every event and order) with a ``~k`` suffix and shifts every time by ``k * stride``. The
clinical mix (unmonitored orders, pain scores, transfers, alerting and quiet patients) is
exactly the source feed's, copies overlap in time so that many patients are active at
once, and the stream is produced lazily in event-time order, so a million events never
sit in memory.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any, TextIO

_TIME_FIELDS = ("occurred_at", "end_at")


def load_feed(path: str | Path) -> list[dict[str, Any]]:
    """A canonical NDJSON feed as dicts, in event-time order."""
    with open(path, encoding="utf-8") as handle:
        events = [json.loads(line) for line in handle if line.strip()]
    events.sort(key=lambda event: datetime.fromisoformat(event["occurred_at"]))
    return events


def _shifted(event: dict[str, Any], copy: int, delta: timedelta) -> dict[str, Any]:
    out = dict(event)
    out["event_id"] = f"{event['event_id']}~{copy}"
    out["patient"] = dict(event["patient"], id=f"{event['patient']['id']}~{copy}")
    for name in _TIME_FIELDS:
        if out.get(name):
            out[name] = (datetime.fromisoformat(out[name]) + delta).isoformat()
    return out


def scaled_events(source: list[dict[str, Any]], stride: timedelta) -> Iterator[dict[str, Any]]:
    """Endless copies of ``source``, each ``stride`` later than the last, merged by time.

    Only the copies that overlap the current time are open at once (a heap of cursors).
    """
    if not source:
        return
    times = [datetime.fromisoformat(event["occurred_at"]) for event in source]
    cursors: list[tuple[datetime, int, int]] = []  # (time of the next event, copy, index)
    next_copy = 0
    while True:
        # Open the next copy once its first event is due before every pending event.
        while not cursors or times[0] + stride * next_copy <= cursors[0][0]:
            heapq.heappush(cursors, (times[0] + stride * next_copy, next_copy, 0))
            next_copy += 1
        _, copy, index = heapq.heappop(cursors)
        yield _shifted(source[index], copy, stride * copy)
        if index + 1 < len(source):
            heapq.heappush(cursors, (times[index + 1] + stride * copy, copy, index + 1))


def write_scaled_feed(source_path: str | Path, out: TextIO, events: int,
                      stride: timedelta = timedelta(hours=6)) -> int:
    """Write ``events`` lines of the scaled feed to ``out``; returns the number written."""
    written = 0
    for event in islice(scaled_events(load_feed(source_path), stride), events):
        out.write(json.dumps(event, separators=(",", ":")))
        out.write("\n")
        written += 1
    return written


def patients_feed(source: list[dict[str, Any]], patients: int) -> Iterator[dict[str, Any]]:
    """At least ``patients`` patients active at once, in the source's clinical mix.

    Copies of ``source`` start one every ``span / copies`` within one span of the source's
    event time, and the feed stops when that span ends: the first copy is complete, the
    last has just begun, so about half of each copy's events are played (about eleven per
    patient for the demo feed): the state of a busy census, not of finished stays.
    ``copies`` is the fewest for which ``patients`` patients have an event in the span.
    """
    if not source:
        return
    times = [datetime.fromisoformat(event["occurred_at"]) for event in source]
    start, span = min(times), max(times) - min(times)
    first_seen: dict[str, timedelta] = {}
    for event, at in zip(source, times):
        first_seen.setdefault(event["patient"]["id"], at - start)
    offsets = sorted(first_seen.values())

    def seen(copies: int) -> int:
        stride = span / copies
        return sum(1 for k in range(copies) for offset in offsets if offset + stride * k < span)

    low, high = 1, max(1, patients)  # seen(high) >= patients: each copy adds at least one patient
    while low < high:
        middle = (low + high) // 2
        if seen(middle) >= patients:
            high = middle
        else:
            low = middle + 1
    copies = low
    stride, end = span / copies, start + span
    for event in scaled_events(source, stride):
        if datetime.fromisoformat(event["occurred_at"]) >= end:
            return
        if int(event["patient"]["id"].rsplit("~", 1)[1]) < copies:
            yield event

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
import math
from bisect import bisect_left
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


def _copies(source: list[dict[str, Any]], patients: int) -> tuple[list[datetime], datetime, timedelta, int]:
    """The source's event times, its first time and span, and the fewest copies for which
    ``patients`` patients have an event within that span (see :func:`patients_feed`)."""
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
    return times, start, span, low


def patients_feed(source: list[dict[str, Any]], patients: int, events: int | None = None) -> Iterator[dict[str, Any]]:
    """About ``patients`` patients active at once, in the source's clinical mix.

    Without ``events``: copies of ``source`` start one every ``span / copies`` within one
    span of the source's event time, and the feed stops when that span ends: the first copy
    is complete, the last has just begun, so about half of each copy's events are played
    (about eleven per patient for the demo feed): the state of a busy census, not of
    finished stays. ``copies`` is the fewest for which ``patients`` patients have an event
    in the span.

    With ``events``: a census that holds, for as long as asked. Every stay ends in a
    discharge (:func:`_closed_stays`), copies start one every ``stride`` for which
    ``patients`` are in hospital at once (:func:`_steady_stride`), and the feed stops after
    ``events`` events. Feeds of different censuses can then be equally long, so that a
    comparison of their throughputs does not also compare run lengths (one span at 1,000
    patients is 11,509 events, under a second of a worker's time: a burst). The census
    builds up over the first span and a stay (about 2.5 times the one-span feed's events),
    then holds.
    """
    if not source:
        return
    if events is not None:
        closed = _closed_stays(source)
        yield from islice(scaled_events(closed, _steady_stride(closed, patients)), events)
        return
    _, start, span, copies = _copies(source, patients)
    stride, end = span / copies, start + span
    for event in scaled_events(source, stride):
        if datetime.fromisoformat(event["occurred_at"]) >= end:
            return
        if int(event["patient"]["id"].rsplit("~", 1)[1]) < copies:
            yield event


def _closed_stays(source: list[dict[str, Any]], after: timedelta = timedelta(hours=1)) -> list[dict[str, Any]]:
    """``source`` with a discharge ``after`` the last event of every patient it does not
    discharge. The source cuts stays at its edges; played copy after copy, those patients
    would otherwise stay in state until the idle TTL (30 days) and the census would grow
    with the feed's length (about six times the one-span census), not hold."""
    last: dict[str, dict[str, Any]] = {}
    discharged: set[str] = set()
    for event in source:
        patient = event["patient"]["id"]
        last[patient] = event
        if event["type"] == "patient_update" and event.get("discharged"):
            discharged.add(patient)
    ends = [{"type": "patient_update", "event_id": f"{event['event_id']}-discharge",
             "occurred_at": (datetime.fromisoformat(event["occurred_at"]) + after).isoformat(),
             "patient": {"id": patient}, "discharged": True}
            for patient, event in last.items() if patient not in discharged]
    return sorted([*source, *ends], key=lambda event: datetime.fromisoformat(event["occurred_at"]))


def _steady_stride(closed: list[dict[str, Any]], patients: int) -> timedelta:
    """The time between copies for which ``patients`` patients are in hospital at once on
    average: the census is the sum of the patients' stays (first event to discharge) over
    the stride."""
    first: dict[str, datetime] = {}
    last: dict[str, datetime] = {}
    for event in closed:
        at = datetime.fromisoformat(event["occurred_at"])
        first.setdefault(event["patient"]["id"], at)
        last[event["patient"]["id"]] = at
    stride = sum((last[patient] - first[patient] for patient in first), timedelta()) / max(1, patients)
    if stride <= timedelta(0):
        raise ValueError("the source's stays have no length: no stride holds a census")
    return stride


def feed_length(source: list[dict[str, Any]], patients: int) -> int:
    """How many events ``patients_feed(source, patients)`` plays, counted without making them."""
    if not source:
        return 0
    times, start, span, copies = _copies(source, patients)
    return _events_before_span(times, span / copies, copies)


def census_warmup(source: list[dict[str, Any]], patients: int) -> int:
    """How many events ``patients_feed(source, patients, events)`` plays before its census
    holds, counted without making them.

    Copy ``k`` of the closed stays starts ``k`` strides in; once one span of the source has
    passed, the copies under way cover every point of a stay and the census is
    ``patients`` from then on. Before that it builds up, and the mix is a build-up's: at
    100,000 patients the first 1,119,069 events held about a third more new orders and a
    quarter fewer discontinuations than the 1,120,500 after the first 1,867,500 (537,517
    against 408,042; 20,249 against 28,067). A benchmark that compares censuses times each
    after its warm-up (1,847,272 events at 100,000 patients, 18,738 at 1,000), so that the
    rows differ in the census alone."""
    if not source:
        return 0
    closed = _closed_stays(source)
    stride = _steady_stride(closed, patients)
    times = [datetime.fromisoformat(event["occurred_at"]) for event in closed]
    span = max(times) - min(times)
    return _events_before_span(times, stride, math.ceil(span / stride))


def _events_before_span(times: list[datetime], stride: timedelta, copies: int) -> int:
    """Events of copies ``0 .. copies - 1`` (copy ``k`` shifted by ``k`` strides) that fall
    before the end of the first copy's span: copy ``k`` plays its events up to ``k`` strides
    before that end."""
    start, span = min(times), max(times) - min(times)
    offsets = sorted(at - start for at in times)
    return sum(bisect_left(offsets, span - stride * k) for k in range(copies))

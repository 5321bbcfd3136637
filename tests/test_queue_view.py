"""The queue side of at-least-once delivery: re-published alert records are dropped by
(alert_id, revision), updates are kept."""

from __future__ import annotations

from monitor.alerts import AlertRecord
from monitor.demo import FEED_PATH
from monitor.engine import Engine
from monitor.publisher import QueueView
from monitor.validation import decode_event
from tests.feeds import rules


def demo_records() -> list[AlertRecord]:
    engine = Engine(rules())
    records: list[AlertRecord] = []
    for line in FEED_PATH.read_bytes().splitlines():
        records.extend(engine.submit(decode_event(line)))  # type: ignore[arg-type]
    records.extend(engine.finish())
    return records


def test_a_crash_replay_of_records_is_shown_once_and_updates_are_kept() -> None:
    records = demo_records()
    assert any(r.revision > 1 for r in records)
    half = len(records) // 2
    delivered = records[:half] + records[:half] + records[half:]  # the first half re-published
    view = QueueView()
    shown = [r for r in delivered if view.admit(r)]
    assert shown == records


def test_an_older_revision_after_a_newer_one_is_dropped() -> None:
    records = [r for r in demo_records() if r.revision == 2]
    second = records[0]
    first = second.model_copy(update={"revision": 1})
    view = QueueView()
    assert view.admit(second) and not view.admit(first) and not view.admit(second)

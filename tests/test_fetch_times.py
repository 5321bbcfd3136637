"""monitor.fetch_times: a partition's completeness time is when the fetch request was sent,
not when aiokafka parsed its response (which can be tens of milliseconds later)."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

from aiokafka.structs import TopicPartition

from monitor.fetch_times import stamp_fetches_at_sending

TP0, TP1 = TopicPartition("rx", 0), TopicPartition("rx", 1)


class Fetcher:
    """aiokafka's Fetcher as far as the stamping sees it: the request's coroutine answers
    after ``delay`` and stamps the partitions it updated with its own parse time."""

    def __init__(self, delay: float, updates: set[TopicPartition]) -> None:
        self.states = {TP0: SimpleNamespace(timestamp=None), TP1: SimpleNamespace(timestamp=None)}
        self.delay, self.updates = delay, updates
        self.parsed_at = 0.0

    async def _proc_fetch_request(self, assignment: Any, node_id: int, request: Any) -> bool:
        await asyncio.sleep(self.delay)
        self.parsed_at = time.time()
        for tp in self.updates:
            self.states[tp].timestamp = int(self.parsed_at * 1000)
        return True


def fetch(fetcher: Fetcher, sent_at: dict[TopicPartition, float]) -> float:
    request = SimpleNamespace(topics=[("rx", [(0, 10, 1 << 20), (1, 7, 1 << 20)])])
    assignment = SimpleNamespace(state_value=fetcher.states.__getitem__)
    before = time.time()
    assert asyncio.run(fetcher._proc_fetch_request(assignment, 1, request)) is True
    return before


def test_a_partition_the_response_updated_is_stamped_with_the_requests_sending() -> None:
    fetcher, sent_at = Fetcher(delay=0.05, updates={TP0}), {}
    stamp_fetches_at_sending(fetcher, sent_at)
    before = fetch(fetcher, sent_at)
    assert set(sent_at) == {TP0}  # TP1's high watermark did not come with this response
    assert before <= sent_at[TP0] < before + 0.02  # when it was sent
    assert fetcher.parsed_at - sent_at[TP0] >= 0.05  # not when it was parsed


def test_a_later_response_moves_the_stamp_on() -> None:
    fetcher, sent_at = Fetcher(delay=0.0, updates={TP0, TP1}), {}
    stamp_fetches_at_sending(fetcher, sent_at)
    fetch(fetcher, sent_at)
    first = dict(sent_at)
    time.sleep(0.01)  # two fetches at distinct wall times
    fetch(fetcher, sent_at)
    assert all(sent_at[tp] > first[tp] for tp in (TP0, TP1))

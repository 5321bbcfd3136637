"""The reorder buffer releases exactly what one heap would, in the same order, whatever the lanes."""

from __future__ import annotations

import heapq
import itertools
import random

from hypothesis import given
from hypothesis import strategies as st

from monitor.reorder import ReorderBuffer


@given(seed=st.integers(0, 2**32 - 1), lanes=st.integers(1, 4), disorder=st.floats(0, 1))
def test_releases_in_the_order_of_one_heap(seed: int, lanes: int, disorder: float) -> None:
    rng = random.Random(seed)
    buffer, heap, seq = ReorderBuffer(), [], itertools.count()
    released: list[tuple[object, ...]] = []
    expected: list[tuple[object, ...]] = []
    clock = 0.0
    for _ in range(300):
        if rng.random() < 0.8:
            clock += rng.choice((0.0, 1.0, 2.5))  # equal times too: the sequence number orders them
            at = clock - (rng.random() * 20 if rng.random() < disorder else 0.0)
            entry = (at, rng.randrange(3), next(seq), object())
            buffer.push(entry, lane=rng.randrange(lanes))
            heapq.heappush(heap, entry)
        else:
            until = clock - rng.random() * 10
            released.extend(buffer.release(until))
            while heap and heap[0][0] <= until:
                expected.append(heapq.heappop(heap))
        assert len(buffer) == len(heap)
    released.extend(buffer.release(float("inf")))
    expected.extend(heapq.heappop(heap) for _ in range(len(heap)))
    assert released == expected
    assert len(buffer) == 0


def test_an_entry_older_than_its_lane_s_newest_still_comes_out_first() -> None:
    buffer = ReorderBuffer()
    for entry, lane in (((5.0, 0), "rx"), ((7.0, 1), "rx"), ((6.0, 2), "rx"), ((1.0, 3), "pain")):
        buffer.push(entry, lane)
    assert list(buffer.release(6.0)) == [(1.0, 3), (5.0, 0), (6.0, 2)]
    assert len(buffer) == 1
    assert list(buffer.release(10.0)) == [(7.0, 1)]

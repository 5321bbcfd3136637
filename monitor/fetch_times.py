"""When each partition was last known complete: the time a fetch request was *sent*.

A live topic's watermark stands at the time up to which everything appended to it has been
delivered (:class:`monitor.live.TopicClocks`). The broker reads a partition's high
watermark for a fetch response somewhere between receiving the request and answering it
(Apache Kafka and the embedded broker both hold a request up to ``fetch_max_wait`` when
nothing is new), so the only time sure to be no later than that reading is when the
request was sent. aiokafka stamps each partition with the time it *parsed* the response
(``last_poll_timestamp``): later than the reading by the response's transit and the
consumer thread's delay, tens of milliseconds on a busy machine, which at a short allowed
lateness would count records appended just after the reading as late.

:func:`stamp_fetches_at_sending` wraps aiokafka's per-request coroutine, which sends its
request as soon as it runs, and records the moment it started for every partition the
response gave a high watermark for. The stamp is written after aiokafka wrote the high
watermark, so a reader that takes the stamp first and the high watermark second can pair an
older stamp with a newer high watermark (safe: too early), never the reverse.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from aiokafka.structs import TopicPartition


def stamp_fetches_at_sending(fetcher: Any, sent_at: MutableMapping[TopicPartition, float]) -> None:
    """Make ``fetcher`` (aiokafka's ``Fetcher``) record in ``sent_at`` when the request behind
    each partition's latest high watermark was sent (POSIX seconds)."""
    process: Callable[..., Awaitable[Any]] = fetcher._proc_fetch_request  # noqa: SLF001 - no public hook

    async def process_stamped(assignment: Any, node_id: int, request: Any) -> Any:
        sent = time.time()
        sent_ms = int(sent * 1000)
        result = await process(assignment, node_id, request)
        for topic, partitions in request.topics:
            for partition, *_ in partitions:
                tp = TopicPartition(topic, partition)
                try:
                    state = assignment.state_value(tp)
                except Exception:  # noqa: BLE001 - no longer assigned
                    continue
                # aiokafka stamps the partitions this response updated with its parse time
                if state is not None and state.timestamp is not None and state.timestamp >= sent_ms:
                    sent_at[tp] = sent
        return result

    fetcher._proc_fetch_request = process_stamped  # noqa: SLF001


def stamping_on_start(client: Any, sent_at: MutableMapping[TopicPartition, float]) -> Callable[[], Awaitable[None]]:
    """``client.start`` (an ``AIOKafkaConsumer``, whose fetcher exists once started) that
    then installs :func:`stamp_fetches_at_sending`."""
    start = client.start

    async def start_and_stamp() -> None:
        await start()
        stamp_fetches_at_sending(client._fetcher, sent_at)  # noqa: SLF001

    return start_and_stamp

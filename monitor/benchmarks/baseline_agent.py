"""The live benchmark's baseline: a bare faust agent that decodes each record and counts it.

It runs on the same broker, topics and feed as the monitor (its own consumer group), with
faust's defaults and its ordinary per-event ``async for``: the cost of faust's machinery
with no work behind it. Only its consumer group's timings are the monitor's
(:func:`monitor.worker.group_timings` of the default session timeout): with faust's 60 s
ones each run spent about 33 s joining its group before the first record (35 s a run of
the quick bench's 6,855 events, against 10.5 s with these), and the bench runs the agent
twice a row. They bear on joining and failover, not on the per-event path measured.

When it has counted ``--expect`` records it writes the wall times of its first and last
record, and where the first came from (topic, partition, offset), to ``--out`` (JSON),
and keeps running until terminated. It starts where its consumer group's committed
offsets are (the bench commits them past the feed's warm-up), else at the topics' start.

    python -m monitor.benchmarks.baseline_agent --broker HOST:PORT --app-id ID \\
        --topics T1 T2 T3 --expect N --out PATH
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import faust

from ..settings import ServiceSettings
from ..worker import faust_broker, group_timings


def create_baseline_app(broker: str, app_id: str, topics: list[str], expect: int, out: Path) -> faust.App:
    app = faust.App(app_id, broker=faust_broker(broker), store="memory://", key_serializer="raw",
                    value_serializer="raw", web_enabled=False, consumer_auto_offset_reset="earliest",
                    **group_timings(ServiceSettings.model_fields["session_timeout"].default))
    source = app.topic(*topics, key_type=bytes, value_type=bytes)

    @app.agent(source, name="baseline-count")
    async def count(stream: faust.StreamT) -> None:
        counted = 0
        first = 0.0
        first_record: list[Any] = []
        async for value in stream:
            json.loads(value)
            counted += 1
            if counted == 1:
                first = time.time()
                message = stream.current_event.message  # type: ignore[union-attr]
                first_record = [message.topic, message.partition, message.offset]
            if counted == expect:
                out.write_text(json.dumps({"first": first, "last": time.time(), "count": counted,
                                           "first_record": first_record}))

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--broker", required=True)
    parser.add_argument("--app-id", required=True)
    parser.add_argument("--topics", nargs="+", required=True)
    parser.add_argument("--expect", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    app = create_baseline_app(args.broker, args.app_id, args.topics, args.expect, args.out)
    worker = faust.Worker(app, loglevel="warning", redirect_stdouts=False, quiet=True)
    worker.spinner = None  # as the monitor does: faust's spinner turns DEBUG logging on (monitor.worker)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()

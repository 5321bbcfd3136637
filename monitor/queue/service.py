"""The queue service: Kafka in and out around the web app (aiokafka, on aiohttp's loop).

Why aiokafka and not a faust app with web views: the worklist must show *every* alert,
and a faust table is partitioned by its consumer group's assignment, so two queue replicas
would each see half of the alerts. The queue is a read model instead: it assigns itself
every partition of the alerts and alert-actions topics with no consumer group, reads both
from the beginning at start (so a restart rebuilds the same worklist from the topics,
which are the durable record) and follows them. Actions are produced keyed by patient id
(the default murmur2 partitioner, as the inputs), so the worker that owns the patient's
state consumes them with the patient's inputs.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Iterable

from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pydantic import ValidationError

from ..alerts import AlertRecord
from ..broker import at_end
from ..events import AlertAction
from ..kafka_clients import security_options
from ..settings import ServiceSettings
from .auth import Authenticator
from .metrics import QueueMetrics
from .web import QueueApp
from .worklist import Worklist

log = logging.getLogger(__name__)


class QueueService:
    """Consumes the two topics into a worklist, publishes actions, serves the web app."""

    def __init__(self, service: ServiceSettings, auth: Authenticator, metrics: QueueMetrics | None = None) -> None:
        self.service = service
        self.metrics = metrics or QueueMetrics()
        self.worklist = Worklist()
        self.web = QueueApp(self.worklist, auth, self.metrics, self.publish, ready=lambda: self._caught_up)
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._caught_up = False
        self._ends: dict[TopicPartition, int] = {}

    def application(self) -> web.Application:
        app = self.web.build()
        app.on_startup.append(self._start)
        app.on_cleanup.append(self._stop)
        return app

    # -- lifecycle --------------------------------------------------------------------------
    async def _start(self, app: web.Application) -> None:
        options = dict(bootstrap_servers=self.service.bootstrap, **security_options(self.service))
        self._producer = AIOKafkaProducer(acks="all", **options)
        await self._producer.start()
        self._consumer = AIOKafkaConsumer(group_id=None, enable_auto_commit=False, auto_offset_reset="earliest",
                                          **options)
        await self._consumer.start()
        partitions = []
        for topic in (self.service.alerts_topic, self.service.actions_topic):
            found = await self._partitions(topic)
            partitions.extend(TopicPartition(topic, p) for p in sorted(found))
        self._consumer.assign(partitions)
        await self._consumer.seek_to_beginning(*partitions)
        self._ends = await self._consumer.end_offsets(partitions)
        self._task = asyncio.create_task(self._follow(), name="medsafety-queue-follow")

    async def _partitions(self, topic: str) -> Iterable[int]:
        assert self._consumer is not None
        for _ in range(100):  # metadata of a just-created topic propagates; the broker has no event for it
            found = self._consumer.partitions_for_topic(topic)
            if found:
                return found
            await self._consumer._client.force_metadata_update()  # noqa: SLF001 - aiokafka has no public call
            await asyncio.sleep(0.1)
        raise RuntimeError(f"topic {topic} not found: start a worker first (it creates the topics)")

    async def _stop(self, app: web.Application) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        for client in (self._consumer, self._producer):
            if client is not None:
                await client.stop()

    # -- Kafka --------------------------------------------------------------------------------
    async def publish(self, action: AlertAction) -> float:
        """Record ``action`` on the actions topic (acknowledged by the broker); returns its
        timestamp in seconds, the wall time the worklist orders it by."""
        assert self._producer is not None
        metadata = await self._producer.send_and_wait(
            self.service.actions_topic, key=action.patient.id.encode(),
            value=action.model_dump_json(exclude_none=True).encode())
        return metadata.timestamp / 1000.0 if metadata.timestamp and metadata.timestamp > 0 else self.web.clock()

    async def _follow(self) -> None:
        assert self._consumer is not None
        consumer = self._consumer
        while True:
            batches = await consumer.getmany(timeout_ms=500, max_records=1000)
            for tp, messages in batches.items():
                for message in messages:
                    self._apply(tp.topic, message.value, message.timestamp / 1000.0)
            if not self._caught_up:
                positions = {tp: await consumer.position(tp) for tp in self._ends}
                if all(at_end(positions[tp], end, consumer.highwater(tp)) for tp, end in self._ends.items()):
                    self._caught_up = True
                    self.metrics.caught_up.set(1)
                    log.info("queue caught up: %d alerts on the worklist", len(self.worklist.entries))

    def _apply(self, topic: str, value: bytes | None, at: float) -> None:
        role = "alerts" if topic == self.service.alerts_topic else "actions"
        try:
            if role == "alerts":
                applied = self.worklist.add_record(AlertRecord.model_validate_json(value or b""), at)
            else:
                applied = self.worklist.add_action(AlertAction.model_validate_json(value or b""), at)
        except ValidationError:
            self.metrics.records.labels(role, "invalid").inc()  # the worker dead-letters invalid actions
            return
        self.metrics.records.labels(role, "applied" if applied else "duplicate").inc()


async def serve(queue: QueueService, host: str, port: int, started: Callable[[str], None]) -> None:
    """Serve until SIGINT/SIGTERM; ``started`` gets the URL once the port is bound."""
    runner = web.AppRunner(queue.application(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1]
    started(f"http://{host}:{bound}/")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()

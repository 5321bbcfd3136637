"""``medmon gateway``: an HL7 v2 MLLP listener that publishes canonical events to the
input topics, and only then acknowledges.

Thin by design: MLLP framing and ACK messages are python-hl7's (``hl7.mllp``), the
meaning of fields is :mod:`monitor.hl7v2`'s, and this module only orders the steps:

1. read one MLLP block; map it (never raises);
2. a message mapped to events: publish every event to the input topic of its type,
   keyed by the UTF-8 patient id (the worker's co-partitioning), with ``acks=all``, and
   wait for the broker's acknowledgement of each;
3. only then answer ``AA``. A broker that does not acknowledge within
   ``HL7_PUBLISH_TIMEOUT`` gets the sender ``AE`` with ERR-3 207 (internal error): nothing
   was durably published, so the interface engine should resend. Never ``AA`` for a
   message not durably published;
4. a message that cannot be parsed or mapped: ``AR`` (unsupported type or structure) or
   ``AE`` (content), the reason in MSA-3 and ERR, and the original bytes on the
   dead-letter topic (written before the answer; if that write fails, ``AE`` 207);
5. idempotency: a message whose sender (MSH-3 + MSH-4) and control id (MSH-10) were
   published within the last ``HL7_DEDUP_WINDOW`` messages of that sender is answered
   ``AA`` again without publishing (an interface engine's resend after a lost ACK).
   The same control id with different content is refused (``AR``, ``control_id_reused``):
   acknowledging it would lose the second message. The window is in memory; after a
   gateway restart a resend is published again with the same event ids, which the
   monitor drops per patient.

Why aiokafka rather than kafka-python here: the gateway is an asyncio server, and
aiokafka's producer awaits the broker's acknowledgement on the event loop (no thread
per in-flight message, cancellable with a timeout); it is the client the worker already
uses through faust, with the same default (murmur2) partitioner as kafka-python and the
Java clients, so a patient's events land on the partition number the other producers
use. Connection security comes from :func:`monitor.kafka_clients.security_options`,
whose keyword names aiokafka shares.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from hl7.mllp import InvalidBlockError, start_hl7_server

from .gateway_metrics import GatewayMetrics
from .gateway_settings import GatewaySettings
from .health import Health
from .hl7v2 import Hl7Mapper, Hl7Rejection, Hl7Result, build_ack
from .settings import ServiceSettings

log = logging.getLogger(__name__)

#: ``medsafety-topic`` of the gateway's dead letters (the worker's name the input topic).
DEAD_LETTER_SOURCE = "hl7-mllp"


@dataclass(frozen=True, slots=True)
class OutgoingRecord:
    topic: str
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


class PublishError(Exception):
    """The broker did not acknowledge every record in time."""


class RecordSink(Protocol):
    async def publish(self, records: list[OutgoingRecord]) -> None:
        """Return once the broker acknowledged every record; PublishError otherwise."""


class KafkaSink:
    """An aiokafka producer with ``acks=all`` (see the module docstring for why aiokafka)."""

    def __init__(self, url: str, service: ServiceSettings, timeout: float) -> None:
        self.url = url
        self.service = service
        self.timeout = timeout
        self._producer = None

    async def start(self) -> None:
        from aiokafka import AIOKafkaProducer

        from .kafka_clients import security_options

        self._producer = AIOKafkaProducer(bootstrap_servers=self.url, acks="all", client_id="medsafety-gateway",
                                          request_timeout_ms=int(self.timeout * 1000), **security_options(self.service))
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

    async def publish(self, records: list[OutgoingRecord]) -> None:
        assert self._producer is not None, "start() first"

        async def send_all() -> None:
            futures = [await self._producer.send(r.topic, r.value, key=r.key, headers=list(r.headers))
                       for r in records]
            await asyncio.gather(*futures)

        try:
            await asyncio.wait_for(send_all(), self.timeout)
        except Exception as exc:  # timeouts and every Kafka error: the sender must resend
            raise PublishError(type(exc).__name__) from exc


class ControlIdWindow:
    """The last ``per_sender`` control ids published per sender, with their content digest
    (bounded: at most ``max_senders`` senders, least recently seen forgotten first)."""

    def __init__(self, per_sender: int, max_senders: int = 1024) -> None:
        self.per_sender = per_sender
        self.max_senders = max_senders
        self._senders: OrderedDict[str, OrderedDict[str, str]] = OrderedDict()

    def digest_of(self, sender: str, control_id: str) -> str | None:
        ids = self._senders.get(sender)
        if ids is None or control_id not in ids:
            return None
        ids.move_to_end(control_id)
        return ids[control_id]

    def remember(self, sender: str, control_id: str, digest: str) -> None:
        if self.per_sender == 0:
            return
        ids = self._senders.get(sender)
        if ids is None:
            ids = self._senders[sender] = OrderedDict()
            while len(self._senders) > self.max_senders:
                self._senders.popitem(last=False)
        self._senders.move_to_end(sender)
        ids[control_id] = digest
        ids.move_to_end(control_id)
        while len(ids) > self.per_sender:
            ids.popitem(last=False)


class Gateway:
    """Maps, publishes and acknowledges HL7 messages; :meth:`handle` is one message."""

    def __init__(self, sink: RecordSink, service: ServiceSettings, settings: GatewaySettings,
                 metrics: GatewayMetrics | None = None, health: Health | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.sink = sink
        self.service = service
        self.settings = settings
        self.metrics = metrics or GatewayMetrics()
        self.health = health
        self.mapper = Hl7Mapper(zone=settings.zone, max_bytes=settings.hl7_max_message_bytes)
        self.window = ControlIdWindow(settings.hl7_dedup_window)
        self._clock = clock
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._lock_users: dict[tuple[str, str], int] = {}

    # one message ------------------------------------------------------------------------

    async def handle(self, raw: bytes) -> bytes:
        """The ACK for one MLLP block (after publishing, or dead-lettering, what it holds)."""
        started = self._clock()
        result = self.mapper.map(raw)
        self.metrics.received.labels(result.message_type_label).inc()
        code, rejection = await self._process(raw, result)
        return self._acknowledge(result, code, rejection, started)

    async def refuse_frame(self, reason: str, detail: str) -> bytes:
        """The ACK for a block the MLLP reader could not deliver (oversized, bad framing):
        counted and dead-lettered without bytes (the reader discarded them)."""
        started = self._clock()
        result = Hl7Result(rejection=Hl7Rejection(reason, detail))
        self.metrics.received.labels("other").inc()
        code, rejection = await self._reject(b"", result, result.rejection)  # type: ignore[arg-type]
        return self._acknowledge(result, code, rejection, started)

    def _acknowledge(self, result: Hl7Result, code: str, rejection: Hl7Rejection | None, started: float) -> bytes:
        ack = build_ack(result, code, uuid.uuid4().hex[:20], rejection, self.settings.hl7_application)
        self.metrics.acked.labels(code).inc()
        self.metrics.latency.observe(self._clock() - started)
        return ack

    async def _process(self, raw: bytes, result: Hl7Result) -> tuple[str, Hl7Rejection | None]:
        if result.rejection is not None:
            return await self._reject(raw, result, result.rejection)
        assert result.header is not None
        key = (result.header.sender, result.header.control_id)
        async with self._lock(key):  # a resend racing its original waits for it
            seen = self.window.digest_of(*key)
            if seen is not None:
                if seen == result.content_digest:
                    self.metrics.resends.inc()
                    return "AA", None
                return await self._reject(raw, result, Hl7Rejection(
                    "control_id_reused", "MSH-10: control id already used by this sender for a different message"))
            records = [OutgoingRecord(self.service.topic_for_type[event.type], event.patient.id.encode(),
                                      event.model_dump_json(exclude_none=True).encode())
                       for event in result.events]
            if records:
                failure = await self._publish(records)
                if failure is not None:
                    return "AE", failure
            self.window.remember(*key, result.content_digest)
            for event in result.events:
                self.metrics.published.labels(event.type).inc()
            return "AA", None

    async def _reject(self, raw: bytes, result: Hl7Result, rejection: Hl7Rejection) -> tuple[str, Hl7Rejection]:
        header = result.header
        headers = [("medsafety-topic", DEAD_LETTER_SOURCE), ("medsafety-reason", rejection.reason),
                   ("medsafety-detail", rejection.detail), ("medsafety-message-type", result.message_type_label)]
        if header is not None:
            headers += [("medsafety-sender", header.sender), ("medsafety-control-id", header.control_id)]
        letter = OutgoingRecord(self.service.dead_letter_topic, header.sender.encode() if header else None, raw,
                                tuple((name, value.encode()) for name, value in headers))
        failure = await self._publish([letter])
        if failure is not None:
            return "AE", failure
        self.metrics.rejected.labels(rejection.reason).inc()
        self.metrics.dead_letters.inc()
        log.warning("HL7 message refused (%s): %s, %s from %s, control id %s", rejection.ack_code, rejection,
                    result.message_type_label, header.sender if header else "unknown sender",
                    header.control_id if header else "unknown")
        return rejection.ack_code, rejection

    async def _publish(self, records: list[OutgoingRecord]) -> Hl7Rejection | None:
        try:
            await self.sink.publish(records)
        except PublishError as exc:
            self._broker_state(False)
            self.metrics.rejected.labels("publish_failed").inc()
            log.warning("broker did not acknowledge within %.1f s (%s): answering AE so the sender resends",
                        self.settings.hl7_publish_timeout, exc)
            return Hl7Rejection("publish_failed", "the broker did not acknowledge the events; resend the message")
        self._broker_state(True)
        return None

    def _broker_state(self, connected: bool) -> None:
        self.metrics.broker_connected.set(1 if connected else 0)
        if self.health is not None:
            self.health.broker_connected = connected

    def _lock(self, key: tuple[str, str]) -> "_KeyLock":
        return _KeyLock(self, key)

    # the MLLP server --------------------------------------------------------------------

    async def serve_connection(self, reader, writer) -> None:  # type: ignore[no-untyped-def]
        """One interface-engine connection: messages in order, one ACK each."""
        self.metrics.connections.inc()
        try:
            while True:
                try:
                    block = await reader.readblock()
                except asyncio.IncompleteReadError:
                    break  # the sender closed the connection
                except InvalidBlockError:
                    ack = await self.refuse_frame("invalid_frame", "MLLP block must start with <VT> (0x0B)")
                except ValueError:  # the stream limit: the reader discarded the block
                    ack = await self.refuse_frame("oversized", f"MLLP block exceeds "
                                                               f"{self.settings.hl7_max_message_bytes} bytes")
                else:
                    ack = await self.handle(block)
                writer.writeblock(ack)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self.metrics.connections.dec()
            writer.close()


class _KeyLock:
    """An asyncio lock per (sender, control id), dropped when nobody holds or awaits it."""

    def __init__(self, gateway: Gateway, key: tuple[str, str]) -> None:
        self.gateway, self.key = gateway, key

    async def __aenter__(self) -> None:
        g = self.gateway
        g._lock_users[self.key] = g._lock_users.get(self.key, 0) + 1
        await g._locks.setdefault(self.key, asyncio.Lock()).acquire()

    async def __aexit__(self, *exc: object) -> None:
        g = self.gateway
        g._locks[self.key].release()
        g._lock_users[self.key] -= 1
        if g._lock_users[self.key] == 0:
            del g._lock_users[self.key], g._locks[self.key]


async def serve(service: ServiceSettings, settings: GatewaySettings, stop: asyncio.Event) -> None:
    """Run the gateway until ``stop`` is set: topics, producer, HTTP endpoints, MLLP."""
    from .broker import ensure_topics
    from .health import serve as serve_http
    from .kafka_clients import security_options

    url = service.bootstrap
    await asyncio.to_thread(ensure_topics, url, [*service.input_topics, service.dead_letter_topic],
                            service.partitions, service.replication_factor, security_options(service))
    metrics = GatewayMetrics()
    health = Health()
    health.recovered, health.rebalancing = True, False  # no group, no tables: ready once the broker is
    sink = KafkaSink(url, service, settings.hl7_publish_timeout)
    await sink.start()
    gateway = Gateway(sink, service, settings, metrics, health)
    gateway._broker_state(True)
    http = serve_http(metrics.registry, health, settings.hl7_metrics_port, service.metrics_host)
    server = await start_hl7_server(gateway.serve_connection, settings.hl7_host, settings.hl7_port,
                                    limit=settings.hl7_max_message_bytes)
    port = server.sockets[0].getsockname()[1]
    base = f"http://{service.metrics_host}:{http.server_port}"
    print(f"medsafety gateway: mllp {settings.hl7_host}:{port}, broker {url}, metrics {base}/metrics, "
          f"health {base}/healthz {base}/readyz", file=sys.stderr, flush=True)
    try:
        while not stop.is_set():
            health.beat()
            try:
                await asyncio.wait_for(stop.wait(), 0.5)
            except asyncio.TimeoutError:
                pass
    finally:
        server.close()
        await server.wait_closed()
        await sink.stop()
        http.shutdown()


def run(service: ServiceSettings | None = None, settings: GatewaySettings | None = None) -> int:
    """``medmon gateway``: serve until SIGINT or SIGTERM."""
    service = service or ServiceSettings.from_env()
    settings = settings or GatewaySettings.from_env()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(service, settings, stop)

    asyncio.run(main())
    return 0

"""Prometheus metrics of the HL7 v2 gateway, on its own registry and port.

Bounded labels only: the message type is one of :data:`monitor.hl7v2.MESSAGE_TYPES` or
``other``, the ACK code one of AA/AE/AR, the reason a key of
:data:`monitor.hl7v2.REJECTIONS`, the event type one of the three canonical types. No
patient identifier, sender or control id ever appears in a label.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from .hl7v2 import MESSAGE_TYPES, REJECTIONS

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class GatewayMetrics:
    """Every metric ``medmon gateway`` exports."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.received = Counter("medsafety_gateway_messages_received", "HL7 messages received, by message type.",
                                ["message_type"], registry=r)
        self.acked = Counter("medsafety_gateway_acked", "ACKs sent, by acknowledgment code (AA, AE, AR).",
                             ["code"], registry=r)
        self.rejected = Counter("medsafety_gateway_rejected", "Messages answered AE or AR, by reason.",
                                ["reason"], registry=r)
        self.published = Counter("medsafety_gateway_events_published",
                                 "Canonical events published to the input topics (broker-acknowledged), by type.",
                                 ["type"], registry=r)
        self.resends = Counter("medsafety_gateway_resends",
                               "Messages whose control id was already published: acknowledged AA, not published.",
                               registry=r)
        self.dead_letters = Counter("medsafety_gateway_dead_letters",
                                    "Rejected messages written to the dead-letter topic.", registry=r)
        self.latency = Histogram("medsafety_gateway_latency_seconds",
                                 "From a message's last byte received to its ACK written.",
                                 buckets=_LATENCY_BUCKETS, registry=r)
        self.connections = Gauge("medsafety_gateway_connections", "Open MLLP connections.", registry=r)
        self.broker_connected = Gauge("medsafety_gateway_broker_connected",
                                      "1 while the last publish was acknowledged, 0 after a failure.", registry=r)
        for label in (*MESSAGE_TYPES, "other"):  # export zeros, so rates work from the start
            self.received.labels(label)
        for code in ("AA", "AE", "AR"):
            self.acked.labels(code)
        for reason in REJECTIONS:
            self.rejected.labels(reason)

"""The queue's Prometheus metrics (own registry, served at the queue's ``/metrics``).

Labels are bounded: action, alert kind, reason (an intervention code or a snooze choice's
minutes), severity. No patient identifier, no user name.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

#: Time to acknowledge: from the alert reaching the queue to its acknowledgement (wall time).
_ACK_BUCKETS = (60, 300, 900, 1800, 3600, 2 * 3600, 4 * 3600, 8 * 3600, 24 * 3600, 72 * 3600)


class QueueMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.actions = Counter("medsafety_queue_actions", "Actions taken in the queue, by action, alert kind and "
                               "reason (intervention code, or snooze minutes).", ["action", "kind", "reason"],
                               registry=r)
        self.time_to_acknowledge = Histogram(
            "medsafety_queue_time_to_acknowledge_seconds",
            "Wall time from an alert reaching the queue to its acknowledgement.", buckets=_ACK_BUCKETS, registry=r)
        self.open_alerts = Gauge("medsafety_queue_open_alerts", "Alerts on the open worklist, by severity.",
                                 ["severity"], registry=r)
        self.records = Counter("medsafety_queue_records", "Records read by the queue, by topic role "
                               "(alerts, actions) and outcome (applied, duplicate, invalid).",
                               ["topic", "outcome"], registry=r)
        self.caught_up = Gauge("medsafety_queue_caught_up", "1 once the queue has read both topics to the end "
                               "offsets it found at start (the worklist is complete).", registry=r)

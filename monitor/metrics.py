"""Prometheus metrics of the live worker (prometheus-client, served on ``/metrics``).

Seconds as the unit, ``_total`` counters, and only bounded labels: event type, rejection
reason (a code from :data:`monitor.validation.REASONS`), alert kind/severity/status, topic
and partition. No patient identifier ever appears in a label.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """Every metric the worker exports, on its own registry (several workers may share a
    test process)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.events_processed = Counter("medsafety_events_processed", "Valid input events processed, by type.",
                                        ["type"], registry=r)
        self.events_invalid = Counter("medsafety_events_invalid", "Input records rejected and dead-lettered, by reason.",
                                      ["reason"], registry=r)
        self.events_duplicate = Counter("medsafety_events_duplicate", "Events dropped as re-deliveries (same event_id).",
                                        registry=r)
        self.events_late = Counter("medsafety_events_late",
                                   "Events older than the watermark: applied at once, not in exact order.", registry=r)
        self.events_rekeyed = Counter("medsafety_events_rekeyed",
                                      "Records keyed other than by patient id, re-keyed once.", registry=r)
        self.orders_unmonitored = Counter("medsafety_orders_unmonitored",
                                          "Orders of drugs outside the monitored classes (accepted, no rule applies).",
                                          registry=r)
        self.alerts = Counter("medsafety_alerts", "Alert records published, by kind, severity and status.",
                              ["kind", "severity", "status"], registry=r)
        self.dead_letters = Counter("medsafety_dead_letters", "Records published to the dead-letter topic.",
                                    registry=r)
        self.processing_latency = Histogram(
            "medsafety_processing_latency_seconds", "Wall time to handle one batch of input records, per record.",
            buckets=_LATENCY_BUCKETS, registry=r)
        self.alert_latency = Histogram(
            "medsafety_alert_latency_seconds",
            "From the triggering record's Kafka timestamp to the alert's publish.", buckets=_LATENCY_BUCKETS,
            registry=r)
        self.gc_pauses = Histogram(
            "medsafety_gc_pause_seconds", "Pauses of Python's cyclic garbage collector, by generation (2: a full "
            "collection, which walks every patient state).", ["generation"], buckets=_LATENCY_BUCKETS, registry=r)
        self.gc_frozen_garbage = Counter(
            "medsafety_gc_frozen_garbage_total", "Unreachable objects the hourly full collection found among what "
            "the commits had frozen: reference cycles kept since they died (monitor.gc_tuning.HeapSettler).",
            registry=r)
        self.watermark = Gauge("medsafety_event_time_watermark_seconds",
                               "Event-time watermark (Unix seconds) per input partition.", ["partition"], registry=r)
        self.active_patients = Gauge("medsafety_active_patients", "Patients held in state on this worker.",
                                     registry=r)
        self.held_events = Gauge("medsafety_held_events", "Events waiting for the watermark (reorder buffer).",
                                 registry=r)
        self.unwritten_patients = Gauge("medsafety_unwritten_patients",
                                        "Patients changed and not yet written to the changelog (written before "
                                        "each offset commit).", registry=r)
        self.states_written = Counter("medsafety_states_written",
                                      "Patient records (a state, or a tombstone for a forgotten patient) sent to "
                                      "the state changelog: one per changed patient per commit.", registry=r)
        self.partitions_held_back = Gauge(
            "medsafety_partitions_held_back", "Input topic-partitions not fetched for now: they run ahead in event "
            "time of a slower topic of the same partition number, whose events they would wait for anyway.",
            registry=r)
        self.assigned_partitions = Gauge("medsafety_assigned_partitions",
                                         "Input partition numbers this worker owns (0 while rebalancing).",
                                         registry=r)
        self.rebalances = Counter("medsafety_rebalances", "Partition assignments received from the group.",
                                  registry=r)
        self.states_fenced = Counter("medsafety_states_fenced",
                                     "State writes dropped because the group had already moved on without this "
                                     "worker (its session expired); the partitions' next owner applies their "
                                     "events again.", registry=r)
        self.records_refetched = Counter("medsafety_records_refetched",
                                         "Records a batch held across a rebalance, dropped unacknowledged: their "
                                         "partition's owner is handed them again from the committed offset.",
                                         registry=r)
        self.broker_connected = Gauge("medsafety_broker_connected",
                                      "1 while the broker answers this worker's probes, 0 during an outage.",
                                      registry=r)
        self.broker_disconnects = Counter("medsafety_broker_disconnects",
                                          "Times the broker stopped answering (outages seen).", registry=r)
        self.ready = Gauge("medsafety_ready", "1 when /readyz answers 200 (in the group, tables recovered).",
                           registry=r)
        self.consumer_lag = Gauge("medsafety_consumer_lag", "End offset minus next offset to process, per partition.",
                                  ["topic", "partition"], registry=r)
        self.actions = Counter("medsafety_actions", "Pharmacist actions from the queue, by action and outcome "
                               "(applied, unknown_alert, duplicate).", ["action", "outcome"], registry=r)
        self._alert_children: dict[tuple[str, str, str], Counter] = {}

    def alert(self, kind: str, severity: str, status: str) -> None:
        key = (kind, severity, status)
        child = self._alert_children.get(key)
        if child is None:
            child = self._alert_children[key] = self.alerts.labels(kind, severity, status)
        child.inc()


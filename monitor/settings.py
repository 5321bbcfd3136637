"""Settings: clinical thresholds and time rules, read from the environment.

Every threshold in ``clinical-rules.md`` marked *(setting)* is a field here. Each field
can be set with an environment variable ``MEDSAFETY_<FIELD NAME IN CAPITALS>``; durations
take seconds (``86400``) or ISO 8601 (``PT24H``, ``P7D``). Defaults are the documented
starting points; ``docs`` below each field says why it exists.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Literal, Mapping, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

ENV_PREFIX = "MEDSAFETY_"

#: Where ``medmon broker`` (the embedded broker) listens unless told otherwise.
LOCAL_BROKER = "127.0.0.1:9092"

_Settings = TypeVar("_Settings", bound=BaseModel)


def read_secret(value: SecretStr | None, path: str | None) -> str | None:
    """A secret given in the environment, else read from its file (e.g. a mounted secret) when needed."""
    if value is not None:
        return value.get_secret_value()
    if path:
        with open(path, encoding="utf-8") as secret:
            return secret.read().strip()
    return None


def _from_env(cls: type[_Settings], environ: Mapping[str, str] | None, overrides: Mapping[str, object]) -> _Settings:
    """``MEDSAFETY_<FIELD>`` variables, then explicit (non-None) overrides, validated."""
    environ = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for name in cls.model_fields:
        raw = environ.get(ENV_PREFIX + name.upper())
        if raw is not None:
            values[name] = raw
    values.update({k: v for k, v in overrides.items() if v is not None})
    return cls.model_validate(values)


class RuleSettings(BaseModel):
    """Thresholds and windows of the detectors (all event time, never wall time)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    factor_set: str = Field("cdc-2022", description="MME conversion-factor set: cdc-2022 or cdc-2016.")
    care_units_file: str | None = Field(
        None, description="JSON list of this hospital's monitored and unmonitored care units "
        "(shape of monitor/knowledge/data/care_units.json); default: the packaged list.")
    allowed_lateness: timedelta = Field(
        timedelta(minutes=10),
        description="How far behind the newest event an event may arrive and still be processed "
        "in exact event-time order. Later events are applied at the watermark and counted as late.",
    )
    oih_window: timedelta = Field(timedelta(days=7), description="Window of the OIH signature.")
    oih_min_rise_fraction: float = Field(0.30, ge=0, description="Minimum MME rise over the window's lowest total.")
    oih_min_rise_mme: float = Field(10.0, ge=0, description="Minimum absolute MME rise.")
    oih_min_exposure: timedelta = Field(
        timedelta(hours=24), description="Opioid exposure needed before a rise counts (naive starts excluded)."
    )
    oih_pain_delay: timedelta = Field(
        timedelta(hours=4), description="Scores count as 'after the escalation' from this long after it."
    )
    oih_min_pain_rise: float = Field(2.0, gt=0, description="Median pain rise that is clinically meaningful.")
    oih_min_scores: int = Field(2, ge=1, description="Scores needed on each side of the escalation.")
    rotation_window: timedelta = Field(
        timedelta(hours=24), description="A stop of one opioid and start of another this close is a rotation."
    )
    mme_caution: float = Field(50.0, description="CDC: caution at or above this daily MME.")
    mme_high: float = Field(90.0, description="CDC: strong caution; raises OIH severity to high.")
    elderly_age: int = Field(65, ge=0, description="Age from which co-prescription and laxative alerts rise.")
    prn_only_step_down: bool = Field(True, description="PRN-only co-prescriptions alert one severity lower.")
    one_time_active: timedelta = Field(
        timedelta(hours=12), description="How long a one-time dose counts as active for co-prescription."
    )
    laxative_grace: timedelta = Field(timedelta(hours=24), description="Grace period before missing-laxative.")
    docusate_counts_as_bowel_regimen: bool = Field(False, description="Docusate alone is a softener, not a regimen.")
    max_pain_scores: int = Field(48, ge=4, description="Pain scores kept per patient (bounded state).")
    recent_event_ids: int = Field(64, ge=0, description="Event ids remembered per patient for de-duplication.")
    patient_idle_ttl: timedelta = Field(
        timedelta(days=30),
        description="A patient with no event for this long is presumed gone (a missed discharge message): "
        "open alerts resolve with reason 'inactive' and the state is forgotten (a discharge forgets at once). "
        "Keeps state bounded when a feed never sends discharges.",
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> "RuleSettings":
        """Build settings from ``MEDSAFETY_*`` variables, then explicit overrides."""
        return _from_env(cls, environ, overrides)

    @property
    def rule_version(self) -> str:
        """Identifies the rules and conversion factors an alert was computed with."""
        return f"{RULES_VERSION}+{self.factor_set}"


#: Bump when a rule's logic changes, so alerts can be traced to the logic that made them.
RULES_VERSION = "medsafety-rules/1"


class ServiceSettings(BaseModel):
    """The live service: broker, topics, ports. ``MEDSAFETY_<NAME>`` variables, like the rules.

    With no ``broker_url`` the CLI starts the embedded broker on loopback (quick start).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)  # secrets

    broker_url: str | None = Field(None, description="Kafka bootstrap servers, e.g. kafka-1:9092,kafka-2:9092.")
    app_id: str = Field("medsafety", description="Consumer group and faust application id.")
    rx_topic: str = Field("medsafety.rx-orders", description="Input: prescription events, keyed by patient id.")
    pain_topic: str = Field("medsafety.pain-scores", description="Input: pain-score events, keyed by patient id.")
    patient_topic: str = Field("medsafety.patient-updates", description="Input: patient updates, keyed by patient id.")
    repartition_topic: str = Field(
        "medsafety.rekeyed", description="Records that arrived keyed otherwise, re-keyed by patient id (one step).")
    alerts_topic: str = Field("medsafety.alerts", description="Output: alert records, keyed by patient id.")
    actions_topic: str = Field(
        "medsafety.alert-actions", description="The pharmacist queue's actions (acknowledge, snooze) and their "
        "audit, keyed by patient id and co-partitioned with the inputs.")
    dead_letter_topic: str = Field("medsafety.dead-letter", description="Output: rejected input with its reason.")
    data_dir: str | None = Field(
        None, description="Directory of the worker's faust data (faust's datadir; with the in-memory store it "
        "holds only faust's empty version and table directories; the patients live in the changelog), made with "
        "its parents. Default: '<APP_ID>-data' in the working directory, as faust does. Set it where the working "
        "directory is not writable (a read-only container root).")
    partitions: int = Field(4, ge=1, description="Partitions of topics the monitor creates (inputs co-partitioned).")
    replication_factor: int = Field(1, ge=1, description="Replication factor of topics the monitor creates.")
    metrics_port: int = Field(9464, ge=0, le=65535, description="Port of /metrics (0: any free port).")
    metrics_host: str = Field("127.0.0.1", description="Interface of /metrics (0.0.0.0 in containers).")
    max_record_bytes: int = Field(64 * 1024, ge=256, description="Larger input records are dead-lettered unread.")
    idle_advance: timedelta = Field(
        timedelta(seconds=1),
        description="Live mode only: when a partition is idle this long (wall time), its event time advances by "
        "the wall time elapsed, so deadline alerts still fire on a quiet feed.")
    batch_size: int = Field(500, ge=1, description="Most records handled per batch; also the most a consumer "
                            "poll hands over, and the inbox holds two batches (the rest of a fetch waits in "
                            "aiokafka's buffer as bytes, which the garbage collector does not walk).")
    batch_within: float = Field(
        0.01, gt=0, description="Longest a batch waits to fill (s). A backlog fills batches at once; a live "
        "feed's records wait this long at most, so it adds to alert latency.")
    fetch_max_wait: float = Field(
        0.05, gt=0, le=30,
        description="Longest a fetch waits on the broker for new records (s). Apache Kafka answers as soon as "
        "records arrive; the embedded broker answers at the end of the wait, so this bounds the time a record "
        "waits to be fetched (faust fixes 1.5 s).")
    fetch_partition_bytes: int = Field(
        128 * 1024, ge=1024,
        description="Most bytes a fetch brings per partition (a larger record still comes whole). Smaller keeps the "
        "input topics closer together in event time through a backlog, so fewer events wait for the slowest.")
    session_timeout: float = Field(10.0, gt=0, description="Consumer session timeout (s); short = fast failover.")
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="How every Kafka client of the monitor connects (worker, replay, alerts).")
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        None, description="SASL mechanism for SASL_PLAINTEXT/SASL_SSL.")
    sasl_username: str | None = Field(None, description="SASL user name.")
    sasl_password: SecretStr | None = Field(
        None, description="SASL password, from the environment only (never logged); or SASL_PASSWORD_FILE.")
    sasl_password_file: str | None = Field(None, description="File holding the SASL password (e.g. a mounted secret).")
    ssl_cafile: str | None = Field(None, description="PEM CA bundle that signed the brokers' certificates.")
    ssl_certfile: str | None = Field(None, description="PEM client certificate (mutual TLS).")
    ssl_keyfile: str | None = Field(None, description="PEM client private key (mutual TLS).")
    ssl_check_hostname: bool = Field(True, description="Check the broker certificate's host name.")
    commit_every: int = Field(
        300_000, ge=1, description="Commit input offsets after this many processed records (or after "
        "COMMIT_INTERVAL): what bounds a backlog's window (about 85 s of one at 100,000 patients on 2 cores); "
        "lower = less re-delivered after a crash, more state writes.")
    commit_interval: float = Field(
        120.0, gt=0, description="Commit input offsets at least this often (s). Each commit first writes every "
        "patient changed since the last one, once however often it changed, so a longer window writes fewer "
        "states: at a census of 100,000 a 30 s window (about 100,000 events of a backlog) wrote 0.63 states an "
        "event and a 300,000-record one 0.38 (the monitor 3,222 -> 3,392 events/s). 120 s lets COMMIT_EVERY "
        "bound a backlog's window; a crash re-applies at most that much input (its repeated alerts carry the "
        "same id and revision, which the queue drops). A feed that pauses for 0.05 s, and the end of a backlog, "
        "write and commit at once, so at a hospital's rates this bound is rarely reached (Kafka Streams: 30 s; "
        "faust: 2.8 s).")
    processing_guarantee: Literal["at_least_once"] = Field(
        "at_least_once",
        description="at_least_once: alerts may repeat after a crash with the same (alert_id, revision), which "
        "the queue drops. exactly_once is refused: faust-streaming 0.15 commits the alerts topic in a "
        "transaction apart from the input offsets and changelog, and after a SIGKILL on Apache Kafka it "
        "both repeated alerts (62 committed records for 31) and lost one (30 of 31); see README.")
    crash_after: str | None = Field(
        None, description="Testing only: 'step:n' kills the worker (SIGKILL) right after the n-th time it "
        "passes the named step (see monitor/crashpoints.py), to make crash tests repeatable; 'step:n:raise' "
        "makes that step fail instead.")

    @model_validator(mode="after")
    def _security_is_complete(self) -> "ServiceSettings":
        if self.security_protocol.startswith("SASL_"):
            if not (self.sasl_mechanism and self.sasl_username and (self.sasl_password or self.sasl_password_file)):
                raise ValueError(f"{self.security_protocol} needs SASL_MECHANISM, SASL_USERNAME and "
                                 "SASL_PASSWORD or SASL_PASSWORD_FILE")
        if self.sasl_password and self.sasl_password_file:
            raise ValueError("give SASL_PASSWORD or SASL_PASSWORD_FILE, not both")
        return self

    def sasl_secret(self) -> str | None:
        """The SASL password, read from its file at the moment it is needed."""
        return read_secret(self.sasl_password, self.sasl_password_file)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> "ServiceSettings":
        return _from_env(cls, environ, overrides)

    @property
    def bootstrap(self) -> str:
        """The configured broker, else where ``medmon broker`` listens by default."""
        return self.broker_url or LOCAL_BROKER

    @property
    def input_topics(self) -> tuple[str, str, str]:
        return (self.rx_topic, self.pain_topic, self.patient_topic)

    @property
    def consumed_topics(self) -> tuple[str, ...]:
        """Every co-partitioned topic the worker consumes: inputs, re-key, pharmacist actions."""
        return (*self.input_topics, self.repartition_topic, self.actions_topic)

    @property
    def topic_for_type(self) -> dict[str, str]:
        return {"prescription": self.rx_topic, "pain_score": self.pain_topic, "patient_update": self.patient_topic}

"""Settings of the HL7 v2 MLLP gateway (``medmon gateway``), ``MEDSAFETY_HL7_*`` variables.

Kept apart from :class:`~monitor.settings.ServiceSettings` (which the gateway also reads
for the broker, topics and connection security) so the worker's settings stay the
worker's.
"""

from __future__ import annotations

from datetime import tzinfo
from typing import Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .settings import _from_env


class GatewaySettings(BaseModel):
    """Where the gateway listens, how long it remembers control ids, and the local time zone."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    hl7_host: str = Field("127.0.0.1", description="Interface the MLLP listener binds (0.0.0.0 in containers).")
    hl7_port: int = Field(2575, ge=0, le=65535, description="MLLP port (2575 is HL7's registered port; 0: any).")
    hl7_metrics_port: int = Field(9465, ge=0, le=65535,
                                  description="Port of the gateway's /metrics, /healthz, /readyz (0: any).")
    hl7_dedup_window: int = Field(
        10_000, ge=0, description="Message control ids remembered per sender (MSH-3 + MSH-4): a resend within "
        "the window is acknowledged AA and not published again. In memory: after a restart the monitor's "
        "event_id de-duplication still drops the re-published events.")
    hl7_timezone: str = Field(
        "UTC", description="IANA zone of HL7 times sent without an offset (e.g. America/New_York); times with "
        "an offset keep theirs.")
    hl7_publish_timeout: float = Field(
        15.0, gt=0, description="Seconds to wait for the broker's acknowledgement before answering AE (resend).")
    hl7_max_message_bytes: int = Field(
        512 * 1024, ge=1024, description="Larger MLLP blocks are rejected (AR) unread.")
    hl7_application: str = Field("MEDSAFETY", min_length=1, max_length=64,
                                 description="MSH-3 of the gateway's ACKs.")

    @field_validator("hl7_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("HL7_TIMEZONE must be an IANA time zone name such as UTC or Europe/Paris") from None
        return value

    @property
    def zone(self) -> tzinfo:
        return ZoneInfo(self.hl7_timezone)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> "GatewaySettings":
        return _from_env(cls, environ, overrides)

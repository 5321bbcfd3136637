"""The queue's own settings (``MEDSAFETY_QUEUE_*``); topics and Kafka security come from
:class:`monitor.settings.ServiceSettings`, so the queue and the worker agree on them."""

from __future__ import annotations

from datetime import timedelta
from typing import Mapping

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from ..settings import _from_env, read_secret
from .auth import Authenticator, load_users


class QueueSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)  # secrets

    queue_host: str = Field("127.0.0.1", description="Interface the queue's web server listens on.")
    queue_port: int = Field(8080, ge=0, le=65535, description="Port of the queue's page and API (0: any).")
    queue_users_file: str | None = Field(
        None, description="JSON of user name -> scrypt password hash (python -m monitor.queue.auth).")
    queue_token: SecretStr | None = Field(None, description="Bearer token for the API (or QUEUE_TOKEN_FILE).")
    queue_token_file: str | None = Field(None, description="File holding the API bearer token.")
    queue_token_user: str = Field("api-client", description="The user name actions taken with the token record.")
    queue_session_ttl: timedelta = Field(timedelta(hours=8), description="How long a page login lasts.")

    @model_validator(mode="after")
    def _one_token_source(self) -> "QueueSettings":
        if self.queue_token and self.queue_token_file:
            raise ValueError("give QUEUE_TOKEN or QUEUE_TOKEN_FILE, not both")
        return self

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> "QueueSettings":
        return _from_env(cls, environ, overrides)

    def token(self) -> str | None:
        return read_secret(self.queue_token, self.queue_token_file)

    def authenticator(self) -> Authenticator:
        users = load_users(self.queue_users_file) if self.queue_users_file else {}
        return Authenticator(users, self.token(), self.queue_token_user, self.queue_session_ttl.total_seconds())

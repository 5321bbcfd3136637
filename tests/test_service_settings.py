"""Service settings that must be refused with a reason, not half-honoured."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from monitor.gateway_settings import GatewaySettings
from monitor.health import Health, serve
from monitor.metrics import Metrics
from monitor.queue.settings import QueueSettings
from monitor.settings import ServiceSettings


def test_exactly_once_is_refused_with_the_reason() -> None:
    """faust 0.15's transactions repeated and lost alerts after a SIGKILL (README,
    "Delivery guarantees"): the monitor refuses the mode rather than promise it."""
    with pytest.raises(ValidationError) as refused:
        ServiceSettings.from_env({"MEDSAFETY_PROCESSING_GUARANTEE": "exactly_once"})
    assert "processing_guarantee" in str(refused.value)
    assert ServiceSettings.from_env({}).processing_guarantee == "at_least_once"


def test_secrets_never_appear_in_validation_errors() -> None:
    with pytest.raises(ValidationError) as refused:
        ServiceSettings.from_env({"MEDSAFETY_SECURITY_PROTOCOL": "SASL_SSL", "MEDSAFETY_SASL_PASSWORD": "hunter2-secret"})
    assert "hunter2-secret" not in str(refused.value)


SECRET_WORDS = ("password", "secret", "token", "keyfile")


@pytest.mark.parametrize("settings", [ServiceSettings, QueueSettings, GatewaySettings])
def test_no_secret_has_a_default_in_code(settings: type) -> None:
    """Secrets come from the environment or a file the deployment mounts: every secret
    field (a SecretStr, or named like one) defaults to nothing."""
    secret_fields = {name: field for name, field in settings.model_fields.items()
                     if "SecretStr" in str(field.annotation)
                     or (any(word in name for word in SECRET_WORDS) and not name.endswith("_user"))}
    if settings is not GatewaySettings:
        assert secret_fields  # the check looks at something
    assert {name: field.default for name, field in secret_fields.items() if field.default is not None} == {}


def test_the_sasl_password_is_read_from_its_file_when_needed(tmp_path) -> None:
    path = tmp_path / "sasl-password"
    path.write_text("from-the-file\n")
    service = ServiceSettings.from_env({"MEDSAFETY_SECURITY_PROTOCOL": "SASL_SSL", "MEDSAFETY_SASL_MECHANISM": "PLAIN",
                                        "MEDSAFETY_SASL_USERNAME": "medsafety",
                                        "MEDSAFETY_SASL_PASSWORD_FILE": str(path)})
    path.write_text("rotated\n")  # read at the moment it is needed, not at start-up
    assert service.sasl_secret() == "rotated"
    assert "rotated" not in repr(service) and "from-the-file" not in repr(service)


def test_metrics_and_health_bind_to_the_configured_address() -> None:
    assert ServiceSettings.from_env({}).metrics_host == "127.0.0.1"  # loopback unless told otherwise
    service = ServiceSettings.from_env({"MEDSAFETY_METRICS_HOST": "127.0.0.2", "MEDSAFETY_METRICS_PORT": "0"})
    server = serve(Metrics().registry, Health(), service.metrics_port, service.metrics_host)
    try:
        assert server.server_address[0] == "127.0.0.2"
    finally:
        server.shutdown()
        server.server_close()

"""Service settings that must be refused with a reason, not half-honoured."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

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

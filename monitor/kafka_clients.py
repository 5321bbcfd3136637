"""Connection options for every Kafka client of the monitor, from one place: the faust
worker (aiokafka underneath) and the kafka-python clients of ``replay``, ``alerts`` and
topic administration. TLS and SASL (PLAIN, SCRAM-SHA-256/512) come from
:class:`~monitor.settings.ServiceSettings`; secrets only from the environment or files.
"""

from __future__ import annotations

import ssl
from typing import Any

import faust

from .settings import ServiceSettings


def ssl_context(service: ServiceSettings) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=service.ssl_cafile)
    context.check_hostname = service.ssl_check_hostname
    if service.ssl_certfile:
        context.load_cert_chain(service.ssl_certfile, service.ssl_keyfile)
    return context


def security_options(service: ServiceSettings) -> dict[str, Any]:
    """Security keyword arguments for kafka-python's producer, consumer and admin client."""
    options: dict[str, Any] = {"security_protocol": service.security_protocol}
    if service.security_protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = ssl_context(service)
    if service.security_protocol.startswith("SASL_"):
        options.update(sasl_mechanism=service.sasl_mechanism, sasl_plain_username=service.sasl_username,
                       sasl_plain_password=service.sasl_secret())
    return options


def faust_credentials(service: ServiceSettings) -> faust.types.auth.CredentialsT | None:
    """``broker_credentials`` for the faust app (None: plaintext)."""
    protocol = service.security_protocol
    if protocol == "PLAINTEXT":
        return None
    if protocol == "SSL":
        return faust.SSLCredentials(ssl_context(service))
    credentials = faust.SASLCredentials(username=service.sasl_username, password=service.sasl_secret(),
                                        mechanism=service.sasl_mechanism,
                                        ssl_context=ssl_context(service) if protocol == "SASL_SSL" else None)
    return credentials

"""How every Kafka client of the process connects: bootstrap servers, TLS and SASL.

:class:`KafkaSecurity` reads ``KAFKA_SECURITY_PROTOCOL``, ``KAFKA_SASL_*`` and
``KAFKA_SSL_*`` (contract section 2) and refuses at start-up what cannot work: a SASL
protocol without credentials, a certificate without its key, a file that is missing or not
PEM, a mechanism aiokafka does not speak. :class:`KafkaConnection` turns them into the
keyword arguments of aiokafka's clients and Faust's ``broker_credentials``, so the app, the
consumer groups, the batch producer, admin clients and the commands all connect alike.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from aiokafka.helpers import create_ssl_context
from pydantic import SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["KafkaConnection", "KafkaSecurity", "Mechanism", "Protocol", "connection_of"]


class Protocol(StrEnum):
    PLAINTEXT = "PLAINTEXT"
    SSL = "SSL"
    SASL_PLAINTEXT = "SASL_PLAINTEXT"
    SASL_SSL = "SASL_SSL"


class Mechanism(StrEnum):
    """The SASL mechanisms of managed clusters: Confluent Cloud PLAIN; MSK and Aiven SCRAM."""

    PLAIN = "PLAIN"
    SCRAM_SHA_256 = "SCRAM-SHA-256"
    SCRAM_SHA_512 = "SCRAM-SHA-512"


def _pem_file(value: Path | None, marker: str) -> Path | None:
    if value is None:
        return None
    try:
        text = value.read_text(errors="replace")
    except OSError as exc:
        raise ValueError(f"{value} cannot be read: {exc.strerror}") from None
    if marker not in text:
        raise ValueError(f"{value} is not a PEM file with a {marker}")
    return value


class KafkaSecurity(BaseSettings):
    """The ``KAFKA_`` security settings; the defaults connect in plaintext."""

    model_config = SettingsConfigDict(env_prefix="KAFKA_", frozen=True, extra="ignore")

    security_protocol: Protocol = Protocol.PLAINTEXT
    sasl_mechanism: Mechanism = Mechanism.PLAIN
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_ca_file: Path | None = None
    ssl_cert_file: Path | None = None
    ssl_key_file: Path | None = None

    @field_validator("security_protocol", "sasl_mechanism", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("ssl_ca_file")
    @classmethod
    def _ca(cls, value: Path | None) -> Path | None:
        return _pem_file(value, "-----BEGIN CERTIFICATE")

    @field_validator("ssl_cert_file")
    @classmethod
    def _cert(cls, value: Path | None) -> Path | None:
        return _pem_file(value, "-----BEGIN CERTIFICATE")

    @field_validator("ssl_key_file")
    @classmethod
    def _key(cls, value: Path | None) -> Path | None:
        return _pem_file(value, "PRIVATE KEY")

    @model_validator(mode="after")
    def _complete(self) -> KafkaSecurity:
        if self.sasl:
            missing = [
                name
                for name, value in (
                    ("KAFKA_SASL_USERNAME", self.sasl_username),
                    ("KAFKA_SASL_PASSWORD", self.sasl_password),
                )
                if not value
            ]
            if missing:
                raise ValueError(
                    f"KAFKA_SECURITY_PROTOCOL={self.security_protocol} needs "
                    f"{' and '.join(missing)}"
                )
        if (self.ssl_cert_file is None) != (self.ssl_key_file is None):
            raise ValueError("KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE go together (mTLS)")
        self.ssl_context()  # a CA, certificate or key that TLS cannot load is refused now
        return self

    @property
    def sasl(self) -> bool:
        return self.security_protocol in (Protocol.SASL_PLAINTEXT, Protocol.SASL_SSL)

    @property
    def tls(self) -> bool:
        return self.security_protocol in (Protocol.SSL, Protocol.SASL_SSL)

    def ssl_context(self) -> ssl.SSLContext | None:
        """The client's TLS context: the system trust store unless a CA file is given."""
        if not self.tls:
            return None
        try:
            return create_ssl_context(
                cafile=str(self.ssl_ca_file) if self.ssl_ca_file else None,
                certfile=str(self.ssl_cert_file) if self.ssl_cert_file else None,
                keyfile=str(self.ssl_key_file) if self.ssl_key_file else None,
            )
        except (ssl.SSLError, OSError) as exc:
            names = "KAFKA_SSL_CA_FILE, KAFKA_SSL_CERT_FILE or KAFKA_SSL_KEY_FILE"
            raise ValueError(f"{names} could not be loaded: {exc}") from None


@dataclass(frozen=True)
class KafkaConnection:
    """What an aiokafka client needs to reach the cluster: ``client_options()`` goes into
    every ``AIOKafkaConsumer``, ``AIOKafkaProducer`` and ``AIOKafkaAdminClient``."""

    bootstrap_servers: str
    security: KafkaSecurity = field(default_factory=lambda: KafkaSecurity.model_construct())
    _context: list[ssl.SSLContext | None] = field(default_factory=list, repr=False)

    def client_options(self) -> dict[str, Any]:
        security = self.security
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": str(security.security_protocol),
        }
        if security.tls:
            if not self._context:  # one context for every client of the process
                self._context.append(security.ssl_context())
            options["ssl_context"] = self._context[0]
        if security.sasl:
            assert security.sasl_password is not None
            options |= {
                "sasl_mechanism": str(security.sasl_mechanism),
                "sasl_plain_username": security.sasl_username,
                "sasl_plain_password": security.sasl_password.get_secret_value(),
            }
        return options

    def faust_credentials(self) -> Any:
        """Faust's ``broker_credentials`` for these settings (``None`` for plaintext)."""
        import faust

        security = self.security
        context = self.client_options().get("ssl_context")
        if security.sasl:
            assert security.sasl_password is not None
            return faust.SASLCredentials(
                username=security.sasl_username,
                password=security.sasl_password.get_secret_value(),
                mechanism=str(security.sasl_mechanism),
                ssl_context=context,
            )
        if context is not None:
            return faust.SSLCredentials(context)
        return None


def connection_of(target: KafkaConnection | str) -> KafkaConnection:
    """Helpers take a connection, or a bare bootstrap string for a plaintext cluster."""
    return target if isinstance(target, KafkaConnection) else KafkaConnection(target)

"""Before a worker or command starts: can this process use the cluster as configured?

aiokafka reports a refused login or an untrusted certificate only in a log line and then
retries its bootstrap for ever (Faust) or raises a generic "Unable to bootstrap"; a missing
ACL surfaces much later, as a crashed consumer. So one connection is opened here first, its
own error named, and every topic and group the process uses is asked for: a refusal becomes
one :class:`ConfigurationError` that names the setting, the topic or the group.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.conn import create_conn
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
from aiokafka.protocol.metadata import MetadataRequest

from sinks.errors import ConfigurationError
from streams.connection import KafkaConnection

__all__ = ["check_cluster"]

TOPIC_AUTHORIZATION_FAILED = 29


def _hosts(servers: str) -> list[tuple[str, int]]:
    hosts = []
    for server in servers.split(","):
        host, _, port = server.strip().rpartition(":")
        hosts.append((host.strip("[]"), int(port)))
    return hosts


async def _login(connection: KafkaConnection, deadline: float) -> None:
    """One connection to a bootstrap server, through TLS and SASL, with the real error."""
    security = connection.security
    options = connection.client_options()
    options.pop("bootstrap_servers")
    last: Exception | None = None
    while True:
        for host, port in _hosts(connection.bootstrap_servers):
            try:
                conn = await create_conn(host, port, request_timeout_ms=10_000, **options)
            except SaslAuthenticationFailed as exc:
                raise ConfigurationError(
                    f"the cluster refused the SASL login of KAFKA_SASL_USERNAME="
                    f"{security.sasl_username} with KAFKA_SASL_MECHANISM="
                    f"{security.sasl_mechanism} (check KAFKA_SASL_PASSWORD): {exc}"
                ) from None
            except UnsupportedSaslMechanismError as exc:
                raise ConfigurationError(
                    f"the cluster does not offer KAFKA_SASL_MECHANISM="
                    f"{security.sasl_mechanism}: {exc}"
                ) from None
            except ssl.SSLCertVerificationError as exc:
                trust = security.ssl_ca_file or "the system trust store"
                raise ConfigurationError(
                    f"the certificate of {host}:{port} is not trusted by KAFKA_SSL_CA_FILE="
                    f"{trust}: {exc.verify_message}"
                ) from None
            except ssl.SSLError as exc:
                raise ConfigurationError(
                    f"TLS with {host}:{port} failed (KAFKA_SECURITY_PROTOCOL="
                    f"{security.security_protocol}): {exc.reason or exc}"
                ) from None
            except (TimeoutError, OSError, KafkaError) as exc:
                last = exc
                continue
            conn.close()
            return
        if time.monotonic() > deadline:
            raise ConfigurationError(
                f"no broker of KAFKA_BOOTSTRAP_SERVERS={connection.bootstrap_servers} "
                f"answered (KAFKA_SECURITY_PROTOCOL={security.security_protocol}): {last!r}"
            )
        await asyncio.sleep(1.0)


async def _authorized(
    connection: KafkaConnection, topics: Iterable[str], groups: Iterable[str], deadline: float
) -> None:
    """DESCRIBE on every topic that exists (asking creates none) and every group: READ and
    WRITE imply it, so a principal lacking a topic's or group's ACLs entirely is refused."""
    admin = AIOKafkaAdminClient(**connection.client_options(), request_timeout_ms=10_000)
    await admin.start()
    try:
        names = sorted(set(topics))
        if names:
            request = MetadataRequest(names, allow_auto_topic_creation=False)
            answer = (await admin._send_request(request)).to_object()
            refused = [
                t["topic"]
                for t in answer["topics"]
                if t["error_code"] == TOPIC_AUTHORIZATION_FAILED
            ]
            if refused:
                raise ConfigurationError(
                    f"not authorised for topic(s) {', '.join(refused)}: grant the ACLs that "
                    "`refstream acls` lists"
                )
        for group in sorted(set(groups)):
            while True:
                try:
                    await admin.find_coordinator(group)
                    break
                except GroupAuthorizationFailedError:
                    raise ConfigurationError(
                        f"not authorised for consumer group {group}: grant the ACLs that "
                        "`refstream acls` lists"
                    ) from None
                except KafkaError as exc:  # e.g. a new cluster's offsets topic is not up yet
                    if not exc.retriable or time.monotonic() > deadline:
                        raise ConfigurationError(
                            f"consumer group {group} has no coordinator: {exc!r}"
                        ) from None
                    await asyncio.sleep(0.5)
    finally:
        await admin.close()


async def check_cluster(
    connection: KafkaConnection,
    topics: Iterable[str] = (),
    groups: Iterable[str] = (),
    timeout: float = 30.0,
) -> None:
    """Raise :class:`ConfigurationError` if this process cannot log in, trust the brokers,
    or see its topics and groups; wait up to ``timeout`` for an unreachable cluster."""
    deadline = time.monotonic() + timeout
    await _login(connection, deadline)
    await _authorized(connection, topics, groups, deadline)

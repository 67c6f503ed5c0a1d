"""refstream on a secured Apache Kafka: a SASL_SSL listener (a CA made by the test, SCRAM-
SHA-512 users created when storage is formatted) and KRaft's StandardAuthorizer.

The worker connects as a user holding exactly the ACLs of ``refstream acls``; the test's own
producers and readers use the broker's plaintext listener, whose ANONYMOUS user is a super
user, so nothing but the worker is under test. A wrong password, an untrusted CA and a
missing ACL each end the worker within 30 s with one line naming what to fix.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dev.expectations import vendor_state
from dev.generator import Workload
from dev.kafka import ApacheKafka, ScramUser, SecureListener
from dev.kafka_io import create_acls
from streams.acls import Acl, required_acls
from streams.settings import Settings

from .brokers import broker_choice
from .conftest import Kafka
from .test_join import run_phases
from .test_sinks import SINKS, dlq_records, expected_vendor_state, wait_for_vendors

pytestmark = pytest.mark.integration

PASSWORD = "refstream-test-secret"
WORKER, PARTIAL = "refstream", "partial"
EXIT_WITHIN_SECONDS = 30.0


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApacheKafka]:
    if broker_choice() != "kafka":
        pytest.skip("needs the Apache Kafka of dev/kafka.py, whose SASL_SSL listener it sets")
    root = tmp_path_factory.mktemp("secured")
    users = [ScramUser(WORKER, PASSWORD), ScramUser(PARTIAL, PASSWORD)]
    listener = SecureListener.generate(root / "certs", users)
    with ApacheKafka(root / "kafka", secure=listener) as broker:
        yield broker


@pytest.fixture(scope="module")
def kafka(secure_broker: ApacheKafka) -> Kafka:
    """Overrides the session's broker for this module: the pipelines' topics and the test's
    reads go through the plaintext (super user) listener."""
    return Kafka(secure_broker.bootstrap_servers, "kafka", secure_broker.label, secure_broker)


def secure_env(broker: ApacheKafka, user: str = WORKER, **overrides: str) -> dict[str, str]:
    assert broker.secure is not None
    return {
        "KAFKA_BOOTSTRAP_SERVERS": broker.secure_bootstrap_servers,
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KAFKA_SASL_USERNAME": user,
        "KAFKA_SASL_PASSWORD": PASSWORD,
        "KAFKA_SSL_CA_FILE": str(broker.secure.keystore_pem.parent / "ca.pem"),
        **overrides,
    }


def acls_for(env: dict[str, str]) -> list[Acl]:
    """``refstream acls`` for a pipeline's settings (its topics, app id and sinks)."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        return required_acls(Settings())
    finally:
        os.environ.clear()
        os.environ.update(saved)


async def exits_with(worker, *expected: str) -> str:
    """The worker's exit status is 2 within the bound; its log names what to fix."""
    started = time.monotonic()
    code = await asyncio.to_thread(worker.process.wait, EXIT_WITHIN_SECONDS)
    assert code == 2, worker.tail()
    assert time.monotonic() - started < EXIT_WITHIN_SECONDS
    log = worker.log_path.read_text()
    assert "refstream: configuration error:" in log
    for text in expected:
        assert text in log, log[-2000:]
    assert PASSWORD not in log, "a secret in the log"
    assert "Traceback" not in log
    return log


async def test_the_join_and_sinks_run_on_sasl_ssl_with_exactly_the_listed_acls(
    sink_pipeline, emulators, secure_broker
):
    sink_pipeline.env |= secure_env(secure_broker)
    await create_acls(secure_broker.bootstrap_servers, f"User:{WORKER}",
                      acls_for(sink_pipeline.env))  # fmt: skip
    workload = Workload.build(journeys=250, seed=37, invalid=2)
    expected = workload.expected()
    want = expected_vendor_state(expected)
    await sink_pipeline.start_worker()

    await run_phases(sink_pipeline, workload)
    await wait_for_vendors(emulators, want)

    assert vendor_state(emulators) == want
    for sink in SINKS:
        assert await dlq_records(sink_pipeline, sink) == []


async def test_a_wrong_password_stops_the_worker_naming_the_setting(pipeline, secure_broker):
    pipeline.env |= secure_env(secure_broker, KAFKA_SASL_PASSWORD="not-the-password")
    worker = pipeline.worker()
    await exits_with(worker, "KAFKA_SASL_USERNAME=refstream", "KAFKA_SASL_PASSWORD")


async def test_an_untrusted_ca_stops_the_worker_naming_the_setting(
    pipeline, secure_broker, tmp_path: Path
):
    other = SecureListener.generate(tmp_path / "other-ca", [])  # a CA that signed nothing here
    pipeline.env |= secure_env(
        secure_broker, KAFKA_SSL_CA_FILE=str(other.keystore_pem.parent / "ca.pem")
    )
    worker = pipeline.worker()
    await exits_with(worker, "is not trusted by KAFKA_SSL_CA_FILE=", "unable to get local issuer")


async def test_a_user_missing_one_acl_stops_the_worker_naming_the_group(pipeline, secure_broker):
    env = pipeline.env | secure_env(secure_broker, user=PARTIAL)
    ingest_group = f"{env['REFSTREAM_APP_ID']}-ingest"
    granted = [acl for acl in acls_for(env) if acl.name != ingest_group]
    await create_acls(secure_broker.bootstrap_servers, f"User:{PARTIAL}", granted)
    pipeline.env = env
    worker = pipeline.worker()
    await exits_with(worker, f"consumer group {ingest_group}")


async def test_a_user_missing_a_topic_acl_stops_the_worker_naming_the_topic(
    pipeline, secure_broker
):
    env = pipeline.env | secure_env(secure_broker, user=PARTIAL)
    signups = env["REFSTREAM_TOPIC_SIGNUPS"]
    granted = [acl for acl in acls_for(env) if acl.name != signups]
    await create_acls(secure_broker.bootstrap_servers, f"User:{PARTIAL}", granted)
    pipeline.env = env
    worker = pipeline.worker()
    await exits_with(worker, f"topic(s) {signups}")

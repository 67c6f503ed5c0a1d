"""Real-broker fixtures: one broker per session, fresh topics and app id per test.

Broker, by what is available (:func:`broker_choice`): ``KAFKA_BOOTSTRAP_SERVERS`` (an
external cluster), else Kafka in Docker via testcontainers when a Docker engine answers,
else Apache Kafka from ``dev/kafka.py`` when Java and Maven are on the machine, else the
embedded Tansu. ``REFSTREAM_TEST_BROKER=kafka|tansu|docker`` picks one explicitly.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dev.broker import EmbeddedBroker
from dev.emulators import running_emulators
from dev.kafka import ApacheKafka
from dev.kafka_io import create_topics
from dev.worker import WorkerProcess

from .brokers import broker_choice

INPUTS = ("referrals", "signups", "orders")
TOPIC_VARS = {
    "referrals": "REFSTREAM_TOPIC_REFERRALS",
    "signups": "REFSTREAM_TOPIC_SIGNUPS",
    "orders": "REFSTREAM_TOPIC_ORDERS",
    "attributions": "REFSTREAM_TOPIC_ATTRIBUTIONS",
    "dlq_invalid": "REFSTREAM_TOPIC_DLQ_INVALID",
    "by_referral": "REFSTREAM_TOPIC_BY_REFERRAL",
    "by_customer": "REFSTREAM_TOPIC_BY_CUSTOMER",
    "by_email": "REFSTREAM_TOPIC_BY_EMAIL",
    "by_advocate": "REFSTREAM_TOPIC_BY_ADVOCATE",
    "by_order": "REFSTREAM_TOPIC_BY_ORDER",
    "advocate_totals": "REFSTREAM_TOPIC_ADVOCATE_TOTALS",
}


@dataclass(frozen=True)
class Kafka:
    bootstrap_servers: str
    compat: str
    label: str
    """Which broker, e.g. ``apache-kafka-4.1.1`` or ``tansu``."""
    apache: ApacheKafka | None = None
    """The launcher, when this session started an Apache Kafka itself (restart tests)."""


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kafka]:
    choice = broker_choice()
    if choice == "external":
        servers = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
        yield Kafka(servers, os.environ.get("REFSTREAM_BROKER_COMPAT", "kafka"), "external")
    elif choice == "docker":
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer() as container:
            yield Kafka(container.get_bootstrap_server(), "kafka", "docker")
    elif choice == "kafka":
        with ApacheKafka(tmp_path_factory.mktemp("kafka")) as broker:
            yield Kafka(broker.bootstrap_servers, "kafka", broker.label, broker)
    else:
        log = tmp_path_factory.mktemp("broker") / "tansu.log"
        with EmbeddedBroker(log_path=log) as broker:
            yield Kafka(broker.bootstrap_servers, "tansu", "tansu")


@dataclass
class Pipeline:
    """One isolated deployment of the app on the shared broker."""

    kafka: Kafka
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    topics: dict[str, str] = field(default_factory=dict)
    workers: list[WorkerProcess] = field(default_factory=list)
    worker_module: str = "streams"
    """What ``python -m`` runs for a worker: a test may wrap the worker to widen a race."""

    @property
    def servers(self) -> str:
        return self.kafka.bootstrap_servers

    def worker(self, name: str = "worker", **env: str) -> WorkerProcess:
        worker = WorkerProcess({**self.env, **env}, self.workdir, name, self.worker_module)
        self.workers.append(worker)
        return worker.start()

    async def start_worker(self, name: str = "worker", **env: str) -> WorkerProcess:
        worker = self.worker(name, **env)
        await asyncio.to_thread(worker.wait_ready)
        return worker

    def close(self) -> None:
        for worker in self.workers:
            with contextlib.suppress(Exception):
                worker.stop(timeout=15)


@pytest.fixture
async def pipeline(kafka: Kafka, tmp_path: Path, request: pytest.FixtureRequest):
    run = uuid.uuid4().hex[:8]
    topics = {name: f"{name}-{run}" for name in TOPIC_VARS}
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "REFSTREAM_BROKER_COMPAT": kafka.compat,
        "REFSTREAM_APP_ID": f"refstream-{run}",
        "REFSTREAM_STORE": "memory://",
        "REFSTREAM_SINKS": "",
        "REFSTREAM_PARTITIONS": "4",
        "PENDING_TTL_SECONDS": "12",
        "REFSTREAM_COMMIT_INTERVAL_SECONDS": "0.5",
        **{TOPIC_VARS[name]: topic for name, topic in topics.items()},
    }
    await create_topics(kafka.bootstrap_servers, [topics[n] for n in INPUTS], partitions=3)
    pipeline = Pipeline(kafka, tmp_path, env, topics)
    yield pipeline
    pipeline.close()
    if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
        for worker in pipeline.workers:
            print(f"--- {worker.log_path} ---\n{worker.tail(80)}")
    for log in {worker.log_path for worker in pipeline.workers}:
        # An agent whose topic Faust's assignor could not see never consumes (and a test
        # whose workload never needs that stage would not notice): streams/subscription.py.
        if log.exists() and "Ignoring missing topic" in log.read_text(errors="replace"):
            pytest.fail(f"a worker's assignor ignored a missing topic: see {log}")


@pytest.fixture
async def emulators():
    async with running_emulators() as running:
        yield running


@pytest.fixture
def sink_pipeline(pipeline, emulators):
    """A pipeline with every registered sink enabled against its emulator."""
    pipeline.env |= {
        "REFSTREAM_SINKS": ",".join(emulators.by_sink),
        "REFSTREAM_TOPIC_DLQ_SINK_PREFIX": f"dlq-{pipeline.topics['attributions']}-",
        **emulators.env(),
    }
    return pipeline


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)

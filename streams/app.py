"""The Faust app, configured from :mod:`streams.settings`; ``refstream`` is its CLI."""

from __future__ import annotations

import gc
import importlib
import socket
import sys
from typing import Any

import faust

from sinks.errors import ConfigurationError
from streams import fetch_wait, rebalance, subscription, tansu
from streams.logs import quiet_aiokafka
from streams.producer import BatchProducer
from streams.settings import BrokerCompat, Settings, get_settings

__all__ = ["app", "faust_options", "main", "producer", "producers", "settings", "tune_gc"]


def faust_options(settings: Settings) -> dict[str, Any]:
    """Faust keyword arguments for ``settings``; broker quirks stay behind one switch."""
    options: dict[str, Any] = {
        "broker": settings.broker_url,
        "broker_credentials": settings.kafka.faust_credentials(),
        "store": settings.store,
        "datadir": settings.data_dir,
        "topic_partitions": settings.partitions,
        "topic_replication_factor": settings.replication_factor,
        "table_standby_replicas": settings.standby_replicas,
        "web_bind": settings.web_host,
        "web_port": settings.web_port,
        "canonical_url": settings.canonical_url
        or f"http://{socket.gethostname()}:{settings.web_port}",
        "producer_linger": 0.005,
        "broker_commit_interval": settings.commit_interval_seconds,
        "consumer_auto_offset_reset": "earliest",
        # The stages' records are envelopes of hundreds of entries (agents/envelopes.py), and
        # ingest can run far ahead of the stages: Faust's default of 4,096 buffered records
        # per stream held hundreds of MB of envelopes while a large backlog loaded.
        "stream_buffer_maxsize": 256,
        "broker_session_timeout": settings.session_timeout_seconds,
        "broker_heartbeat_interval": settings.heartbeat_interval_seconds,
    }
    if settings.broker_compat is BrokerCompat.TANSU:
        # broker-tansu.md: joins wait half the session timeout. (Its wrong "latest" offsets
        # are handled by streams.tansu, which reads them from fetch answers instead.)
        options |= {
            "broker_session_timeout": tansu.SESSION_TIMEOUT_MS / 1000,
            "broker_heartbeat_interval": tansu.HEARTBEAT_INTERVAL_MS / 1000,
        }
    return options


try:
    settings = get_settings()
except ConfigurationError as exc:  # one line naming the variable, not a traceback
    sys.stderr.write(f"refstream: configuration error: {exc}\n")
    sys.exit(2)
app = faust.App(settings.app_id, **faust_options(settings))
quiet_aiokafka()  # a lost broker is logged at a bounded rate (streams/logs.py)
subscription.install(settings.kafka)  # subscribe once the topics are visible
rebalance.install()  # re-read what a rebalance dropped on uncommitted partitions
fetch_wait.install()  # no fetch waits out Faust's fixed 1.5 s (streams/fetch_wait.py)
if settings.broker_compat is BrokerCompat.TANSU:
    tansu.install(settings.kafka)

_producer_options = (
    {"request_timeout_ms": tansu.PRODUCER_REQUEST_TIMEOUT_MS}
    if settings.broker_compat is BrokerCompat.TANSU
    else {}
)
_producers: dict[str, BatchProducer] = {}


def producer(writer: str) -> BatchProducer:
    """The producer of ``writer`` (ingest, a join stage, the sweeps): it sends the writer's
    outputs and table writes in per-partition batches.

    Each writer has its own, on a connection of its own: aiokafka keeps one produce request
    in flight per broker connection, and a writer waits for each of its sends anyway, so
    writers that shared one producer queued behind each other's acknowledgements (README,
    performance).
    """
    found = _producers.get(writer)
    if found is None:
        found = _producers[writer] = BatchProducer(settings.kafka, **_producer_options)
    return found


def producers() -> list[BatchProducer]:
    """Every writer's producer created so far."""
    return list(_producers.values())


@app.on_before_shutdown.connect
async def _stop_producers(sender: Any = None, **kwargs: Any) -> None:
    for each in producers():
        await each.stop()


@app.on_rebalance_complete.connect
async def _hold_records_until_seeked(sender: Any = None, **kwargs: Any) -> None:
    """Keep the streams' new records out of their queues until Faust has finished starting
    them after a rebalance.

    Faust sends this signal once table recovery is done, then resumes the stream partitions,
    seeks them to their committed offsets, and only then resumes flow control, which empties
    every stream's queue. Flow had been running since the changelogs were read, so records
    fetched during the seek reached the queues and were emptied out of them, while the
    consumer's position had moved past them: a stage skipped them until a later restart read
    them again (in 1 of 43 traced worker starts of the soak test, README, Tests).
    Suspended here, those records wait in the conductor until the queues have been emptied.
    ``tests/integration/slow_seek.py`` widens the window so that a test hits it every run.
    Upstream: faust-streaming/faust#596 (open) reports the same emptying of the queues.
    """
    app.flow_control.suspend()


MODULES = (
    "agents.ingest", "agents.join", "streams.monitor", "streams.broker_watch", "streams.web",
    "streams.commands",
)  # fmt: skip
"""Modules that register agents, pages and commands on :data:`app`."""


def tune_gc() -> None:
    """Collect garbage less often: a worker allocates a few objects per record and keeps a
    large heap (Faust, states, buffers), and with Python's default thresholds the collector
    took a large share of its CPU (README, performance). Objects alive at start-up are
    frozen out of every collection."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)


def _preflight(worker: bool) -> None:
    """Check the cluster before Faust starts (streams/preflight.py): a worker needs every
    topic and group it uses; a command only a login."""
    import asyncio

    from streams.acls import Pattern, Resource, required_acls
    from streams.preflight import check_cluster

    topics, groups = set(), set()
    if worker:
        for acl in required_acls(settings):
            if acl.pattern is Pattern.LITERAL:
                (topics if acl.resource is Resource.TOPIC else groups).add(acl.name)
    asyncio.run(check_cluster(settings.kafka, topics, groups))


OFFLINE_COMMANDS = {"schemas", "acls", "--help", "--version"}
"""Commands that never touch the cluster."""


def main() -> None:
    """Console script. Building the sinks checks their credentials, and the pre-flight the
    cluster's, before Faust starts; either refusal is one line and exit status 2."""
    args = sys.argv[1:]
    if args[:1] == ["gateway"]:  # its own process: no Faust app, no pre-flight (gateway.md §1)
        from gateway.__main__ import main as gateway_main

        return gateway_main()
    for module in MODULES:
        importlib.import_module(module)
    tune_gc()
    try:
        if "worker" in args:
            importlib.import_module("agents.fanout")
        if args and not OFFLINE_COMMANDS.intersection(args):
            _preflight(worker="worker" in args)
    except ConfigurationError as exc:
        sys.stderr.write(f"refstream: configuration error: {exc}\n")
        sys.exit(2)
    app.main()

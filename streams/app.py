"""The Faust app, configured from :mod:`streams.settings`; ``refstream`` is its CLI."""

from __future__ import annotations

import importlib
import socket
import sys
from typing import Any

import faust

from streams.settings import BrokerCompat, Settings, get_settings

__all__ = ["app", "faust_options", "main", "settings"]


def faust_options(settings: Settings) -> dict[str, Any]:
    """Faust keyword arguments for ``settings``; broker quirks stay behind one switch."""
    options: dict[str, Any] = {
        "broker": settings.broker_url,
        "store": settings.store,
        "datadir": settings.data_dir,
        "topic_partitions": settings.partitions,
        "topic_replication_factor": settings.replication_factor,
        "web_bind": settings.web_host,
        "web_port": settings.web_port,
        "canonical_url": settings.canonical_url
        or f"http://{socket.gethostname()}:{settings.web_port}",
        "producer_linger": 0.005,
        "broker_commit_interval": settings.commit_interval_seconds,
        "consumer_auto_offset_reset": "earliest",
    }
    if settings.broker_compat is BrokerCompat.TANSU:
        # broker-tansu.md: joins wait half the session timeout. (Its wrong "latest" offsets
        # are handled by streams.tansu, which reads them from fetch answers instead.)
        options |= {"broker_session_timeout": 6.0, "broker_heartbeat_interval": 1.0}
    return options


settings = get_settings()
app = faust.App(settings.app_id, **faust_options(settings))
if settings.broker_compat is BrokerCompat.TANSU:
    from streams import tansu

    tansu.install(settings.kafka_bootstrap_servers)


MODULES = ("agents.ingest", "agents.join", "streams.monitor", "streams.web", "streams.commands")
"""Modules that register agents, pages and commands on :data:`app`."""


def main() -> None:
    """Console script. Building the sinks checks their credentials before Faust starts."""
    from sinks.errors import ConfigurationError

    for module in MODULES:
        importlib.import_module(module)
    try:
        if "worker" in sys.argv[1:]:
            importlib.import_module("agents.fanout")
    except ConfigurationError as exc:
        sys.stderr.write(f"refstream: configuration error: {exc}\n")
        sys.exit(2)
    app.main()

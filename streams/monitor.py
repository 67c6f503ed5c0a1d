"""Faust's own Prometheus sensor, consumer lag, rebalances and table sizes, on :data:`app`.

``faust.sensors.prometheus`` is used as it ships; only its own ``/metrics`` page is left out
(``streams.web`` serves the one registry), and its series are prefixed ``refstream_faust_``
so that every family of the worker starts with ``refstream_`` (contract section 7).

Faust calls its sensors several times per event, table operation and send; measured on the
join, its Prometheus sensor costs about a quarter of the throughput and its default monitor
a tenth. ``REFSTREAM_FAUST_SENSOR=false`` turns both off (the ``refstream_*`` families stay).
No dashboard panel or alert depends on Faust's sensor: the join's stages do not run through
its per-event path and the app sends through its own producer, so its event runtime and sent
counts say nothing about this app.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import faust
from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor
from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from streams import allocator
from streams.app import app, settings
from streams.lag import BrokerLag
from streams.metrics import (
    PENDING_TTL,
    REBALANCES,
    RECOVERY_COMPLETED,
    RECOVERY_DURATION,
    init_join_series,
)
from streams.rocksdb_budget import BudgetUsage

__all__ = ["LAG", "TableKeys", "install"]

log = logging.getLogger(__name__)

LAG = BrokerLag.of(settings).install(REGISTRY)


@app.task
async def log_allocator() -> None:
    log.info("memory allocator=%s malloc_setting=%s", allocator.in_use(), settings.malloc)


@app.task
async def watch_lag() -> None:
    await LAG.run()


class TableKeys(Collector):
    """``refstream_table_keys{table}``: keys in this worker's share of each table (RocksDB's
    own estimate, read per partition database; exact for the memory store)."""

    def __init__(self, app: faust.App) -> None:
        self.app = app

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "refstream_table_keys", "Keys in this worker's partitions of a table", labels=["table"]
        )
        for table in self.app.tables.values():
            family.add_metric([table.name], table_keys(table.data))
        yield family


def table_keys(store: Any) -> int:
    dbs = getattr(store, "_dbs", None)
    if dbs is None:  # the memory store: one dict
        return len(store.data)
    return sum(db.property_int_value("rocksdb.estimate-num-keys") or 0 for db in dbs.values())


_rebalance_started = time.monotonic()


@app.on_partitions_revoked.connect
async def _rebalance_starts(sender: Any = None, *args: Any, **kwargs: Any) -> None:
    global _rebalance_started
    _rebalance_started = time.monotonic()


@app.on_rebalance_complete.connect
async def _recovery_done(sender: Any = None, **kwargs: Any) -> None:
    """Faust sends this once the assignment's tables are recovered."""
    RECOVERY_DURATION.set(time.monotonic() - _rebalance_started)
    RECOVERY_COMPLETED.set_to_current_time()
    REBALANCES.inc()


def install(app: faust.App, faust_sensor: bool) -> None:
    t = settings.topics
    init_join_series((t.referrals, t.signups, t.orders))
    PENDING_TTL.set(settings.pending_ttl_seconds)
    REGISTRY.register(TableKeys(app))
    if settings.store.startswith("rocksdb"):
        REGISTRY.register(BudgetUsage(settings.rocksdb_memory_bytes))
    if faust_sensor:
        app.monitor = PrometheusMonitor(metrics=FaustMetrics.create(REGISTRY, "refstream_faust"))
    else:

        async def drop_monitor() -> None:
            """Faust adds its monitor to the sensors as the worker starts; take it out."""
            app.sensors.remove(app.monitor)

        app.task(drop_monitor)


install(app, settings.faust_sensor)

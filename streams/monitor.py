"""Faust's own Prometheus sensor and the join's consumer lag, both on :data:`app`.

``faust.sensors.prometheus`` is used as it ships; only its own ``/metrics`` page is left out
(``streams.web`` serves the one registry), and its series are prefixed ``refstream_faust_``
so that every family of the worker starts with ``refstream_`` (contract section 7).

Faust calls its sensors several times per event, table operation and send; measured on the
join, its Prometheus sensor costs about a quarter of the throughput and its default monitor
a tenth. ``REFSTREAM_FAUST_SENSOR=false`` turns both off (the ``refstream_*`` families stay).
"""

from __future__ import annotations

from collections.abc import Mapping

import faust
from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor
from prometheus_client import REGISTRY

from streams.app import app, settings
from streams.lag import CONSUMER_LAG, Offsets

__all__ = ["install"]


def _join_offsets(app: faust.App) -> Mapping[tuple[str, int], Offsets]:
    """Input partitions of the agents; changelogs are read by table recovery, not committed."""
    consumer = app.consumer
    committed = consumer._committed_offset  # Faust keeps no public accessor for it
    changelogs = app.tables.changelog_topics
    return {
        (tp.topic, tp.partition): Offsets(committed.get(tp), consumer.highwater(tp))
        for tp in consumer.assignment()
        if tp.topic not in changelogs
    }


def install(app: faust.App, faust_sensor: bool) -> None:
    CONSUMER_LAG.register(app.conf.id, lambda: _join_offsets(app))
    if faust_sensor:
        app.monitor = PrometheusMonitor(metrics=FaustMetrics.create(REGISTRY, "refstream_faust"))
    else:

        async def drop_monitor() -> None:
            """Faust adds its monitor to the sensors as the worker starts; take it out."""
            app.sensors.remove(app.monitor)

        app.task(drop_monitor)


install(app, settings.faust_sensor)

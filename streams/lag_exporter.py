"""``refstream lag-exporter``: consumer lag from the broker, in a process of its own.

Every worker reports the same lag (``streams/lag.py``), but with every worker down, or all
of them stuck, lag is what an SRE needs most; this process needs only the broker. It serves
``refstream_consumer_lag`` (and its age) and the process's own metrics on ``/metrics``.
"""

from __future__ import annotations

import logging

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.process_collector import ProcessCollector

from streams.lag import BrokerLag
from streams.settings import Settings

__all__ = ["serve"]

log = logging.getLogger(__name__)


def exporter_app(lag: BrokerLag) -> web.Application:
    registry = CollectorRegistry()
    lag.install(registry)
    ProcessCollector(registry=registry)

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "lag_fresh": lag.fresh()})

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    return app


async def serve(settings: Settings, host: str, port: int) -> None:
    lag = BrokerLag.of(settings)
    runner = web.AppRunner(exporter_app(lag), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    log.info("lag exporter serving http://%s:%d/metrics groups=%s interval=%ss",
             host, port, ",".join(lag.groups), lag.interval)  # fmt: skip
    try:
        await lag.run()
    finally:
        await runner.cleanup()

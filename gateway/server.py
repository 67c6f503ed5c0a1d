"""The gateway's HTTP service (gateway.md §3, §4): route, capacity, size, signature, map,
publish; the first failing check answers. One ``key=value`` log line per request."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from functools import partial

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway import metrics
from gateway.pipeline import dead_letter, prepare, received_at
from gateway.publisher import Publisher
from gateway.settings import GatewaySettings
from gateway.sources import SOURCES, Ignored, Source, Unmappable, WebhookRequest
from streams.settings import BrokerCompat, Settings

__all__ = ["RUNNER_OPTIONS", "Gateway", "serve"]

log = logging.getLogger("refstream.gateway")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
RUNNER_OPTIONS = {"access_log": None, "auto_decompress": False}
"""aiohttp would inflate a gzip body before the handler sees it; the signature covers the
bytes as sent, so an encoded body is verified as it is (and fails: §4)."""


def _json(status: int, body: dict, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, body=orjson.dumps(body), headers=headers, content_type="application/json"
    )


class Gateway:
    """The handlers; ``publisher`` does the broker part, ``clock`` gives Unix seconds."""

    def __init__(
        self,
        settings: Settings,
        gateway: GatewaySettings,
        publisher: Publisher,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.gateway = gateway
        self.publisher = publisher
        self.clock = clock
        self.sources = [source(gateway) for source in SOURCES]
        self.in_flight = 0

    @property
    def enabled(self) -> list[str]:
        return list(dict.fromkeys(s.name for s in self.sources if s.enabled))

    def app(self) -> web.Application:
        app = web.Application(middlewares=[_json_errors])
        for source in self.sources:
            if source.enabled:
                app.router.add_post(source.path, partial(self.handle, source))
            else:
                app.router.add_route("*", source.path, partial(self.disabled, source))
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        app.router.add_get("/metrics", self.metrics)
        t = self.settings.topics
        metrics.init_series(self.enabled, [t.referrals, t.signups, t.orders])
        return app

    async def healthz(self, request: web.Request) -> web.Response:
        return _json(200, {"status": "alive"})

    async def readyz(self, request: web.Request) -> web.Response:
        ready = self.publisher.ready
        return _json(200 if ready else 503, {"ready": ready})

    async def metrics(self, request: web.Request) -> web.Response:
        response = web.Response(body=generate_latest(metrics.REGISTRY))
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def disabled(self, source: Source, request: web.Request) -> web.Response:
        return self._answer(source, time.monotonic(), 404, "not_found", {"outcome": "not_found"})

    def _unavailable(self, source: Source, started: float, reason: str, **log: object):
        headers = {"Retry-After": str(self.gateway.retry_after_seconds)}
        return self._answer(
            source,
            started,
            503,
            "unavailable",
            {"outcome": "unavailable"},
            headers,
            reason=reason,
            **log,
        )

    async def handle(self, source: Source, request: web.Request) -> web.Response:
        started = time.monotonic()
        if self.in_flight >= self.gateway.max_in_flight:
            return self._unavailable(source, started, "in_flight_limit")
        self.in_flight += 1
        try:
            return await self._handle(source, request, started)
        finally:
            self.in_flight -= 1

    async def _handle(self, source: Source, request: web.Request, started: float):
        limit = self.gateway.max_body_bytes
        body = await _read_body(request, limit)
        if body is None:
            response = self._answer(
                source, started, 413, "too_large", {"outcome": "too_large", "limit": limit}
            )
            response.force_close()  # the rest of the body is never read
            return response
        now = self.clock()
        if not source.verify(request.headers, body, now):
            return self._answer(source, started, 401, "unauthorized", {"outcome": "unauthorized"})
        webhook = WebhookRequest(request.path, request.headers, body)
        received = received_at(now)
        timeout = self.gateway.ack_timeout_seconds
        try:
            prepared = prepare(source, webhook, self.settings.topics, received)
        except Unmappable as exc:
            return await self._dead_letter(source, webhook, exc, received, started)
        if isinstance(prepared, Ignored):
            ignored = {"outcome": "ignored", "reason": prepared.reason}
            return self._answer(
                source,
                started,
                200,
                "ignored",
                ignored,
                reason=prepared.reason,
                delivery_id=prepared.delivery_id,
            )
        if not await self.publisher.publish(prepared.records, timeout):
            return self._unavailable(source, started, "not_acked", delivery_id=prepared.delivery_id)
        for record in prepared.records:
            metrics.PUBLISHED.labels(source.name, record.topic).inc()
        return self._answer(
            source,
            started,
            200,
            "published",
            {"outcome": "published", "event_ids": prepared.event_ids},
            delivery_id=prepared.delivery_id,
            events=len(prepared.records),
        )

    async def _dead_letter(
        self,
        source: Source,
        webhook: WebhookRequest,
        exc: Unmappable,
        received: str,
        started: float,
    ) -> web.Response:
        """The raw body into the DLQ, then 200 ``dead_lettered`` (vendor sources, §11.1) or
        400 with the failing indexes (canonical endpoint); 503 if the DLQ does not ack."""
        letter = dead_letter(source, webhook, exc, self.settings.topics.dlq_gateway, received)
        if not await self.publisher.publish([letter], self.gateway.ack_timeout_seconds):
            return self._unavailable(source, started, "dlq_not_acked")
        metrics.DLQ.labels(source.name, exc.reason).inc()
        fields = {"reason": exc.reason, "delivery_id": exc.delivery_id}
        if source.vendor:
            answer = {"outcome": "dead_lettered", "reason": exc.reason}
            return self._answer(source, started, 200, "dead_lettered", answer, **fields)
        invalid: dict = {"outcome": "invalid", "reason": exc.reason, "message": exc.message[:300]}
        if exc.failures:
            invalid["errors"] = [{"index": i, "reason": r} for i, r in exc.failures]
        return self._answer(source, started, 400, "invalid", invalid, **fields)

    def _answer(
        self,
        source: Source,
        started: float,
        status: int,
        outcome: str,
        body: dict,
        headers: dict[str, str] | None = None,
        reason: str = "",
        delivery_id: str = "",
        events: int = 0,
    ) -> web.Response:
        duration = time.monotonic() - started
        metrics.REQUESTS.labels(source.name, outcome).inc()
        metrics.DURATION.labels(source.name).observe(duration)
        log.info(
            "source=%s status=%d outcome=%s reason=%s delivery_id=%s events=%d duration_ms=%.1f",
            source.name,
            status,
            outcome,
            reason,
            delivery_id,
            events,
            duration * 1000,
        )
        return _json(status, body, headers)


async def _read_body(request: web.Request, limit: int) -> bytes | None:
    """The body, or None as soon as it is known to pass ``limit`` (reading stops at
    ``limit + 1`` bytes; a ``Content-Length`` above it is refused before any is read)."""
    if request.content_length is not None and request.content_length > limit:
        return None
    body = bytearray()
    while chunk := await request.content.read(limit + 1 - len(body)):
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


@web.middleware
async def _json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """aiohttp's own 404 and 405 answers, in the gateway's JSON form."""
    try:
        return await handler(request)
    except web.HTTPMethodNotAllowed:
        return _json(405, {"outcome": "method_not_allowed"}, {"Allow": "POST"})
    except web.HTTPNotFound:
        return _json(404, {"outcome": "not_found"})


async def serve(settings: Settings, gateway: GatewaySettings) -> None:
    """Run one gateway process until SIGTERM or SIGINT."""
    t = settings.topics
    options = {}
    if settings.broker_compat is BrokerCompat.TANSU:  # broker-tansu.md, as the worker's producer
        from streams.tansu import PRODUCER_REQUEST_TIMEOUT_MS

        options["request_timeout_ms"] = PRODUCER_REQUEST_TIMEOUT_MS
    topics = [t.referrals, t.signups, t.orders, t.dlq_gateway]
    publisher = Publisher(settings.kafka, topics, **options)
    service = Gateway(settings, gateway, publisher)
    runner = web.AppRunner(service.app(), **RUNNER_OPTIONS)
    await runner.setup()
    site = web.TCPSite(runner, gateway.host, gateway.port, backlog=1024)
    await site.start()
    connecting = asyncio.create_task(publisher.run())
    log.info(
        "gateway listening host=%s port=%d sources=%s",
        gateway.host,
        gateway.port,
        ",".join(service.enabled),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("gateway stopping")
    await runner.cleanup()  # stops accepting, lets requests in progress finish
    connecting.cancel()
    await publisher.stop()

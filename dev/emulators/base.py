"""What every vendor emulator shares: spec validation, auth, faults, control endpoints.

Each request is checked against the vendor's published OpenAPI document (openapi-core), and
each answer the emulator gives is checked against it too; violations are recorded, so a
test can assert that the sinks sent, and the emulators answered, only what the specs allow.

Faults, set with ``POST /_control/faults`` (JSON) and cleared with ``{}``:
``down`` (503 for everything), ``status_5xx_rate`` (0..1), ``status_5xx_first`` (the next N
requests fail with 500, whatever the rate), ``status_5xx_every`` (every Nth request fails
with 500: a steady error rate that never fails twice in a row), ``latency`` (seconds),
``rate_limit`` (answer 429 with ``Retry-After: retry_after`` to the next ``count`` requests),
``reject`` (record ids the vendor refuses as invalid). ``GET /_control/state`` reports what
was accepted, deduplicated and refused.

``limits``, pairs of (requests, seconds), make the emulator enforce rate limits in sliding
windows, answering 429 like the vendor and counting it in ``over_limit``: a sink that paces
itself right never sees one. ``documented_limits`` are the vendor's own;
``enforce_documented_limits()`` turns them on for every endpoint. A vendor with a second
endpoint (Klaviyo's bulk jobs) adds an :class:`Endpoint` with its own spec and limits.
``validate = False`` skips the OpenAPI checks (benchmarks of a sink's throughput measure
the sink, not openapi-core).
"""

from __future__ import annotations

import asyncio
import bisect
import json
import math
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse

__all__ = ["Emulator", "Endpoint", "Faults"]

SPECS = Path(__file__).parent / "specs"
HOST = "http://emulator"


def load_spec(name: str) -> OpenAPI:
    text = (SPECS / name).read_text()
    spec = json.loads(text) if name.endswith(".json") else yaml.safe_load(text)
    spec["servers"] = [{"url": HOST}]  # the published hosts, replaced by wherever we run
    return OpenAPI.from_dict(spec)


@dataclass
class Faults:
    down: bool = False
    status_5xx_rate: float = 0.0
    status_5xx_first: int = 0
    status_5xx_every: int = 0
    latency: float = 0.0
    rate_limit: dict[str, float] = field(default_factory=dict)
    reject: set[str] = field(default_factory=set)
    answered: int = 0
    """Requests answered since these faults were set (for ``status_5xx_every``)."""

    def nth_fails(self) -> bool:
        self.answered += 1
        return bool(self.status_5xx_every) and self.answered % self.status_5xx_every == 0

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Faults:
        return cls(
            down=bool(data.get("down", False)),
            status_5xx_rate=float(data.get("status_5xx_rate", 0.0)),
            status_5xx_first=int(data.get("status_5xx_first", 0)),
            status_5xx_every=int(data.get("status_5xx_every", 0)),
            latency=float(data.get("latency", 0.0)),
            rate_limit=dict(data.get("rate_limit") or {}),
            reject=set(data.get("reject") or ()),
        )


@dataclass
class Endpoint:
    """One route of a vendor: its spec (``None``: the handler checks the shape), its
    handler and the rate limits it enforces."""

    route: str
    openapi: OpenAPI | None
    handle: Callable[[web.Request, Any], Awaitable[web.Response]]
    documented_limits: tuple[tuple[int, float], ...] = ()
    limits: tuple[tuple[int, float], ...] = ()
    arrivals: deque[float] = field(default_factory=deque)


class Emulator:
    """Base class: subclasses set ``spec_file`` and ``route``, and implement ``authorised``
    and ``handle`` (the vendor's own behaviour, dedup rules included), and ``env`` (the
    worker settings of the sink it stands in for)."""

    spec_file: str | None
    route: str
    name: str
    documented_limits: tuple[tuple[int, float], ...] = ()

    def __init__(self) -> None:
        self.openapi = load_spec(self.spec_file) if self.spec_file else None
        self.endpoints = [Endpoint(self.route, self.openapi, self.handle, self.documented_limits)]
        self.faults = Faults()
        self.requests = 0
        self.requests_by_route: dict[str, int] = {}
        self.invalid_requests: list[str] = []
        self.response_violations: list[str] = []
        self.status_counts: dict[int, int] = {}
        self.duplicates = 0
        self.rejected: list[str] = []
        self.over_limit = 0
        self.validate = True
        self.accept_log: list[tuple[str, float]] = []
        """(record key, wall-clock time) of every write the vendor accepted (latency)."""

    @property
    def limits(self) -> tuple[tuple[int, float], ...]:
        """The main endpoint's enforced limits."""
        return self.endpoints[0].limits

    @limits.setter
    def limits(self, value: tuple[tuple[int, float], ...]) -> None:
        self.endpoints[0].limits = value

    def enforce_documented_limits(self) -> None:
        for endpoint in self.endpoints:
            endpoint.limits = endpoint.documented_limits

    def env(self, url: str) -> dict[str, str]:  # pragma: no cover - abstract
        """The worker settings that point the sink at this emulator, served at ``url``."""
        raise NotImplementedError

    def held(self) -> Any:
        """What the vendor holds, in the shape ``expect`` predicts."""
        raise NotImplementedError  # pragma: no cover - abstract

    @staticmethod
    def count(held: Any) -> int:
        """How many records ``held`` (or ``expect``'s answer) is, for progress lines."""
        return len(held)

    @staticmethod
    def expect(emitted: list, advocates: list) -> Any:  # pragma: no cover - abstract
        """What the vendor must hold once ``emitted`` (attribution events) and
        ``advocates`` (each advocate's final totals) are delivered once."""
        raise NotImplementedError

    def accepted(self, key: str) -> None:
        self.accept_log.append((key, time.time()))

    def app(self) -> web.Application:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        for endpoint in self.endpoints:
            app.router.add_post(endpoint.route, partial(self._endpoint, endpoint))
        app.router.add_post("/_control/faults", self._set_faults)
        app.router.add_get("/_control/state", self._state)
        return app

    def authorised(self, request: web.Request) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    async def handle(self, request: web.Request, body: Any) -> web.Response:  # pragma: no cover
        raise NotImplementedError

    def state(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "status_counts": self.status_counts,
            "invalid_requests": self.invalid_requests[-20:],
            "response_violations": self.response_violations[-20:],
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "over_limit": self.over_limit,
        }

    async def _endpoint(self, endpoint: Endpoint, request: web.Request) -> web.Response:
        self.requests += 1
        self.requests_by_route[endpoint.route] = self.requests_by_route.get(endpoint.route, 0) + 1
        raw = await request.read()
        response = await self._answer(endpoint, request, raw)
        self.status_counts[response.status] = self.status_counts.get(response.status, 0) + 1
        self._check_response(endpoint, request, raw, response)
        return response

    async def _answer(self, endpoint: Endpoint, request: web.Request, raw: bytes) -> web.Response:
        faults = self.faults
        if faults.latency:
            await asyncio.sleep(faults.latency)
        if faults.down:
            return web.json_response({"message": "service unavailable"}, status=503)
        limited = faults.rate_limit
        if limited.get("count", 0) > 0:
            limited["count"] -= 1
            retry_after = str(limited.get("retry_after", 1))
            return self.rate_limited(retry_after)
        if (
            faults.nth_fails()
            or faults.status_5xx_first > 0
            or (faults.status_5xx_rate and random.random() < faults.status_5xx_rate)
        ):
            faults.status_5xx_first = max(0, faults.status_5xx_first - 1)
            return web.json_response({"message": "internal error"}, status=500)
        if not self.authorised(request):
            return web.json_response({"message": "authentication failed"}, status=401)
        if endpoint.limits and (retry_after := self._over_limit(endpoint)) is not None:
            self.over_limit += 1
            return self.rate_limited(str(math.ceil(retry_after)))  # whole seconds (RFC 9110)
        if endpoint.openapi is None or not self.validate:
            return await endpoint.handle(request, json.loads(raw))
        mock = MockRequest(
            HOST, request.method.lower(), request.path, args=dict(request.query),
            data=raw, headers=dict(request.headers), content_type=request.content_type,
        )  # fmt: skip
        try:
            endpoint.openapi.validate_request(mock)
        except Exception as exc:
            detail = f"{type(exc).__name__}: {exc} {getattr(exc, '__cause__', '') or ''}"
            self.invalid_requests.append(detail[:500])
            return self.invalid(detail[:300])
        return await endpoint.handle(request, json.loads(raw))

    @staticmethod
    def _over_limit(endpoint: Endpoint) -> float | None:
        """Seconds until the request would fit every window, or ``None``: it is counted."""
        now, arrivals = time.monotonic(), endpoint.arrivals
        longest = max(seconds for _, seconds in endpoint.limits)
        while arrivals and arrivals[0] <= now - longest:
            arrivals.popleft()
        waits = []
        for requests, seconds in endpoint.limits:
            recent = len(arrivals) - bisect.bisect_right(arrivals, now - seconds)
            if recent >= requests:  # the window frees when its oldest arrival leaves
                waits.append(arrivals[-requests] + seconds - now)
        if waits:
            return max(waits)
        arrivals.append(now)
        return None

    def rate_limited(self, retry_after: str) -> web.Response:
        return web.json_response(
            {"message": "rate limited"}, status=429, headers={"Retry-After": retry_after}
        )

    def invalid(self, message: str) -> web.Response:
        return web.json_response({"message": message}, status=400)

    def _check_response(
        self, endpoint: Endpoint, request: web.Request, raw: bytes, response: web.Response
    ) -> None:
        if endpoint.openapi is None or not self.validate or response.status in (401, 429, 500, 503):
            return  # fault answers: shaped like the vendors' but not in every spec
        mock_request = MockRequest(
            HOST, request.method.lower(), request.path, args=dict(request.query), data=raw,
            headers=dict(request.headers), content_type=request.content_type,
        )  # fmt: skip
        body = response.body if isinstance(response.body, bytes) else b""
        mock_response = MockResponse(
            body, status_code=response.status, headers=dict(response.headers),
            content_type=response.content_type,
        )  # fmt: skip
        try:
            endpoint.openapi.validate_response(mock_request, mock_response)
        except Exception as exc:
            self.response_violations.append(f"{response.status} {type(exc).__name__}: {exc}"[:500])

    async def _set_faults(self, request: web.Request) -> web.Response:
        self.faults = Faults.from_json(await request.json())
        return web.json_response({"ok": True})

    async def _state(self, request: web.Request) -> web.Response:
        return web.json_response(self.state())

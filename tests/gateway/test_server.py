"""The request checks of gateway.md §4 in order, against a real aiohttp server on loopback;
only the broker edge is in memory here (tests/integration/test_gateway.py has the broker)."""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import hmac
import time

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestServer
from pydantic import SecretStr

from gateway import metrics
from gateway.publisher import GatewayRecord
from gateway.server import RUNNER_OPTIONS, Gateway
from streams.settings import Settings

from . import vectors as v
from .conftest import gateway_settings

LIMIT = 2000


class MemoryPublisher:
    def __init__(self) -> None:
        self.ready = True
        self.acks = True
        self.delay = 0.0
        self.records: list[GatewayRecord] = []

    async def publish(self, records, timeout: float) -> bool:
        if self.delay:
            await asyncio.sleep(min(self.delay, timeout))
        if not self.acks or self.delay > timeout:
            return False
        self.records.extend(records)
        return True


@pytest.fixture
def publisher() -> MemoryPublisher:
    return MemoryPublisher()


@pytest.fixture
async def server(publisher, request):
    overrides = getattr(request, "param", {})
    settings = gateway_settings(max_body_bytes=LIMIT, ack_timeout_seconds=0.5, **overrides)
    gateway = Gateway(Settings(), settings, publisher, clock=lambda: v.STRIPE_T)
    async with await started(gateway) as test_server:
        test_server.gateway = gateway
        yield test_server


async def started(gateway: Gateway) -> TestServer:
    """A test server with the gateway's own runner options (TestServer's context manager
    would start it without them)."""
    server = TestServer(gateway.app())
    await server.start_server(**RUNNER_OPTIONS)
    return server


async def post(server, path: str, body: bytes, headers: dict[str, str] | None = None):
    async with (
        aiohttp.ClientSession() as session,
        session.post(server.make_url(path), data=body, headers=headers or {}) as r,
    ):
        return r.status, orjson.loads(await r.read()), r.headers


def shopify_headers(body: bytes, topic: str = "orders/paid") -> dict[str, str]:
    mac = hmac.new(v.SHOPIFY_SECRET.encode(), body, hashlib.sha256).digest()
    return {
        "X-Shopify-Hmac-Sha256": base64.b64encode(mac).decode(),
        "X-Shopify-Topic": topic,
        "X-Shopify-Shop-Domain": v.SHOP,
        "X-Shopify-Webhook-Id": "wh-1",
    }


def requests_total(source: str, outcome: str) -> float:
    return (
        metrics.REGISTRY.get_sample_value(
            "refstream_gateway_requests_total", {"source": source, "outcome": outcome}
        )
        or 0.0
    )


async def test_every_vector_is_published(server, publisher):
    cases = [
        (
            "/v1/webhooks/shopify",
            v.SHOPIFY_CUSTOMER,
            {
                "X-Shopify-Hmac-Sha256": v.SHOPIFY_CUSTOMER_HMAC,
                "X-Shopify-Topic": "customers/create",
                "X-Shopify-Shop-Domain": v.SHOP,
            },
            ["gw_d08710f9cbde00797027c6494ce62772"],
        ),
        (
            "/v1/webhooks/stripe",
            v.STRIPE_SESSION,
            {"Stripe-Signature": v.STRIPE_SIGNATURE},
            ["gw_12de976a8c8a0ad74496b76100290866"],
        ),
        (
            "/v1/webhooks/referralcandy",
            v.REFERRALCANDY,
            {"X-Referral-Candy-Signature": v.REFERRALCANDY_SIGNATURE},
            ["gw_19613f1a47daab9eac9a6aa7d6a13fd5", "gw_12ffe6557b0e3e301a8ad014b178c35b"],
        ),
        (
            "/v1/webhooks/rewardful",
            v.REWARDFUL,
            {"X-Rewardful-Signature": v.REWARDFUL_SIGNATURE},
            ["gw_273c38b128fb533f2b3254558897e6eb", "gw_c5ee5905f9ed88fde43dbec4f289174b"],
        ),
        (
            "/v1/events/signups",
            v.INTERNAL,
            {"X-Refstream-Signature": v.INTERNAL_SIGNATURE},
            ["evt_2"],
        ),
    ]
    for path, body, headers, ids in cases:
        status, answer, _ = await post(server, path, body, headers)
        assert (status, answer) == (200, {"outcome": "published", "event_ids": ids}), path
    internal = publisher.records[-1]
    assert (internal.topic, internal.key, internal.value) == ("signups", b"ref_1", v.INTERNAL)
    headers = dict(internal.headers)
    assert headers["gateway.source"] == b"internal"
    assert headers["gateway.received_at"] == b"2026-01-01T00:00:00.000Z"
    assert [r.topic for r in publisher.records] == [
        "signups",
        "orders",
        "referrals",
        "signups",
        "referrals",
        "signups",
        "signups",
    ]


async def test_wrong_signatures_are_401_and_nothing_is_stored(server, publisher):
    before = requests_total("stripe", "unauthorized")
    flipped = v.STRIPE_SESSION.replace(b"4990", b"4991")
    for body, headers in [
        (flipped, {"Stripe-Signature": v.STRIPE_SIGNATURE}),
        (v.STRIPE_SESSION, {}),
        (
            v.STRIPE_SESSION,
            {"Stripe-Signature": v.STRIPE_SIGNATURE.replace("1767225600", "1767225299")},
        ),
        (
            gzip.compress(v.STRIPE_SESSION),
            {"Stripe-Signature": v.STRIPE_SIGNATURE, "Content-Encoding": "gzip"},
        ),
    ]:
        status, answer, _ = await post(server, "/v1/webhooks/stripe", body, headers)
        assert (status, answer) == (401, {"outcome": "unauthorized"}), headers
    assert publisher.records == []
    assert requests_total("stripe", "unauthorized") - before == 4


@pytest.mark.parametrize("server", [{"signature_tolerance_seconds": 300}], indirect=True)
async def test_stale_and_future_timestamps_are_401(server):
    for clock in (v.STRIPE_T + 301, v.STRIPE_T - 301):
        server.gateway.clock = lambda clock=clock: clock
        status, _, _ = await post(
            server,
            "/v1/webhooks/stripe",
            v.STRIPE_SESSION,
            {"Stripe-Signature": v.STRIPE_SIGNATURE},
        )
        assert status == 401
        status, _, _ = await post(
            server,
            "/v1/events/signups",
            v.INTERNAL,
            {"X-Refstream-Signature": v.INTERNAL_SIGNATURE},
        )
        assert status == 401


async def test_routes_methods_and_disabled_sources(publisher):
    settings = gateway_settings(rewardful_secret=SecretStr(""))
    async with await started(Gateway(Settings(), settings, publisher)) as server:
        before = requests_total("rewardful", "not_found")
        status, answer, _ = await post(
            server,
            "/v1/webhooks/rewardful",
            v.REWARDFUL,
            {"X-Rewardful-Signature": v.REWARDFUL_SIGNATURE},
        )
        assert (status, answer) == (404, {"outcome": "not_found"})
        assert requests_total("rewardful", "not_found") - before == 1
        assert (await post(server, "/v1/webhooks/nope", b"{}"))[:2] == (
            404,
            {"outcome": "not_found"},
        )
        async with (
            aiohttp.ClientSession() as session,
            session.get(server.make_url("/v1/webhooks/shopify")) as r,
        ):
            assert (r.status, r.headers["Allow"]) == (405, "POST")
            assert orjson.loads(await r.read()) == {"outcome": "method_not_allowed"}


async def test_authentic_but_unmappable_is_dead_lettered_with_200(server, publisher):
    body = b'{"id": 1, "created_at": "2025-01-01T00:00:00Z", "financial_status": "paid"'
    status, answer, _ = await post(server, "/v1/webhooks/shopify", body, shopify_headers(body))
    assert (status, answer) == (200, {"outcome": "dead_lettered", "reason": "invalid_json"})
    (letter,) = publisher.records
    headers = dict(letter.headers)
    assert (letter.topic, letter.key, letter.value) == ("refstream-dlq-gateway", b"shopify", body)
    assert headers["error.reason"] == b"invalid_json"
    assert headers["gateway.path"] == b"/v1/webhooks/shopify"
    assert headers["vendor.x-shopify-shop-domain"] == v.SHOP.encode()
    assert not any(b"Hmac" in name.encode() or "hmac" in name for name, _ in letter.headers)


async def test_a_mapped_event_the_validator_refuses_is_dead_lettered(server, publisher):
    order = orjson.loads(v.SHOPIFY_ORDER) | {"total_price_set": None, "total_price": "-5"}
    body = orjson.dumps(order)
    status, answer, _ = await post(server, "/v1/webhooks/shopify", body, shopify_headers(body))
    assert (status, answer) == (200, {"outcome": "dead_lettered", "reason": "schema_invalid"})
    assert [r.topic for r in publisher.records] == ["refstream-dlq-gateway"]


async def test_canonical_bad_input_is_400_with_indexes_and_nothing_published(server, publisher):
    good = orjson.loads(v.INTERNAL)
    body = orjson.dumps([good, good | {"event_id": "gw_1"}, good | {"occurred_at": "yesterday"}])
    t = str(v.INTERNAL_T)
    sig = hmac.new(v.INTERNAL_SECRET.encode(), t.encode() + b"." + body, hashlib.sha256).hexdigest()
    status, answer, _ = await post(
        server, "/v1/events/signups", body, {"X-Refstream-Signature": f"t={t},v1={sig}"}
    )
    assert status == 400
    assert answer["outcome"] == "invalid" and answer["reason"] == "reserved_event_id"
    assert answer["errors"] == [
        {"index": 1, "reason": "reserved_event_id"},
        {"index": 2, "reason": "schema_invalid"},
    ]
    assert [(r.topic, r.value) for r in publisher.records] == [("refstream-dlq-gateway", body)]


async def test_ignored_is_200_and_publishes_nothing(server, publisher):
    body = v.SHOPIFY_ORDER
    status, answer, _ = await post(
        server, "/v1/webhooks/shopify", body, shopify_headers(body, "orders/updated")
    )
    assert (status, answer) == (200, {"outcome": "ignored", "reason": "event_type_ignored"})
    assert publisher.records == []


async def test_no_ack_in_time_is_503_with_retry_after(server, publisher):
    publisher.delay = 5.0
    started = time.monotonic()
    status, answer, headers = await post(
        server, "/v1/webhooks/shopify", v.SHOPIFY_ORDER, shopify_headers(v.SHOPIFY_ORDER)
    )
    assert time.monotonic() - started < 2.0  # the ack timeout is 0.5 s here
    assert (status, answer, headers["Retry-After"]) == (503, {"outcome": "unavailable"}, "30")
    publisher.delay, publisher.ready = 0.0, False
    body = b"not json"  # a dead letter that is not acked is a 503 too
    publisher.acks = False
    status, _, _ = await post(server, "/v1/webhooks/shopify", body, shopify_headers(body))
    assert status == 503


@pytest.mark.parametrize("server", [{"max_in_flight": 2}], indirect=True)
async def test_beyond_the_in_flight_limit_is_503(server, publisher):
    publisher.delay = 0.3
    answers = await asyncio.gather(
        *[
            post(server, "/v1/webhooks/shopify", v.SHOPIFY_ORDER, shopify_headers(v.SHOPIFY_ORDER))
            for _ in range(5)
        ]
    )
    assert sorted(status for status, _, _ in answers) == [200, 200, 503, 503, 503]


async def raw_exchange(server, head: bytes, chunks: list[bytes]) -> tuple[bytes, bool]:
    """Send ``head`` and ``chunks``; the answer, and whether it came before the body ended
    (the body is never finished: a server that read to the end would never answer)."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(head)
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
        answer = await asyncio.wait_for(reader.read(4096), timeout=5)
        return answer, True
    finally:
        writer.close()


async def test_too_large_is_413_without_reading_to_the_end(server, publisher):
    head = (
        b"POST /v1/webhooks/shopify HTTP/1.1\r\nHost: x\r\nContent-Length: 50000000\r\n"
        b"X-Shopify-Hmac-Sha256: x\r\n\r\n"
    )
    answer, _ = await raw_exchange(server, head, [b"{" * 100])
    assert answer.startswith(b"HTTP/1.1 413") and b'"limit":2000' in answer
    head = b"POST /v1/webhooks/shopify HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunk = b"{" * 1200
    answer, _ = await raw_exchange(server, head, [b"4b0\r\n" + chunk + b"\r\n"] * 2)
    assert answer.startswith(b"HTTP/1.1 413")
    assert publisher.records == []


async def test_health_ready_and_metrics(server, publisher):
    async with aiohttp.ClientSession() as session:
        async with session.get(server.make_url("/healthz")) as r:
            assert r.status == 200
        async with session.get(server.make_url("/readyz")) as r:
            assert r.status == 200
        publisher.ready = False
        async with session.get(server.make_url("/readyz")) as r:
            assert r.status == 503
        await post(
            server, "/v1/webhooks/shopify", v.SHOPIFY_ORDER, shopify_headers(v.SHOPIFY_ORDER)
        )
        async with session.get(server.make_url("/metrics")) as r:
            text = await r.text()
    for family in (
        "refstream_gateway_requests_total",
        "refstream_gateway_request_duration_seconds",
        "refstream_gateway_events_published_total",
        "refstream_gateway_dlq_total",
    ):
        assert family in text
    assert 'refstream_gateway_requests_total{outcome="unauthorized",source="rewardful"}' in text
    assert "bob" not in text.lower()


async def test_without_a_broker_it_is_not_ready_and_answers_503():
    """The real producer, pointed at a port nobody listens on: the gateway starts anyway,
    ``/readyz`` is 503 and a verified webhook is 503 with Retry-After (the platform retries)."""
    from dev.broker import free_port
    from gateway.publisher import Publisher
    from streams.connection import KafkaConnection, KafkaSecurity

    publisher = Publisher(KafkaConnection(f"127.0.0.1:{free_port()}", KafkaSecurity()), ["x"])
    connecting = asyncio.create_task(publisher.run())
    gateway = Gateway(Settings(), gateway_settings(), publisher)
    server = await started(gateway)
    try:
        async with aiohttp.ClientSession() as session, session.get(server.make_url("/readyz")) as r:
            assert r.status == 503
        status, answer, headers = await post(
            server, "/v1/webhooks/shopify", v.SHOPIFY_ORDER, shopify_headers(v.SHOPIFY_ORDER)
        )
        assert (status, answer, headers["Retry-After"]) == (503, {"outcome": "unavailable"}, "30")
    finally:
        await server.close()
        connecting.cancel()
        await publisher.stop()

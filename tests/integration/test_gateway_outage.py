"""The broker stopped for 20 s while webhooks stream in (issue 18): every request answered
200 was published exactly as mapped, every other one, sent again as a platform does, ends
published, and no request waits past the ack timeout."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import orjson
import pytest
from multidict import CIMultiDict

from dev.gateway import Signer
from dev.kafka_io import read_topic
from gateway.settings import GatewaySettings, Identity
from gateway.sources import WebhookRequest
from gateway.sources.shopify import Shopify

from .gateway_helpers import send, start_gateway
from .test_broker_restart import kafka, restartable  # noqa: F401  (this module's own broker)

pytestmark = pytest.mark.integration

OUTAGE_SECONDS = 20.0
ACK_TIMEOUT = 3.0
SLACK = 2.0
"""What a request may take beyond the ack timeout on a CPU shared with other test runs."""
SENDERS = 4


def order(i: int) -> dict:
    email = f"buyer{i}@example.com"
    return {"id": 900000 + i, "email": email, "created_at": "2026-11-30T10:00:00Z",
            "financial_status": "paid", "test": False, "total_price": f"{i}.50", "currency": "EUR",
            "customer": {"id": 700000 + i, "email": email}}  # fmt: skip


async def test_a_broker_outage_loses_no_acknowledged_webhook(pipeline, restartable):  # noqa: F811
    gateway = await start_gateway(
        pipeline, REFSTREAM_GATEWAY_ACK_TIMEOUT_SECONDS=str(ACK_TIMEOUT),
        REFSTREAM_GATEWAY_IDENTITY="email",
    )  # fmt: skip
    signer = Signer()
    answers: dict[int, list[tuple[int, float]]] = {}
    next_order = iter(range(1, 1_000_000))
    stop_sending = asyncio.Event()

    async def attempt(session: aiohttp.ClientSession, i: int) -> None:
        request = signer.shopify("orders/paid", order(i), f"ev-{i}")
        started = time.monotonic()
        try:
            status, _ = await send(session, gateway, request, timeout=ACK_TIMEOUT + 10)
        except (aiohttp.ClientError, TimeoutError):
            status = 0
        answers.setdefault(i, []).append((status, time.monotonic() - started))

    async def sender(session: aiohttp.ClientSession) -> None:
        while not stop_sending.is_set():
            await attempt(session, next(next_order))
            await asyncio.sleep(0.05)

    async with aiohttp.ClientSession() as session:
        senders = [asyncio.create_task(sender(session)) for _ in range(SENDERS)]
        await asyncio.sleep(3)
        await asyncio.to_thread(restartable.stop)
        stopped = time.monotonic()
        await asyncio.sleep(OUTAGE_SECONDS)
        await asyncio.to_thread(restartable.start)
        outage = time.monotonic() - stopped
        await asyncio.sleep(5)
        stop_sending.set()
        await asyncio.gather(*senders)

        # Every request not answered 200 is sent again, as a platform retries, until it is.
        deadline = time.monotonic() + 90
        while failed := [i for i, a in answers.items() if a[-1][0] != 200]:
            assert time.monotonic() < deadline, f"{len(failed)} webhooks never accepted"
            for i in failed:
                await attempt(session, i)
            await asyncio.sleep(1)

    attempts = [a for tries in answers.values() for a in tries]
    statuses = [status for status, _ in attempts]
    assert statuses.count(503) > 0, "the outage must have been seen"
    assert set(statuses) <= {200, 503}, "every request is answered: 200 or 503"
    slowest = max(elapsed for _, elapsed in attempts)
    assert slowest < ACK_TIMEOUT + SLACK, f"a request took {slowest:.1f} s"

    mapping = Shopify(GatewaySettings.model_construct(
        **{**GatewaySettings().model_dump(), "identity": Identity.EMAIL}))  # fmt: skip
    want = {}
    for i in answers:
        request = signer.shopify("orders/paid", order(i), f"ev-{i}")
        (event,) = mapping.map(
            WebhookRequest(request.path, CIMultiDict(request.headers), request.body)
        ).events
        want[event["event_id"]] = event
    records = await read_topic(
        pipeline.servers, pipeline.topics["orders"], timeout=60, idle=2.0,
        until=lambda r: {orjson.loads(x.value)["event_id"] for x in r} >= set(want),
    )  # fmt: skip
    got: dict[str, list[dict]] = {}
    for record in records:
        event = orjson.loads(record.value)
        got.setdefault(event["event_id"], []).append(event)
    assert set(got) == set(want), f"lost {len(set(want) - set(got))} acknowledged webhooks"
    assert all(copy == want[i] for i, copies in got.items() for copy in copies)
    print(
        f"gateway outage: {len(answers)} webhooks, {len(attempts)} requests "
        f"({statuses.count(503)} answered 503), {len(records)} records for "
        f"{len(want)} facts; broker away {outage:.1f} s; slowest answer {slowest:.2f} s"
    )

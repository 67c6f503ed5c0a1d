"""The signed webhook sink, through the shared mechanism."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from aiohttp import web
from pydantic import SecretStr

from dev.broker import free_port
from dev.emulators.webhook import WebhookEmulator
from sinks.delivery.deliverer import Deliverer
from sinks.webhook import WebhookSettings, WebhookSink

from .conftest import RecordingDLQ, attribution, items


@pytest.fixture
async def receiver():
    emulator = WebhookEmulator()
    runner = web.AppRunner(emulator.app())
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    emulator.url = f"http://127.0.0.1:{port}/notify"
    yield emulator
    await runner.cleanup()


async def make(receiver, secret: str) -> WebhookSink:
    sink = WebhookSink(WebhookSettings(url=receiver.url, secret=SecretStr(secret)))
    sink.policy = replace(sink.policy, backoff_base=0.01, max_attempts=50)
    await sink.setup()
    return sink


async def test_signed_notifications_reach_the_advocate_once(receiver):
    receiver.faults.status_5xx_rate = 0.3
    sink = await make(receiver, receiver.secret)
    dlq = RecordingDLQ("webhook")
    converted = attribution(1, "referral_converted")
    batch = items(attribution(1), converted, attribution(2, "order_attributed"))
    deliverer = Deliverer(sink, dlq)
    await deliverer.deliver(batch)
    await deliverer.deliver(batch)
    await sink.aclose()
    assert set(receiver.notifications) == {
        converted.attribution_event_id,
        attribution(2, "order_attributed").attribution_event_id,
    }
    assert receiver.notifications[converted.attribution_event_id]["advocate_id"] == "adv_1"
    assert receiver.duplicates == 2
    assert dlq.sent == []


async def test_a_wrong_secret_is_refused_and_dead_lettered(receiver):
    sink = await make(receiver, "not-the-secret")
    dlq = RecordingDLQ("webhook")
    await Deliverer(sink, dlq).deliver(items(attribution(1, "referral_converted")))
    await sink.aclose()
    assert receiver.notifications == {}
    assert [h["error.reason"] for _, _, _, h in dlq.sent] == [b"unauthorized"]


async def test_a_wrong_secret_refuses_a_batch_of_16_and_every_record_is_dead_lettered(receiver):
    """The reported hang: each 401 split the batch while holding its in-flight slot, and at
    16 records (4 in flight) the halves waited for slots forever."""
    sink = await make(receiver, "not-the-secret")
    sink.policy = replace(sink.policy, batch_size=16, max_in_flight=4, limits=((1000, 1.0),))
    dlq = RecordingDLQ("webhook")
    batch = items(*(attribution(n, "referral_converted") for n in range(16)))
    await asyncio.wait_for(Deliverer(sink, dlq).deliver(batch), 20)
    await sink.aclose()
    assert receiver.notifications == {}
    assert sorted(key for _, key, _, _ in dlq.sent) == sorted(
        f"ref_{n}".encode() for n in range(16)
    )
    assert {h["error.reason"] for _, _, _, h in dlq.sent} == {b"unauthorized"}

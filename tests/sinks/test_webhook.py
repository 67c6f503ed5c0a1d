"""The worked example sink of docs/writing-a-sink.md, through the shared mechanism."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from aiohttp import web
from pydantic import SecretStr

from dev.broker import free_port
from dev.emulators import WebhookEmulator
from sinks.delivery.deliverer import Deliverer
from sinks.webhook import WebhookSink

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
    sink = WebhookSink(receiver.url, SecretStr(secret))
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


def test_the_guide_shows_the_sink_exactly_as_it_is():
    guide = (Path(__file__).parents[2] / "docs" / "writing-a-sink.md").read_text()
    source = (Path(__file__).parents[2] / "sinks" / "webhook.py").read_text()
    assert f"```python\n{source}```" in guide

"""A rebalance fences a sink's delivery: once the revoke callback returns, none of the old
owner's requests can still reach the vendor (sinks/delivery/fence.py, agents/fanout.py)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import pytest

from sinks.base import Sink, WriteResult
from sinks.batch import Batch, Item
from sinks.delivery.deliverer import Deliverer
from sinks.delivery.fence import FencedDelivery
from sinks.hubspot import HUBSPOT_POLICY

from ..conftest import RecordingDLQ, attribution, items


class SlowVendor(Sink):
    """Takes 50 ms per request and notes when each one started and landed."""

    name = "slow"

    def __init__(self) -> None:
        super().__init__(settings=None)
        self.policy = replace(
            HUBSPOT_POLICY, batch_size=10, max_in_flight=2, limits=((1000, 1.0),), linger=0.0
        )
        self.started: list[float] = []
        self.landed: list[tuple[float, tuple[str, ...]]] = []

    def encode(self, item: Item) -> bytes:
        return item.event.referral_id.encode()

    async def write(self, batch: Batch) -> WriteResult:
        self.started.append(time.monotonic())
        await asyncio.sleep(0.05)
        self.landed.append((time.monotonic(), tuple(i.event.referral_id for i in batch)))
        return WriteResult()


def fence() -> tuple[SlowVendor, RecordingDLQ, FencedDelivery]:
    vendor, dlq = SlowVendor(), RecordingDLQ("slow")
    return vendor, dlq, FencedDelivery("slow", Deliverer(vendor, dlq).deliver)


async def test_a_delivery_ends_delivered_when_no_rebalance_comes():
    vendor, dlq, delivery = fence()
    assert await delivery.run(items(*(attribution(n) for n in range(40))), delivery.epoch)
    assert sorted(r for _, ids in vendor.landed for r in ids) == sorted(
        f"ref_{n}" for n in range(40)
    )
    assert not dlq.sent


async def test_a_revoke_stops_the_delivery_and_nothing_lands_after_it():
    vendor, dlq, delivery = fence()
    batch = items(*(attribution(n) for n in range(200)))  # 20 requests, 2 at a time: 0.5 s
    running = asyncio.ensure_future(delivery.run(batch, delivery.epoch))
    while len(vendor.started) < 4:
        await asyncio.sleep(0.01)
    await delivery.stop()
    stopped_at = time.monotonic()
    assert await running is False
    started = len(vendor.started)
    await asyncio.sleep(0.3)  # long enough for several more requests, had any gone on
    assert len(vendor.started) == started < 20
    assert all(at <= stopped_at for at, _ in vendor.landed)
    assert not dlq.sent


async def test_a_batch_fetched_before_a_revoke_is_not_delivered_after_it():
    vendor, _, delivery = fence()
    fetched_in = delivery.epoch
    await delivery.stop()  # the rebalance came while the batch was being fetched
    assert await delivery.run(items(attribution(1)), fetched_in) is False
    assert not vendor.started
    assert await delivery.run(items(attribution(2)), delivery.epoch) is True


async def test_the_deliverys_own_error_is_raised():
    async def broken(batch: Batch) -> None:
        raise RuntimeError("a bug in the sink")

    delivery = FencedDelivery("broken", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        await delivery.run(items(attribution(1)), delivery.epoch)


async def test_a_revoke_lets_every_write_already_sent_land_before_it_returns():
    """Cancelling a sent request would not unsend it: it could reach the vendor after the
    new owner's, so the fence waits for it instead."""
    vendor, _, delivery = fence()
    running = asyncio.ensure_future(delivery.run(items(*(attribution(n) for n in range(200))), 0))
    while len(vendor.started) < 4:
        await asyncio.sleep(0.01)
    await delivery.stop()
    assert await running is False
    assert len(vendor.landed) == len(vendor.started)


async def test_a_write_that_hangs_past_the_grace_is_cancelled(monkeypatch):
    monkeypatch.setattr("sinks.delivery.deliverer.SENT_WRITE_GRACE", 0.1)
    vendor, dlq, delivery = fence()
    hung = asyncio.Event()

    async def hang(batch: Batch) -> WriteResult:
        hung.set()
        await asyncio.sleep(3600)
        return WriteResult()

    vendor.write = hang
    running = asyncio.ensure_future(delivery.run(items(attribution(1)), delivery.epoch))
    await hung.wait()
    started = time.monotonic()
    await delivery.stop()
    assert 0.1 <= time.monotonic() - started < 1.0
    assert await running is False
    assert not dlq.sent


async def test_a_cancelled_caller_returns_only_once_its_delivery_has_ended():
    """Shutdown cancels the consumer's loop: its delivery must end before the consumer
    leaves the group, or a write could land after the next owner's."""
    vendor, _, delivery = fence()
    running = asyncio.ensure_future(delivery.run(items(*(attribution(n) for n in range(200))), 0))
    while len(vendor.started) < 2:
        await asyncio.sleep(0.01)
    running.cancel()
    await asyncio.wait({running})
    ended = time.monotonic()
    assert len(vendor.landed) == len(vendor.started)
    await asyncio.sleep(0.2)
    assert all(at <= ended for at, _ in vendor.landed)

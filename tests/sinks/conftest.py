"""Sinks against the vendor emulators: real aiohttp servers on loopback."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from dev.emulators import running_emulators
from schemas.attribution import (
    AttributionEvent,
    AttributionKind,
    OrderRef,
    Party,
    Totals,
    attribution_event_id,
)
from sinks.batch import Batch, Item
from sinks.delivery.dlq import DeadLetters
from sinks.registry import build_sinks


@pytest.fixture
async def emulators():
    async with running_emulators() as running:
        yield running


def attribution(n: int, kind: str = "friend_signed_up", **extra) -> AttributionEvent:
    kind = AttributionKind(kind)
    order = None
    totals = Totals()
    if kind in (AttributionKind.REFERRAL_CONVERTED, AttributionKind.ORDER_ATTRIBUTED):
        order = OrderRef(order_id=f"ord_{n}", amount=Decimal("49.90"), currency="EUR")
        totals = Totals(orders=1, revenue={"EUR": "49.90"})
    fields = {
        "attribution_event_id": attribution_event_id(f"ref_{n}", kind, f"evt_{n}"),
        "kind": kind, "referral_id": f"ref_{n}", "campaign_id": "spring",
        "advocate": Party(id=f"adv_{n}", email=f"adv{n}@example.com", first_name="Ann"),
        "friend": Party(id=f"cus_{n}", email=f"friend{n}@example.com", first_name="Bob"),
        "order": order, "totals": totals, "source_event_id": f"evt_{n}",
        "occurred_at": datetime(2026, 11, 20, tzinfo=UTC), "emitted_at": datetime.now(UTC),
    }  # fmt: skip
    return AttributionEvent(**(fields | extra))


def items(*events: AttributionEvent) -> Batch:
    return Batch(
        tuple(
            Item(e, "attributions", 0, offset, e.model_dump_json().encode())
            for offset, e in enumerate(events)
        )
    )


class RecordingDLQ(DeadLetters):
    """The sink DLQ with its producer replaced by a list (the broker is not under test)."""

    def __init__(self, sink: str) -> None:
        self.sent: list[tuple[str, bytes | None, bytes, dict[str, bytes]]] = []

        async def send(topic, key, value, headers):
            self.sent.append((topic, key, value, dict(headers)))

        super().__init__(sink, f"refstream-dlq-{sink}", send)


@pytest.fixture
async def make_sink(emulators, monkeypatch):
    """A registered sink, configured as a worker would be (from the environment), against
    its emulator; ``policy`` overrides fields of its delivery policy."""
    opened = []

    async def make(name: str, **policy):
        emulator = emulators.by_sink[name]
        for variable, value in emulator.env(emulators.urls[emulator.name]).items():
            monkeypatch.setenv(variable, value)
        (sink,) = build_sinks((name,))
        sink.policy = replace(sink.policy, backoff_base=0.01, **policy)
        await sink.setup()
        opened.append(sink)
        return sink

    yield make
    for sink in opened:
        await sink.aclose()

"""From a verified request to its records (gateway.md §4 steps 5 to 7 and §7): map, validate
with the worker's own validator, and build the records and the dead letter. Pure: the
server and the DLQ replay both use it and do the network part themselves."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from gateway.publisher import GatewayRecord
from gateway.sources import Ignored, Mapped, Source, Unmappable, WebhookRequest
from schemas.events import InvalidEvent, SignupCompleted, parse_event
from streams.settings import Topics

__all__ = ["Prepared", "dead_letter", "prepare", "received_at"]


@dataclass(slots=True)
class Prepared:
    records: list[GatewayRecord]
    event_ids: list[str]
    vendor_event: str
    delivery_id: str


def received_at(now: float) -> str:
    return (
        datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def prepare(
    source: Source, request: WebhookRequest, topics: Topics, received: str
) -> Prepared | Ignored:
    """The records of a verified request; raises :class:`Unmappable` (dead letter)."""
    outcome = source.map(request)
    if isinstance(outcome, Ignored):
        return outcome
    return _records(source, outcome, topics, received)


def _records(source: Source, mapped: Mapped, topics: Topics, received: str) -> Prepared:
    values = mapped.raw if mapped.raw is not None else [orjson.dumps(e) for e in mapped.events]
    headers = [
        ("gateway.source", source.name.encode()),
        ("gateway.vendor_event", mapped.vendor_event.encode()),
        ("gateway.delivery_id", mapped.delivery_id.encode()),
        ("gateway.received_at", received.encode()),
    ]
    records, ids = [], []
    for value in values:
        try:
            event = parse_event(value)
        except InvalidEvent as exc:
            raise Unmappable(
                "schema_invalid", exc.message, mapped.vendor_event, mapped.delivery_id
            ) from None
        if event.type == "referral.created":
            topic, key = topics.referrals, event.referral_id
        elif isinstance(event, SignupCompleted):
            topic, key = topics.signups, event.referral_id or event.customer.id or event.event_id
        else:
            topic, key = topics.orders, event.order_id
        records.append(GatewayRecord(topic, key.encode(), value, headers))
        ids.append(event.event_id)
    return Prepared(records, ids, mapped.vendor_event, mapped.delivery_id)


def dead_letter(
    source: Source, request: WebhookRequest, error: Unmappable, topic: str, received: str
) -> GatewayRecord:
    """The raw body with its reason (§7.3); the headers a mapping reads are kept under
    ``vendor.<name>`` so that a replay maps it as it was received. Never a signature."""
    headers = [
        ("error.reason", error.reason.encode()),
        ("error.message", error.message.encode()[:1000]),
        ("gateway.source", source.name.encode()),
        ("gateway.path", request.path.encode()),
        ("gateway.vendor_event", error.vendor_event.encode()),
        ("gateway.delivery_id", error.delivery_id.encode()),
        ("gateway.received_at", received.encode()),
        ("http.content_type", request.headers.get("Content-Type", "").encode()),
    ]
    for name in source.mapped_headers:
        value = request.headers.get(name)
        if value is not None:
            headers.append((f"vendor.{name.lower()}", value.encode()))
    return GatewayRecord(topic, source.name.encode(), request.body, headers)

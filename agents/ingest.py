"""Ingest: validate input records, dead-letter the invalid ones, re-key the rest.

Producers may key and partition events any way; every valid event is re-sent keyed by the
join stage that must see it first (:func:`agents.rules.route`).
"""

from __future__ import annotations

import logging
from collections import Counter

from faust.types import EventT, StreamT

from agents.outbox import Outbox, crash_on_error
from agents.rules import route
from schemas.events import InvalidEvent, parse_event
from streams.app import app, producer, settings
from streams.metrics import EVENTS
from streams.topics import STAGE_TOPICS, inputs

__all__ = ["ingest", "ingest_batch"]

log = logging.getLogger(__name__)

_t = settings.topics
EXPECTED_TYPES = {
    _t.referrals: frozenset({"referral.created"}),
    _t.signups: frozenset({"signup.completed"}),
    _t.orders: frozenset({"order.completed", "order.refunded"}),
}


def dlq_headers(reason: str, message: str, event: EventT) -> list[tuple[str, bytes]]:
    record = event.message
    return [
        ("error.reason", reason.encode()),
        ("error.message", message.encode()[:1000]),
        ("source.topic", record.topic.encode()),
        ("source.partition", str(record.partition).encode()),
        ("source.offset", str(record.offset).encode()),
    ]


async def ingest_batch(events: list[EventT], outbox: Outbox) -> None:
    accepted: Counter[str] = Counter()  # per topic; the metric is bumped once per batch
    for event in events:
        record = event.message
        try:
            parsed = parse_event(record.value, EXPECTED_TYPES.get(record.topic))
        except InvalidEvent as exc:
            EVENTS.labels(record.topic, "invalid").inc()
            log.warning(
                "invalid event dead-lettered reason=%s topic=%s partition=%s offset=%s",
                exc.reason, record.topic, record.partition, record.offset,
            )  # fmt: skip
            outbox.send(
                _t.dlq_invalid,
                record.key,
                record.value or b"",
                headers=dlq_headers(exc.reason, exc.message, event),
            )
            continue
        accepted[record.topic] += 1
        text = parsed.model_dump_json()
        for forward in route(parsed):
            outbox.forward(forward.stage, forward.key, parsed.type, text, record.timestamp)
    await outbox.flush()
    for topic, count in accepted.items():
        EVENTS.labels(topic, "accepted").inc(count)


@app.agent(inputs, concurrency=1)
async def ingest(stream: StreamT) -> None:
    outbox = Outbox(producer, settings.topics, STAGE_TOPICS)
    async for events in stream.take_events(settings.batch_size, settings.batch_linger_seconds):
        async with crash_on_error(app):
            await ingest_batch(events, outbox)

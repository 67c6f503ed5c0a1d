"""Ingest: validate input records, dead-letter the invalid ones, re-key the rest.

Producers may key and partition events any way; every valid event is re-sent keyed by the
join stage that must see it first (:func:`agents.rules.route`).

Ingest keeps no state, so it reads the input topics with a plain aiokafka consumer group of
its own (``<app id>-ingest``), in batches, instead of a Faust agent: Faust's per-record
stream machinery (a hand-off from its consumer thread, the conductor, two tasks per record)
costs as much per record as the whole join does, and the stages already receive their
messages in envelopes, many to a record (README, performance). Offsets are committed only
after the batch's output is acknowledged, so a crash or a rebalance repeats input (the join
drops repeats by event id) and never loses it.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from typing import NamedTuple, Protocol

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError

from agents.codec import to_json
from agents.inputs import read_event
from agents.outbox import Outbox, crash_on_error
from agents.rules import route
from schemas.events import InvalidEvent
from streams.app import app, producer, producers, settings
from streams.group_consumer import group_consumer
from streams.metrics import EVENTS
from streams.topics import STAGE_TOPICS, ensure_topic

__all__ = ["INGEST", "IngestConsumer", "InputRecord", "dlq_headers", "ingest_batch"]

log = logging.getLogger(__name__)

_t = settings.topics
EXPECTED_TYPES = {
    _t.referrals: frozenset({"referral.created"}),
    _t.signups: frozenset({"signup.completed"}),
    _t.orders: frozenset({"order.completed", "order.refunded"}),
}
COMMIT_INTERVAL_SECONDS = 1.0
"""Offsets are committed at most this often (a crash repeats at most this much input)."""


class SourceRecord(Protocol):
    topic: str
    partition: int
    offset: int


class InputRecord(NamedTuple):
    """An input record as :func:`ingest_batch` reads it: an aiokafka ``ConsumerRecord``
    has the same fields (and is passed as it is: a copy of each cost 0.8 % of a worker)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int
    """Milliseconds since the epoch (the producer's record timestamp, as Kafka keeps it)."""


def dlq_headers(reason: str, message: str, record: SourceRecord) -> list[tuple[str, bytes]]:
    return [
        ("error.reason", reason.encode()),
        ("error.message", message.encode()[:1000]),
        ("source.topic", record.topic.encode()),
        ("source.partition", str(record.partition).encode()),
        ("source.offset", str(record.offset).encode()),
    ]


async def ingest_batch(records: Sequence[InputRecord | ConsumerRecord], outbox: Outbox) -> None:
    accepted: Counter[str] = Counter()  # per topic; the metric is bumped once per batch
    for record in records:
        try:
            event = read_event(record.value, EXPECTED_TYPES.get(record.topic))
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
                headers=dlq_headers(exc.reason, exc.message, record),
            )
            continue
        accepted[record.topic] += 1
        message = to_json(event)
        timestamp = record.timestamp / 1000
        for forward in route(event):
            outbox.forward(forward.stage, forward.key, event.type, message, timestamp)
    await outbox.flush()
    for topic, count in accepted.items():
        EVENTS.labels(topic, "accepted").inc(count)


class IngestConsumer:
    """The input topics' consumer group: fetch a batch, ingest it, commit."""

    def __init__(self) -> None:
        self.group = f"{settings.app_id}-ingest"
        self.topics = [_t.referrals, _t.signups, _t.orders]
        self.consumer: AIOKafkaConsumer | None = None

    def assigned(self) -> bool:
        """The group has given this worker its input partitions (part of ``/readyz``)."""
        consumer = self.consumer
        return consumer is not None and bool(consumer.assignment())

    async def run(self) -> None:
        for topic in self.topics:
            await ensure_topic(topic)  # subscribing to a missing topic auto-creates it
        await _prepare_outputs()
        consumer = self.consumer = group_consumer(
            settings, self.topics, self.group, settings.batch_size
        )
        await consumer.start()
        outbox = Outbox(producer("ingest"), settings.topics, STAGE_TOPICS)
        pending: dict[TopicPartition, int] = {}
        last_commit = time.monotonic()
        try:
            while True:
                timeout_ms = int(settings.batch_linger_seconds * 1000)
                fetched = await consumer.getmany(
                    timeout_ms=timeout_ms, max_records=settings.batch_size
                )
                if fetched:
                    records = [record for batch in fetched.values() for record in batch]
                    async with crash_on_error(app):
                        await ingest_batch(records, outbox)
                    pending |= {tp: batch[-1].offset + 1 for tp, batch in fetched.items()}
                idle = not fetched
                due = time.monotonic() - last_commit >= COMMIT_INTERVAL_SECONDS
                if pending and (idle or due):
                    await self._commit(consumer, pending)
                    pending, last_commit = {}, time.monotonic()
        finally:
            if pending:
                await self._commit(consumer, pending)
            self.consumer = None
            await consumer.stop()

    async def _commit(self, consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]):
        try:
            await consumer.commit(offsets)
        except CommitFailedError:  # a rebalance: the new owner reads these records again
            log.warning("ingest commit lost to a rebalance group=%s", self.group)
        except KafkaError as exc:  # the same: the records are read again, never lost
            log.warning("ingest commit failed group=%s error=%r", self.group, exc)


async def _prepare_outputs() -> None:
    """Create every topic the join writes and let every writer's producer learn them all,
    before ingest makes any work for it (``BatchProducer.prepare``)."""
    outputs = [*STAGE_TOPICS.values(), _t.attributions, _t.advocate_totals, _t.dlq_invalid]
    for topic in outputs:
        await ensure_topic(topic)
    producer("ingest")
    for each in producers():  # ingest's and the join stages'
        await each.prepare([*outputs, *app.tables.changelog_topics])


INGEST = IngestConsumer()


@app.task
async def ingest() -> None:
    await INGEST.run()

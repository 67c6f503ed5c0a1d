"""Reading a sink's dead letters back, and replaying them into delivery.

Replayed records keep their attribution ids, so a replay is idempotent at the vendor; one
that fails again is dead-lettered again (with its original ``source.*`` headers).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from schemas.attribution import AdvocateTotals, AttributionEvent
from sinks.base import Sink
from sinks.batch import Batch, Item
from sinks.delivery.deliverer import Deliverer
from sinks.delivery.dlq import DeadLetters
from streams.connection import KafkaConnection, connection_of

__all__ = ["REPLAY_SHARE", "DeadLetter", "ReplayReport", "read_dead_letters", "replay"]

REPLAY_SHARE = 0.25
"""Of the vendor's rate limits, what a replay uses by default. The running workers keep
their shares, which add up to the whole limit: a replay beside busy workers can bring the
vendor's 429s, which pause delivery and lose nothing; a smaller share makes them rarer."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    record: ConsumerRecord
    headers: dict[str, str]

    @property
    def reason(self) -> str:
        return self.headers.get("error.reason", "")

    def item(self, advocate_topic: str | None = None) -> Item:
        h = self.headers
        from_advocates = advocate_topic is not None and h.get("source.topic") == advocate_topic
        model = AdvocateTotals if from_advocates else AttributionEvent
        event = model.model_validate_json(self.record.value)
        return Item(
            event, h.get("source.topic", ""), int(h.get("source.partition") or -1),
            int(h.get("source.offset") or -1), self.record.value,
        )  # fmt: skip


async def read_dead_letters(
    connection: KafkaConnection | str, topic: str, reason: str | None = None
) -> list[DeadLetter]:
    """Every record now in ``topic`` (optionally only one ``error.reason``)."""
    consumer = AIOKafkaConsumer(
        **connection_of(connection).client_options(), enable_auto_commit=False, group_id=None
    )
    await consumer.start()
    letters: list[DeadLetter] = []
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        remaining = {tp for tp in tps if ends[tp] > 0}
        while remaining:
            fetched = await consumer.getmany(*remaining, timeout_ms=1000)
            for records in fetched.values():
                for record in records:
                    headers = {k: v.decode(errors="replace") for k, v in record.headers}
                    letter = DeadLetter(record, headers)
                    if reason is None or letter.reason == reason:
                        letters.append(letter)
            remaining = {tp for tp in remaining if await consumer.position(tp) < ends[tp]}
    finally:
        await consumer.stop()
    return letters


@dataclass(frozen=True, slots=True)
class ReplayReport:
    replayed: int
    dead_lettered_again: Counter


async def replay(
    sink: Sink,
    connection: KafkaConnection | str,
    topic: str,
    reason: str | None = None,
    advocate_topic: str | None = None,
    share: float = REPLAY_SHARE,
) -> ReplayReport:
    letters = await read_dead_letters(connection, topic, reason)
    producer = AIOKafkaProducer(**connection_of(connection).client_options())
    await producer.start()
    again: Counter = Counter()

    async def send(dlq_topic: str, key: bytes | None, value: bytes, headers: list) -> None:
        await producer.send_and_wait(dlq_topic, value, key=key, headers=headers)
        again[dict(headers)["error.reason"].decode()] += 1

    try:
        await sink.setup()
        deliverer = Deliverer(sink, DeadLetters(sink.name, topic, send))
        for limiter in deliverer.limiters:
            limiter.share(share)
        await deliverer.deliver(Batch(tuple(letter.item(advocate_topic) for letter in letters)))
    finally:
        await sink.aclose()
        await producer.stop()
    return ReplayReport(len(letters), again)

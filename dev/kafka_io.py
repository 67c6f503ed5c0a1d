"""Small Kafka helpers for the demo, tests and benchmarks (plain aiokafka clients)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from dev.generator import Record

__all__ = ["create_topics", "produce", "read_topic"]


async def create_topics(bootstrap_servers: str, names: Iterable[str], partitions: int) -> None:
    """Create topics up front, so that no broker auto-creates them with its own defaults."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        new = [NewTopic(n, partitions, 1) for n in names if n not in existing]
        if new:
            await admin.create_topics(new)
    finally:
        await admin.close()


async def produce(
    records: Iterable[Record], bootstrap_servers: str, topic_map: dict[str, str] | None = None
) -> int:
    """Send ``records`` and wait for every acknowledgement; returns the count.

    :param topic_map: record topic → actual topic name (tests use per-test names).
    """
    topic_map = topic_map or {}
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, linger_ms=5)
    await producer.start()
    try:
        futures = [
            await producer.send(topic_map.get(r.topic, r.topic), r.value, key=r.key)
            for r in records
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return len(futures)


async def read_topic(
    bootstrap_servers: str,
    topic: str,
    *,
    until: Callable[[list[ConsumerRecord]], bool] = lambda _: False,
    timeout: float = 60.0,
    idle: float = 2.0,
) -> list[ConsumerRecord]:
    """Read ``topic`` from the start until ``until(records)`` holds and nothing new has come
    for ``idle`` seconds, or ``timeout`` passes. Counts records; never trusts end offsets
    (see broker-tansu.md)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    records: list[ConsumerRecord] = []
    try:
        deadline = time.monotonic() + timeout
        last_new = time.monotonic()
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for messages in batch.values():
                records.extend(messages)
                last_new = time.monotonic()
            if until(records) and time.monotonic() - last_new >= idle:
                break
    finally:
        await consumer.stop()
    return records

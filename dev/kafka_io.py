"""Small Kafka helpers for the demo, tests and benchmarks (plain aiokafka clients)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from dev.generator import Record
from streams.connection import KafkaConnection, connection_of

__all__ = ["create_acls", "create_topics", "produce", "read_topic"]


async def create_topics(
    connection: KafkaConnection | str, names: Iterable[str], partitions: int
) -> None:
    """Create topics up front, so that no broker auto-creates them with its own defaults."""
    admin = AIOKafkaAdminClient(**connection_of(connection).client_options())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        new = [NewTopic(n, partitions, 1) for n in names if n not in existing]
        if new:
            await admin.create_topics(new)
    finally:
        await admin.close()


async def create_acls(connection: KafkaConnection | str, principal: str, acls: Iterable) -> None:
    """Grant ``principal`` each :class:`streams.acls.Acl` (aiokafka's admin client has no
    ACL call; its CreateAcls request does). ``connection`` must be allowed to alter ACLs."""
    from aiokafka.errors import for_code
    from aiokafka.protocol.admin import CreateAclsRequest

    admin = AIOKafkaAdminClient(**connection_of(connection).client_options())
    await admin.start()
    try:
        for acl in acls:
            request = CreateAclsRequest(
                acl.resource,
                acl.name,
                acl.pattern,
                principal,
                "*",
                acl.operation,
                3,  # ALLOW
            )
            answer = (await admin._send_request(request)).to_object()
            for result in answer["creation_responses"]:
                if result["error_code"]:
                    raise for_code(result["error_code"])(f"{acl}: {result['error_message']}")
    finally:
        await admin.close()


async def produce(
    records: Iterable[Record],
    connection: KafkaConnection | str,
    topic_map: dict[str, str] | None = None,
) -> int:
    """Send ``records`` and wait for every acknowledgement; returns the count.

    :param topic_map: record topic → actual topic name (tests use per-test names).
    """
    topic_map = topic_map or {}
    producer = AIOKafkaProducer(**connection_of(connection).client_options(), linger_ms=5)
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
    connection: KafkaConnection | str,
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
        **connection_of(connection).client_options(),
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

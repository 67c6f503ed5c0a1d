"""The Tansu compat layer (end offsets, leaving a group), against the session's broker."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from dev.kafka_io import create_topics
from streams.tansu import end_offsets, leave_first_generation

pytestmark = pytest.mark.integration


async def test_end_offsets_count_every_record_of_multi_record_writes(kafka):
    topic = f"ends-{uuid.uuid4().hex[:8]}"
    await create_topics(kafka.bootstrap_servers, [topic], partitions=3)
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, linger_ms=50)
    await producer.start()
    try:
        for size in (5, 7):  # two writes of several records each, to partition 0 only
            await asyncio.gather(
                *[await producer.send(topic, b"x", partition=0) for _ in range(size)]
            )
        await (await producer.send(topic, b"y", partition=1))
    finally:
        await producer.stop()
    tps = [TopicPartition(topic, p) for p in range(3)]

    assert await end_offsets(kafka.bootstrap_servers, tps) == {tps[0]: 12, tps[1]: 1, tps[2]: 0}

    if kafka.compat == "tansu":  # the quirk this works around, still there
        consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap_servers)
        await consumer.start()
        try:
            assert (await consumer.end_offsets([tps[0]]))[tps[0]] < 12
        finally:
            await consumer.stop()


async def test_a_consumer_closed_in_its_groups_first_generation_leaves_the_group(kafka):
    """Tansu's first generation is 0, from which aiokafka alone would not leave: the member
    stayed listed, and the group's next join waited out its session."""
    leave_first_generation()
    topic, group = f"leave-{uuid.uuid4().hex[:8]}", f"leave-{uuid.uuid4().hex[:8]}"
    await create_topics(kafka.bootstrap_servers, [topic], partitions=2)
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=kafka.bootstrap_servers, group_id=group,
        session_timeout_ms=6000, heartbeat_interval_ms=1000,
    )  # fmt: skip
    await consumer.start()
    try:
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=200)
    finally:
        await consumer.stop()

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    await admin.start()
    try:
        [response] = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    [described] = response.to_object()["groups"]
    assert described["members"] == []

"""Seeking to the committed offsets after a rebalance re-reads uncommitted partitions too."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from dev.generator import Record
from dev.kafka_io import create_topics, produce
from streams import rebalance

pytestmark = pytest.mark.integration


async def _fetched_to_the_end(kafka, topic: str) -> AIOKafkaConsumer:
    """A group consumer whose position is past all 40 records of ``topic``, none of them
    committed: the state Faust leaves when it drops records fetched during a rebalance."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=kafka.bootstrap_servers, group_id=f"g-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest", enable_auto_commit=False,
    )  # fmt: skip
    await consumer.start()
    fetched = 0
    while fetched < 40:
        fetched += sum(map(len, (await consumer.getmany(timeout_ms=1000)).values()))
    return consumer


async def test_partitions_without_a_committed_offset_are_read_again_from_their_start(kafka):
    topic = f"rewind-{uuid.uuid4().hex[:8]}"
    await create_topics(kafka.bootstrap_servers, [topic], partitions=2)
    records = [Record(topic, f"k{i}".encode(), b"v") for i in range(40)]
    await produce(records, kafka.bootstrap_servers)
    first, second = TopicPartition(topic, 0), TopicPartition(topic, 1)

    consumer = await _fetched_to_the_end(kafka, topic)
    try:
        ends = await consumer.end_offsets([first, second])
        await consumer.commit({first: OffsetAndMetadata(3, "")})
        # aiokafka alone seeks only the partition with a commit; the other stays past its end.
        assert await consumer.seek_to_committed() == {first: 3, second: None}
        assert [await consumer.position(tp) for tp in (first, second)] == [3, ends[second]]

        assert await rebalance.seek_to_committed(consumer) == {first: 3, second: None}
        assert [await consumer.position(tp) for tp in (first, second)] == [3, 0]
        again = await consumer.getmany(timeout_ms=2000)
        while sum(map(len, again.values())) < ends[first] - 3 + ends[second]:
            for tp, batch in (await consumer.getmany(timeout_ms=2000)).items():
                again.setdefault(tp, []).extend(batch)
        assert [r.offset for r in again[first]] == list(range(3, ends[first]))
        assert [r.offset for r in again[second]] == list(range(ends[second]))
    finally:
        await consumer.stop()

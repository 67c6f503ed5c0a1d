"""BatchProducer's batching and retry logic against a scripted stand-in for aiokafka."""

import asyncio
import random
from types import SimpleNamespace

import pytest
from aiokafka.errors import NotLeaderForPartitionError, RecordTooLargeError
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.record.memory_records import MemoryRecords

from streams import producer as producer_module
from streams.producer import MAX_BATCH_BYTES, BatchProducer, OutRecord, place, placer_of


class FakeKafka:
    """Records every batch sent; ``failures`` scripts errors for the next sends per partition."""

    def __init__(self, failures: dict[int, list[Exception]] | None = None) -> None:
        self.failures = failures or {}
        self.sent: list[tuple[str, int, list[bytes]]] = []
        self.batches: list[list] = []
        self.next_offset: dict[int, int] = {}

    def create_batch(self) -> BatchBuilder:
        return BatchBuilder(2 * MAX_BATCH_BYTES, 0)  # aiokafka's own, as the producer sizes it

    async def send_batch(self, batch, topic, *, partition):
        future = asyncio.get_running_loop().create_future()
        pending = self.failures.get(partition, [])
        if pending:
            future.set_exception(pending.pop(0))
        else:
            records = list(MemoryRecords(bytes(batch._build())).next_batch())  # as a broker would
            self.batches.append(records)
            base = self.next_offset.get(partition, 0)
            self.next_offset[partition] = base + len(records)
            self.sent.append((topic, partition, [record.value for record in records]))
            future.set_result(SimpleNamespace(offset=base))
        return future


def producer_with(kafka: FakeKafka) -> BatchProducer:
    batch_producer = BatchProducer("unused:9092")
    batch_producer._producer = kafka  # started already
    return batch_producer


async def test_records_go_out_as_one_batch_per_partition_with_their_offsets():
    kafka = FakeKafka()
    records = [OutRecord("t", None, f"v{i}".encode(), partition=i % 2) for i in range(6)]
    await producer_with(kafka).send_all(records)
    assert sorted(kafka.sent) == [("t", 0, [b"v0", b"v2", b"v4"]), ("t", 1, [b"v1", b"v3", b"v5"])]
    assert [r.offset for r in records] == [0, 0, 1, 1, 2, 2]


async def test_each_record_goes_into_the_batch_with_its_key_timestamp_and_headers():
    kafka = FakeKafka()
    records = [
        OutRecord("t", b"ref_1", b'{"a":1}', timestamp=1_700_000_000.25, partition=0),
        OutRecord("t", None, b"", headers=[("error.reason", b"x")], partition=0),
        OutRecord("t", b"ref_2", None, partition=0),  # a table's tombstone
    ]
    await producer_with(kafka).send_all(records)
    (batch,) = kafka.batches
    assert [(r.offset, r.key, r.value, r.headers) for r in batch] == [
        (0, b"ref_1", b'{"a":1}', []),
        (1, None, b"", [("error.reason", b"x")]),
        (2, b"ref_2", None, []),
    ]
    assert batch[0].timestamp == 1_700_000_000_250


async def test_a_large_partition_is_split_in_order(monkeypatch):
    monkeypatch.setattr(producer_module, "MAX_BATCH_BYTES", 300)
    kafka = FakeKafka()
    records = [OutRecord("t", None, bytes([65 + i]) * 100, partition=0) for i in range(5)]
    await producer_with(kafka).send_all(records)
    assert len(kafka.sent) > 1
    assert [v for _, _, values in kafka.sent for v in values] == [r.value for r in records]
    assert [r.offset for r in records] == [0, 1, 2, 3, 4]


async def test_a_retriable_failure_is_sent_again_until_it_succeeds(monkeypatch):
    monkeypatch.setattr(producer_module, "RETRY_BACKOFF_SECONDS", 0.01)
    kafka = FakeKafka({1: [NotLeaderForPartitionError(), NotLeaderForPartitionError()]})
    records = [OutRecord("t", None, b"a", partition=0), OutRecord("t", None, b"b", partition=1)]
    await producer_with(kafka).send_all(records)
    assert sorted(kafka.sent) == [("t", 0, [b"a"]), ("t", 1, [b"b"])]  # each exactly once
    assert kafka.failures[1] == []


async def test_keyed_records_keep_their_order_and_give_last_offsets_across_retries(monkeypatch):
    """A table's changelog write: (key, value, partition) items, no record objects."""
    monkeypatch.setattr(producer_module, "RETRY_BACKOFF_SECONDS", 0.01)
    monkeypatch.setattr(producer_module, "MAX_BATCH_BYTES", 300)
    kafka = FakeKafka({1: [NotLeaderForPartitionError()]})
    kafka.next_offset = {0: 40, 1: 7}
    items = [(f"k{i}".encode(), bytes([65 + i]) * 100, i % 2) for i in range(6)] + [
        (b"gone", None, 1)
    ]
    last = await producer_with(kafka).send_keyed("changelog", items)
    assert last == {0: 42, 1: 10}
    sent = {p: [v for _, part, values in kafka.sent if part == p for v in values] for p in (0, 1)}
    # split in batches, the first of partition 1 failing once: sent again before the next
    assert sent == {p: [value for _, value, part in items if part == p] for p in (0, 1)}
    assert len([part for _, part, _ in kafka.sent if part == 1]) == 3


async def test_a_permanent_failure_is_raised():
    kafka = FakeKafka({0: [RecordTooLargeError()]})
    with pytest.raises(RecordTooLargeError):
        await producer_with(kafka).send_all([OutRecord("t", None, b"x", partition=0)])


def test_keys_go_where_aiokafkas_default_partitioner_puts_them():
    rng = random.Random(7)  # every length up to 64 bytes: each tail of murmur2's 4-byte words
    keys = [f"ref_{n:06d}".encode() for n in range(500)]
    keys += [rng.randbytes(rng.randint(0, 64)) for _ in range(2000)] + [b"", "ü@x".encode()]
    for count in (1, 3, 8, 32):
        partitions = list(range(count))
        placer = placer_of(partitions)
        for key in keys:
            expected = DefaultPartitioner()(key, partitions, partitions)
            assert place(key, partitions) == placer(key) == expected

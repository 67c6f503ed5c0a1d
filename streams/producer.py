"""The join's producer: each flush goes out as one record batch per partition.

Faust's ``producer.send`` costs a future, a pending-message object and an accumulator pass
per record, and table writes add a ``send_soon`` buffer on top. The join sends everything a
batch of input produced at once, so it builds aiokafka record batches itself (same default
partitioner as every other producer) and waits for one acknowledgement per batch.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.producer.message_accumulator import BatchBuilder
from murmurhash2 import murmurhash2

from streams.connection import KafkaConnection, connection_of
from streams.metrics import PRODUCER_SEND_RETRIES

__all__ = ["BatchProducer", "Headers", "OutRecord", "place", "placer_of"]

Headers = list[tuple[str, bytes]]
Row = tuple[bytes | None, bytes | None, int | None, Headers | None]
"""A record as a batch takes it: key, value, timestamp (ms) and headers."""
MAX_BATCH_BYTES = 1024 * 1024
RECORD_OVERHEAD_BYTES = 64  # a record's own framing, headers aside (they are small here)
RETRY_BACKOFF_SECONDS = 0.5
MAX_RETRY_BACKOFF_SECONDS = 10.0

log = logging.getLogger(__name__)


@dataclass(slots=True)
class OutRecord:
    """One record to send; ``offset`` is the broker's, filled in once acknowledged."""

    topic: str
    key: bytes | None
    value: bytes | None
    timestamp: float | None = None
    headers: Headers | None = None
    partition: int | None = None
    offset: int | None = None


class BatchProducer:
    """An aiokafka producer that sends lists of records as per-partition batches; it
    connects on first use."""

    def __init__(self, connection: KafkaConnection | str, request_timeout_ms: int = 40_000) -> None:
        self._connection = connection_of(connection)
        self._request_timeout_ms = request_timeout_ms
        self._producer: AIOKafkaProducer | None = None
        self._starting = asyncio.Lock()
        self._placers: dict[str, Callable[[bytes | None], int]] = {}

    async def _started(self) -> AIOKafkaProducer:
        if self._producer is not None:
            return self._producer
        async with self._starting:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    **self._connection.client_options(), acks="all",
                    max_batch_size=2 * MAX_BATCH_BYTES, max_request_size=4 * MAX_BATCH_BYTES,
                    request_timeout_ms=self._request_timeout_ms,
                )  # fmt: skip
                await producer.start()
                self._producer = producer
            return self._producer

    async def stop(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()

    async def prepare(self, topics: Sequence[str]) -> None:
        """Learn every topic's partitions and leaders before the first send.

        On Tansu, a metadata refresh during sends (aiokafka asks again whenever a batch goes
        to a topic it has not seen) sometimes comes back with one topic only, and a batch
        then waits out its request timeout for a leader it forgot (``streams/tansu.py``).
        """
        for topic in topics:
            await self.partitioner(topic)

    async def partitioner(self, topic: str) -> Callable[[bytes | None], int]:
        """``key → partition`` for ``topic``, as aiokafka's default partitioner places it."""
        placer = self._placers.get(topic)
        if placer is None:
            producer = await self._started()
            partitions = sorted(await producer.partitions_for(topic))
            placer = self._placers[topic] = placer_of(partitions)
        return placer

    async def send_all(self, records: Sequence[OutRecord]) -> None:
        """Send ``records`` and return once the broker has acknowledged every one; each
        record's ``offset`` is set from its batch's base offset (see :meth:`_deliver`)."""
        by_partition: dict[tuple[str, int], list[OutRecord]] = {}
        placers: dict[str, Callable[[bytes | None], int]] = {}
        for record in records:
            if record.partition is None:
                if record.topic not in placers:
                    placers[record.topic] = await self.partitioner(record.topic)
                record.partition = placers[record.topic](record.key)
            by_partition.setdefault((record.topic, record.partition), []).append(record)
        runs = [
            (topic, partition, [(r.key, r.value, _millis(r.timestamp), r.headers) for r in queued])
            for (topic, partition), queued in by_partition.items()
        ]
        acknowledged = iter(await self._deliver(runs))
        for queued in by_partition.values():  # in the runs' order, as their batches are
            for record in queued:
                record.offset = next(acknowledged)

    async def send_keyed(
        self, topic: str, items: Sequence[tuple[bytes, bytes | None, int]]
    ) -> dict[int, int]:
        """Send ``(key, value, partition)`` records of ``topic``, as a table's changelog
        write does (no timestamp, no headers, no record objects), and return the offset of
        each partition's last record once the broker has acknowledged them all."""
        by_partition: dict[int, list[Row]] = {}
        for key, value, partition in items:
            rows = by_partition.get(partition)
            if rows is None:
                rows = by_partition[partition] = []
            rows.append((key, value, None, None))
        runs = [(topic, partition, rows) for partition, rows in by_partition.items()]
        offsets = await self._deliver(runs)
        last: dict[int, int] = {}
        start = 0
        for partition, rows in by_partition.items():
            start += len(rows)
            last[partition] = offsets[start - 1]
        return last

    async def _deliver(self, runs: list[tuple[str, int, list[Row]]]) -> list[int]:
        """Send each ``(topic, partition, rows)`` run and return every row's offset, in order.

        A run too large for one batch goes out as several, one after the other: each is sent
        once the one before it is acknowledged, so a batch sent again after a failure never
        lands behind the next (aiokafka takes one batch per partition into a request anyway).
        A batch that fails with a retriable error (aiokafka gives up on one after its request
        timeout, e.g. while a partition has no leader) is sent again, for as long as it
        takes: the caller has not acknowledged its input, and giving up would lose it.
        """
        producer = await self._started()
        pending = [batch for run in runs for batch in _split(run)]
        queues: dict[tuple[str, int], list[int]] = {}  # each partition's batches, in order
        for index, (topic, partition, _) in enumerate(pending):
            queues.setdefault((topic, partition), []).append(index)
        offsets: dict[int, int] = {}  # base offset of each pending batch, by its index
        backoff = RETRY_BACKOFF_SECONDS
        while queues:
            heads = [queue[0] for queue in queues.values()]
            futures = [await self._send(producer, *pending[index]) for index in heads]
            failed = False
            results = await asyncio.gather(*futures, return_exceptions=True)
            for index, result in zip(heads, results, strict=True):
                topic, partition, _ = pending[index]
                if isinstance(result, BaseException):
                    if not (isinstance(result, KafkaError) and result.retriable):
                        raise result
                    log.warning("send failed, retrying topic=%s partition=%s error=%r",
                                topic, partition, result)  # fmt: skip
                    PRODUCER_SEND_RETRIES.inc()
                    failed = True
                else:
                    offsets[index] = result.offset
                    queues[topic, partition].pop(0)
            queues = {tp: queue for tp, queue in queues.items() if queue}
            if failed:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_RETRY_BACKOFF_SECONDS)
        return [offsets[index] + n for index, (_, _, rows) in enumerate(pending)
                for n in range(len(rows))]  # fmt: skip

    @staticmethod
    async def _send(
        producer: AIOKafkaProducer, topic: str, partition: int, rows: list[Row]
    ) -> asyncio.Future:
        batch = producer.create_batch()
        if not _append_rows(batch, rows):  # _split keeps runs at half the builder's size
            raise RuntimeError(f"record batch overflow on {topic}[{partition}]")
        batch.close()
        return await producer.send_batch(batch, topic, partition=partition)


def _append_rows(batch: BatchBuilder, rows: list[Row]) -> bool:
    """``batch.append`` of each row; False if the batch is full before the last.

    What aiokafka 0.14's ``BatchBuilder.append`` does for a producer without serializers,
    with its record builder (native code) called directly: the method's keyword call and
    serializer checks were half of a record's cost (0.98 → 0.51 µs), and every state the
    join writes and every message it sends is a record."""
    builder, offset = batch._builder, batch._relative_offset
    for key, value, timestamp, headers in rows:
        if builder.append(offset, timestamp, key, value, headers or []) is None:
            return False
        offset += 1
    batch._relative_offset = offset
    return True


def placer_of(partitions: Sequence[int]) -> Callable[[bytes | None], int]:
    """:func:`place` for one topic's ``partitions``, as one function of the key (the join
    places every entry it forwards)."""
    count = len(partitions)

    def place_key(key: bytes | None) -> int:
        if key is None:
            return random.choice(partitions)
        return partitions[(murmurhash2(key, _KAFKA_SEED) & 0x7FFFFFFF) % count]

    return place_key


def place(key: bytes | None, partitions: Sequence[int]) -> int:
    """The partition aiokafka's default partitioner (Kafka's murmur2) gives ``key``, a random
    one for None. aiokafka hashes in Python, about 2.5 µs a key; the join places every key
    it sends, so the hash comes from ``murmurhash2``'s native code (0.1 µs)."""
    return placer_of(partitions)(key)


_KAFKA_SEED = 0x9747B28C
"""The seed of Kafka's murmur2 (``org.apache.kafka.common.utils.Utils.murmur2``)."""


def _millis(timestamp: float | None) -> int | None:
    return int(timestamp * 1000) if timestamp else None


def _split(run: tuple[str, int, list[Row]]) -> Iterator[tuple[str, int, list[Row]]]:
    """Consecutive parts of a run of rows that each fit one batch of :data:`MAX_BATCH_BYTES`."""
    topic, partition, rows = run
    part: list[Row] = []
    size = 0
    for row in rows:
        length = len(row[0] or b"") + len(row[1] or b"") + RECORD_OVERHEAD_BYTES
        if part and size + length > MAX_BATCH_BYTES:
            yield topic, partition, part
            part, size = [], 0
        part.append(row)
        size += length
    if part:
        yield topic, partition, part

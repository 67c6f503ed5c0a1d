"""Raw aiokafka rates and the helpers the benchmarks share (counting, never end offsets)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

__all__ = ["consume_count", "create", "produce_all", "raw_consume_rate"]

KeyValue = tuple[bytes | None, bytes]


async def create(servers: str, names: Sequence[str], partitions: int) -> None:
    """Topics with ``retention.ms`` filled in: Quix reads it from the source topic's config."""
    admin = AIOKafkaAdminClient(bootstrap_servers=servers)
    await admin.start()
    try:
        config = {"retention.ms": str(7 * 24 * 3600 * 1000)}
        await admin.create_topics([NewTopic(n, partitions, 1, topic_configs=config) for n in names])
    finally:
        await admin.close()


async def produce_all(
    servers: str, topic_of: Callable[[int], str], records: Sequence[KeyValue]
) -> float:
    """Send every record (batched, linger 5 ms) and wait for all acks; returns records/s."""
    producer = AIOKafkaProducer(
        bootstrap_servers=servers, linger_ms=5, max_batch_size=256 * 1024, acks=1
    )
    await producer.start()
    try:
        started = time.perf_counter()
        pending = []
        for index, (key, value) in enumerate(records):
            pending.append(await producer.send(topic_of(index), value, key=key))
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
        return len(records) / (time.perf_counter() - started)
    finally:
        await producer.stop()


async def produce_paced(
    servers: str,
    records: Sequence[tuple[str, bytes | None, bytes]],
    rate: float,
    on_sent: Callable[[bytes, float], object],
) -> None:
    """Send ``rate`` records per second, in 10 ms steps, calling ``on_sent(value, time)``.

    Each send's outcome is checked as it lands, not in one ``gather`` at the end: that ran
    the whole run's callbacks (~130,000) in one turn of this process's loop, which also runs
    the vendor emulators, and stalled them 0.5 s just as the stream ended: the last records of
    every sink were the run's slowest."""
    producer = AIOKafkaProducer(bootstrap_servers=servers, linger_ms=1)
    failed: list[BaseException] = []

    def landed(future: asyncio.Future) -> None:
        if future.cancelled():  # never sent: the run would miss a record it counted
            failed.append(asyncio.CancelledError(f"a send to {servers} was cancelled"))
        elif future.exception() is not None:
            failed.append(future.exception())

    await producer.start()
    try:
        started = time.monotonic()
        step = max(1, int(rate / 100))
        for index in range(0, len(records), step):
            await asyncio.sleep(max(0.0, started + index / rate - time.monotonic()))
            now = time.time()
            for topic, key, value in records[index : index + step]:
                (await producer.send(topic, value, key=key)).add_done_callback(landed)
                on_sent(value, now)
        await producer.flush()
        if failed:
            raise failed[0]
    finally:
        await producer.stop()


async def consume_count(
    servers: str,
    topic: str,
    want: int,
    *,
    key: Callable[[ConsumerRecord], object] | None = None,
    timeout: float = 900,
) -> tuple[list[ConsumerRecord], float, float, int]:
    """Read ``topic`` from the start until ``want`` records (or distinct ``key(record)``)
    arrived; returns the records, the wall-clock times of the first and last batch, and
    the size of the first batch."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=servers, auto_offset_reset="earliest",
        enable_auto_commit=False, group_id=None, max_partition_fetch_bytes=4 * 1024**2,
    )  # fmt: skip
    await consumer.start()
    records: list[ConsumerRecord] = []
    seen: set = set()
    first = last = 0.0
    first_batch = 0
    try:
        deadline = time.monotonic() + timeout
        while (len(seen) if key else len(records)) < want:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{topic}: {len(seen) or len(records)} of {want} after {timeout}s"
                )
            batch = await consumer.getmany(timeout_ms=200, max_records=20_000)
            if not batch:
                continue
            last = time.time()
            if not first:
                first, first_batch = last, sum(len(m) for m in batch.values())
            for messages in batch.values():
                records.extend(messages)
                if key:
                    seen.update(key(m) for m in messages)
    finally:
        await consumer.stop()
    return records, first, last, first_batch


async def raw_consume_rate(servers: str, topic: str, want: int) -> float:
    """Records/s after the first fetched batch (connecting and assignment do not count)."""
    records, first, last, first_batch = await consume_count(servers, topic, want)
    return (len(records) - first_batch) / max(last - first, 1e-9)

"""Consumer lag read from the broker (``streams/lag.py``), against a real broker."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete

from dev.kafka_io import create_topics
from streams.lag import BrokerLag
from streams.settings import BrokerCompat

pytestmark = pytest.mark.integration


async def commit(servers: str, group: str, offsets: dict[TopicPartition, int]) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=servers, group_id=group,
                                enable_auto_commit=False)  # fmt: skip
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit(offsets)
    finally:
        await consumer.stop()


async def test_lag_is_end_minus_committed_per_group_from_the_broker(kafka):
    run = uuid.uuid4().hex[:8]
    orders, missing = f"orders-{run}", f"not-created-{run}"
    await create_topics(kafka.bootstrap_servers, [orders], partitions=3)
    # 10 records on partition 0, 4 on partition 1, none on partition 2
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers)
    await producer.start()
    try:
        for partition, count in ((0, 10), (1, 4)):
            for _ in range(count):
                await producer.send_and_wait(orders, b"v", partition=partition)
    finally:
        await producer.stop()
    tp = [TopicPartition(orders, p) for p in range(3)]
    await commit(kafka.bootstrap_servers, f"g-{run}", {tp[0]: 7, tp[1]: 4})

    groups = {f"g-{run}": (orders, missing), f"fresh-{run}": (orders,)}
    lag = BrokerLag(kafka.bootstrap_servers, groups, compat=BrokerCompat(kafka.compat))
    try:
        assert await lag.refresh() == {
            (f"g-{run}", orders, 0): 3,
            (f"g-{run}", orders, 1): 0,
            (f"g-{run}", orders, 2): 0,
            # a group that has committed nothing reads from the start: all of it is lag
            (f"fresh-{run}", orders, 0): 10,
            (f"fresh-{run}", orders, 1): 4,
            (f"fresh-{run}", orders, 2): 0,
        }  # the missing topic has no series, and asking did not create it
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
        await admin.start()
        try:
            assert missing not in await admin.list_topics()
            if kafka.compat == "kafka":  # retention (here: deleted records) moves the start
                await admin.delete_records({tp[0]: RecordsToDelete(9)})
                lags = await lag.refresh()
                assert lags[(f"g-{run}", orders, 0)] == 1  # committed 7 < start 9
                assert lags[(f"fresh-{run}", orders, 0)] == 1
        finally:
            await admin.close()
        assert lag.fresh()
    finally:
        await lag.close()

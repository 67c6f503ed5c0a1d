"""Faust subscribes to its topics only once the broker's metadata shows them."""

from __future__ import annotations

import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from faust.transport.conductor import Conductor

from streams import subscription
from streams.connection import KafkaConnection

pytestmark = pytest.mark.integration


async def test_a_topic_is_waited_for_until_every_partition_has_a_leader(kafka):
    connection = KafkaConnection(kafka.bootstrap_servers)
    created, never = f"seen-{uuid.uuid4().hex[:8]}", f"never-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(created, 8, 1)])
        assert await subscription.missing_topics(connection, [created]) == []
        [described] = await admin.describe_topics([created])
        assert len(described["partitions"]) == 8

        assert await subscription.missing_topics(connection, [never], timeout=1.0) == [never]
        assert never not in await admin.list_topics(), "asking must not auto-create it"
    finally:
        await admin.close()


def test_the_conductor_waits_once_however_often_it_is_installed():
    connection = KafkaConnection("127.0.0.1:9")
    subscription.install(connection)
    wrapped = Conductor._update_indices
    subscription.install(connection)
    assert Conductor._update_indices is wrapped
    assert wrapped.waits_for_topics

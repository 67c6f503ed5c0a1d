"""Subscribe to a topic only once the broker's metadata shows it.

Faust creates its agents' topics and subscribes to them in one go (``TopicConductor.
_update_indices``, then ``consumer.subscribe``). Apache Kafka answers CreateTopics once the
controller has the topic, and a broker's metadata may still lack it for a moment: the
consumer's metadata then says "not found", Faust's assignor logs "Ignoring missing topic"
and hands out none of its partitions, and that agent never consumes (no rebalance follows).
Seen in the bench on Kafka 4.1: the customer stage was subscribed 22 ms after its topic was
created, got no partitions, and nothing was joined. Tansu shows a new topic at once.
Upstream: faust-streaming/faust#643 (a single KRaft node; an existing topic ignored) and
#558 (the assignor only logs a missing topic).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.protocol.metadata import MetadataRequest
from faust.transport.conductor import Conductor

from streams.connection import KafkaConnection

__all__ = ["install", "missing_topics"]

log = logging.getLogger(__name__)

VISIBLE_TIMEOUT_SECONDS = 30.0


async def missing_topics(
    connection: KafkaConnection, topics: Iterable[str], timeout: float = VISIBLE_TIMEOUT_SECONDS
) -> list[str]:
    """Wait until the metadata shows each of ``topics`` with a leader for every partition
    (asking creates none); return those still missing after ``timeout``."""
    pending = sorted(set(topics))
    admin = AIOKafkaAdminClient(**connection.client_options())
    await admin.start()
    try:
        deadline = time.monotonic() + timeout
        while pending:
            request = MetadataRequest(pending, allow_auto_topic_creation=False)
            answer = (await admin._send_request(request)).to_object()
            ready = {
                t["topic"]
                for t in answer["topics"]
                if t["error_code"] == 0
                and t["partitions"]
                and all(p["leader"] >= 0 for p in t["partitions"])
            }
            pending = [t for t in pending if t not in ready]
            if not pending or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
    finally:
        await admin.close()
    return pending


def install(connection: KafkaConnection) -> None:
    """Make Faust's conductor wait for its topics to be visible before it subscribes."""
    update_indices = Conductor._update_indices
    if getattr(update_indices, "waits_for_topics", False):
        return

    async def _update_indices(self: Conductor) -> Iterable[str]:
        topics = await update_indices(self)
        if missing := await missing_topics(connection, list(topics)):
            log.error(
                "topics still missing from the cluster metadata after %.0f s: %s; "
                "their agents get no partitions", VISIBLE_TIMEOUT_SECONDS, missing,
            )  # fmt: skip
        return topics

    _update_indices.waits_for_topics = True  # type: ignore[attr-defined]
    Conductor._update_indices = _update_indices  # type: ignore[method-assign]

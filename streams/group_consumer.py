"""Plain aiokafka consumer groups for the loops that need no Faust stream: ingest and sinks.

Each reads its topics in batches, commits only what it has finished with, and joins a
consumer group of its own, named after the app id.
"""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams import tansu
from streams.lag import CONSUMER_LAG, Offsets
from streams.settings import BrokerCompat, Settings

__all__ = ["GroupLag", "group_consumer"]


def group_consumer(
    settings: Settings, topics: list[str], group: str, max_records: int, *,
    max_poll_interval_ms: int = 300_000,
) -> AIOKafkaConsumer:  # fmt: skip
    """A consumer of ``topics`` in ``group`` that reads from the start when the group has no
    offsets yet and commits only when told to."""
    compat = settings.broker_compat is BrokerCompat.TANSU
    return AIOKafkaConsumer(
        *topics,
        **settings.kafka.client_options(),
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=max_records,
        max_poll_interval_ms=max_poll_interval_ms,
        session_timeout_ms=(
            tansu.SESSION_TIMEOUT_MS if compat else int(settings.session_timeout_seconds * 1000)
        ),
        heartbeat_interval_ms=(
            tansu.HEARTBEAT_INTERVAL_MS
            if compat
            else int(settings.heartbeat_interval_seconds * 1000)
        ),
        fetch_max_wait_ms=tansu.FETCH_MAX_WAIT_MS if compat else 500,
    )


class GroupLag:
    """The offsets one group consumer has committed, reported as ``refstream_consumer_lag``
    against the high-water marks of its fetches, for the partitions it owns now."""

    def __init__(self, group: str) -> None:
        self.consumer: AIOKafkaConsumer | None = None
        self.committed: dict[TopicPartition, int] = {}
        CONSUMER_LAG.register(group, self.offsets)

    def offsets(self) -> dict[tuple[str, int], Offsets]:
        consumer = self.consumer
        if consumer is None:
            return {}
        return {
            (tp.topic, tp.partition): Offsets(self.committed.get(tp), consumer.highwater(tp))
            for tp in consumer.assignment()
        }

    def committed_now(self, offsets: dict[TopicPartition, int]) -> None:
        self.committed |= offsets

    async def learn_committed(self) -> None:
        """Committed offsets of partitions this run has not committed yet (after a start or
        a rebalance), so an idle group shows no lag rather than all of it."""
        consumer = self.consumer
        if consumer is None:
            return
        assigned = consumer.assignment()
        for tp in self.committed.keys() - assigned:  # revoked: another worker moves it on
            del self.committed[tp]
        for tp in assigned - self.committed.keys():
            if (offset := await consumer.committed(tp)) is not None:
                self.committed[tp] = offset

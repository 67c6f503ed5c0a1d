"""``refstream_consumer_lag{group,topic,partition}``, as the broker sees it.

Every :data:`interval <BrokerLag.interval>` a client of its own asks the broker for each
partition's end and start offsets (ListOffsets) and for each group's committed offsets
(OffsetFetch), whatever the consumers are doing. The consumers' own view was wrong exactly
when it mattered: a sink whose circuit is open pauses its consumer, which then stops
fetching, so the high-water mark it knew froze (lag read 706 while 1,885 records waited);
and right after a rebalance the new owner had no committed offset yet and reported the
whole partition as lag.

A group that has committed nothing on a partition starts at the partition's first offset
(``auto_offset_reset="earliest"`` for every group of the app), so its lag there is the whole
partition: that is the truth, not a guess. Every worker and the ``refstream lag-exporter``
process report the same numbers for all partitions of all groups, so queries take
``max by (group, topic, partition)`` before summing. A topic that does not exist yet has no
series; samples older than :data:`STALE_AFTER_INTERVALS` refreshes are dropped rather than
shown frozen (the broker is unreachable: ``RefstreamBrokerUnreachable`` says so).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator, Mapping, Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.protocol.metadata import MetadataRequest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from streams import tansu
from streams.connection import KafkaConnection, connection_of
from streams.settings import BrokerCompat, Settings

__all__ = ["BrokerLag", "consumer_groups", "partition_lag"]

STALE_AFTER_INTERVALS = 6

log = logging.getLogger(__name__)

LagKey = tuple[str, str, int]
"""(group, topic, partition)"""


def consumer_groups(settings: Settings) -> dict[str, tuple[str, ...]]:
    """Every consumer group of the app and the topics it reads: the join's stages (Faust's
    group, the app id), ingest, and one group per enabled sink."""
    from sinks.registry import sink_class  # the registry imports no settings

    t = settings.topics
    groups = {
        settings.app_id: (t.by_referral, t.by_customer, t.by_email, t.by_advocate),
        f"{settings.app_id}-ingest": (t.referrals, t.signups, t.orders),
    }
    for sink in settings.sinks:
        extra = (t.advocate_totals,) if sink_class(sink).consumes_advocate_totals else ()
        groups[f"{settings.app_id}-sink-{sink}"] = (t.attributions, *extra)
    return groups


def partition_lag(end: int, start: int, committed: int | None) -> int:
    """Records the group has still to read: from its committed offset, or from the first
    offset still in the log when it has committed none (or one that retention deleted)."""
    position = start if committed is None or committed < start else committed
    return max(0, end - position)


class BrokerLag(Collector):
    """Polls the broker on a timer and serves the latest lag of every group's partitions."""

    def __init__(
        self, connection: KafkaConnection | str, groups: Mapping[str, Sequence[str]],
        interval: float = 5.0, compat: BrokerCompat = BrokerCompat.KAFKA,
    ) -> None:  # fmt: skip
        self.connection = connection_of(connection)
        self.groups = {group: tuple(topics) for group, topics in groups.items()}
        self.interval = interval
        self.compat = compat
        self.lags: dict[LagKey, int] = {}
        self.refreshed_at: float | None = None
        """``time.monotonic()`` of the last complete refresh."""
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None

    @classmethod
    def of(cls, settings: Settings) -> BrokerLag:
        return cls(settings.kafka, consumer_groups(settings), settings.lag_interval_seconds,
                   settings.broker_compat)  # fmt: skip

    async def _clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self._admin is None:
            options = self.connection.client_options()
            admin = AIOKafkaAdminClient(**options, request_timeout_ms=10_000)
            await admin.start()
            self._admin = admin
        if self._consumer is None:
            # no group: it only asks for offsets and never joins or fetches
            consumer = AIOKafkaConsumer(
                **self.connection.client_options(),
                group_id=None,
                enable_auto_commit=False,
                request_timeout_ms=10_000,
            )
            await consumer.start()
            self._consumer = consumer
        return self._admin, self._consumer

    async def close(self) -> None:
        admin, consumer, self._admin, self._consumer = self._admin, self._consumer, None, None
        with contextlib.suppress(Exception):
            if admin is not None:
                await admin.close()
        with contextlib.suppress(Exception):
            if consumer is not None:
                await consumer.stop()

    async def _partitions(self, admin: AIOKafkaAdminClient) -> list[TopicPartition]:
        """The partitions of the groups' topics that exist. Asked for by name with
        auto-creation off: a broker that auto-creates topics would otherwise create a missing
        one with its default partition count before the worker creates it right."""
        wanted = sorted({topic for topics in self.groups.values() for topic in topics})
        request = MetadataRequest(wanted, allow_auto_topic_creation=False)
        metadata = (await admin._send_request(request)).to_object()
        return [
            TopicPartition(topic["topic"], partition["partition"])
            for topic in metadata["topics"]
            if topic["topic"] in wanted and not topic["error_code"]
            for partition in topic["partitions"]
        ]

    async def refresh(self) -> dict[LagKey, int]:
        admin, consumer = await self._clients()
        partitions = await self._partitions(admin)
        starts = await consumer.beginning_offsets(partitions)
        if self.compat is BrokerCompat.TANSU:  # Tansu's ListOffsets "latest" runs short
            ends = await tansu.end_offsets(self.connection, partitions)
        else:
            ends = await consumer.end_offsets(partitions)
        lags: dict[LagKey, int] = {}
        for group, topics in self.groups.items():
            theirs = [tp for tp in partitions if tp.topic in topics]
            if not theirs:
                continue
            committed = await admin.list_consumer_group_offsets(group, partitions=theirs)
            for tp in theirs:
                meta = committed.get(tp)
                offset = meta.offset if meta is not None and meta.offset >= 0 else None
                lags[(group, tp.topic, tp.partition)] = partition_lag(ends[tp], starts[tp], offset)
        self.lags, self.refreshed_at = lags, time.monotonic()
        return lags

    async def run(self) -> None:
        """Refresh for ever; a failure (broker gone, a group coordinator moving) is logged
        once until the next success, and the clients are made again."""
        failing = False
        try:
            while True:
                try:
                    await asyncio.wait_for(self.refresh(), timeout=max(30.0, 3 * self.interval))
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    if not failing:
                        log.warning("consumer lag refresh failed error=%r", exc)
                    failing = True
                    await self.close()
                else:
                    if failing:
                        log.info("consumer lag refresh works again")
                    failing = False
                await asyncio.sleep(self.interval)
        finally:
            await self.close()

    def fresh(self) -> bool:
        if self.refreshed_at is None:
            return False
        return time.monotonic() - self.refreshed_at < STALE_AFTER_INTERVALS * self.interval

    def collect(self) -> Iterator[GaugeMetricFamily]:
        lag = GaugeMetricFamily(
            "refstream_consumer_lag",
            "Records a consumer group has still to read (broker end offset minus the group's "
            "committed offset)",
            labels=["group", "topic", "partition"],
        )
        if self.fresh():
            for (group, topic, partition), value in sorted(self.lags.items()):
                lag.add_metric([group, topic, str(partition)], value)
        yield lag
        age = GaugeMetricFamily(
            "refstream_consumer_lag_age_seconds",
            "Seconds since the consumer lag was last read from the broker",
        )
        if self.refreshed_at is not None:
            age.add_metric([], time.monotonic() - self.refreshed_at)
        yield age

    def install(self, registry: CollectorRegistry) -> BrokerLag:
        registry.register(self)
        return self

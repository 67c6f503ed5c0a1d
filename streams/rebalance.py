"""After a rebalance, seek partitions that have no committed offset back to their start.

Faust drops the records its consumer fetched while a rebalance was under way (``Consumer.
getmany`` stops at a generation change, or finds the flow stopped) and relies on seeking to
the committed offsets once recovery ends to read them again. aiokafka's
``seek_to_committed`` seeks only partitions that have a committed offset, so on a partition
nothing was committed for yet (a new group, a new topic, the first seconds of traffic) the
fetched records were gone: on two workers, the records that reached the join while the
second worker joined the group were never joined (the referral then "unknown" to its
signup). Upstream: robinhood/faust#115 (the first record after a rebalance dropped) and
faust-streaming/faust#221 (prefetched records around a rebalance).

The app reads every group from ``earliest`` (``streams.app``), which is where an uncommitted
partition starts, so seeking it to its beginning is the committed position it lacks. Records
already handled are handled again; the join drops repeats by event id and the sinks'
writes are idempotent, as after any crash.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.transport.drivers import aiokafka as faust_aiokafka

__all__ = ["install", "seek_to_committed"]


async def seek_to_committed(consumer: AIOKafkaConsumer) -> Mapping[TopicPartition, int | None]:
    """Seek every assigned partition to its committed offset, and those without one (or
    committed at 0, which aiokafka also skips) to their beginning."""
    committed = await consumer.seek_to_committed()
    uncommitted = [tp for tp, offset in committed.items() if not offset]
    if uncommitted:
        await consumer.seek_to_beginning(*uncommitted)
    return committed


def install() -> None:
    """Make Faust's consumer thread seek with :func:`seek_to_committed`."""
    thread = faust_aiokafka.AIOKafkaConsumerThread

    async def _seek_to_committed(self) -> Mapping:
        return await self.call_thread(seek_to_committed, self._ensure_consumer())

    thread.seek_to_committed = _seek_to_committed  # type: ignore[method-assign]

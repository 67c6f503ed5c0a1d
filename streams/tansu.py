"""Broker compatibility for Tansu (``REFSTREAM_BROKER_COMPAT=tansu``); never used with Kafka.

Tansu answers ListOffsets "latest" with the first offset of the partition's last write + 1,
so after a multi-record write it lags the real end (broker-tansu.md). Faust's table
recovery reads each changelog up to that offset and would stop short, coming back stale.
The high watermark in Tansu's *fetch* responses is right, so in compat mode the end offsets
Faust asks for are read from a fetch at the start of the last write instead. That keeps
recovery exact without limiting the producer to one record per write.

Tansu also answers a fetch that finds no new data only when its wait runs out, not when data
arrives: with Faust's fixed 1.5 s wait every hop between agents cost about half a second when
the stream is not saturated. Every consumer now waits at most 100 ms on either broker
(``streams/fetch_wait.py``), for a reason that holds on Kafka as well.

And Tansu answers NotLeaderForPartition to writes on changelog partitions just taken over
from a killed worker; aiokafka re-sends the same batch until its request timeout (40 s) while
a new batch goes through, so the join's producer gives up on a batch after
:data:`PRODUCER_REQUEST_TIMEOUT_MS` and sends it again. The same 10 s pause is seen in about
one bench run in four right after a worker starts: a batch waits for a partition leader the
producer's metadata has lost (a metadata answer once held only the one topic that another
client had just auto-created), expires with NotLeaderForPartition, and its resend goes
through at once. A shorter timeout does not help: aiokafka then also times out batches that
are merely queued behind others under load. What helps is asking no new metadata mid-run:
the join's producer learns all of its topics before ingest starts
(``BatchProducer.prepare``); none of the runs since stalled (README, performance).

Tansu numbers a group's first generation 0, where Kafka starts at 1, and aiokafka leaves a
group on close only from a generation above 0: a worker stopped in its group's first
generation stayed a member, and the next worker's join waited out its session (8 s of the
bench's 16 s start on local state). :func:`leave_first_generation` makes it leave.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.consumer.group_coordinator import GroupCoordinator
from aiokafka.errors import KafkaError
from aiokafka.protocol.group import LeaveGroupRequest
from faust.transport.drivers import aiokafka as faust_aiokafka

from streams.connection import KafkaConnection, connection_of

__all__ = [
    "HEARTBEAT_INTERVAL_MS",
    "PRODUCER_REQUEST_TIMEOUT_MS",
    "SESSION_TIMEOUT_MS",
    "end_offsets",
    "install",
    "leave_first_generation",
]

log = logging.getLogger(__name__)

PRODUCER_REQUEST_TIMEOUT_MS = 10_000
SESSION_TIMEOUT_MS = 6000  # Tansu's joins wait half the session (broker-tansu.md)
HEARTBEAT_INTERVAL_MS = 1000


async def end_offsets(
    servers: KafkaConnection | str, partitions: Iterable[TopicPartition], timeout: float = 30.0
) -> dict[TopicPartition, int]:
    """True end offsets: fetch from the first record of each partition's last write and
    take the high watermark of the answer."""
    partitions = list(partitions)
    consumer = AIOKafkaConsumer(**connection_of(servers).client_options(),
                                enable_auto_commit=False, group_id=None,
                                max_partition_fetch_bytes=64 * 1024)  # fmt: skip
    await consumer.start()
    try:
        listed = await consumer.end_offsets(partitions)
        ends = {tp: 0 for tp, offset in listed.items() if offset == 0}  # never written
        pending = [tp for tp in partitions if tp not in ends]
        if pending:
            consumer.assign(pending)
            for tp in pending:
                consumer.seek(tp, listed[tp] - 1)
            deadline = time.monotonic() + timeout
            while pending:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no fetch answer for {pending} in {timeout}s")
                await consumer.getmany(*pending, timeout_ms=200, max_records=1)
                for tp in list(pending):
                    if (highwater := consumer.highwater(tp)) is not None:
                        ends[tp] = highwater
                        pending.remove(tp)
        return ends
    finally:
        await consumer.stop()


def leave_first_generation() -> None:
    """Make every aiokafka consumer of this process leave its group on close in generation 0
    too (aiokafka itself then only forgets the generation)."""
    maybe_leave_group = GroupCoordinator._maybe_leave_group
    if getattr(maybe_leave_group, "leaves_generation_zero", False):
        return

    async def _maybe_leave_group(self: GroupCoordinator) -> None:
        if self.generation == 0 and self._group_instance_id is None:
            try:
                await self._send_req(LeaveGroupRequest(self.group_id, self.member_id))
            except KafkaError as exc:  # a best effort, as aiokafka's own
                log.warning("LeaveGroup request failed group=%s error=%r", self.group_id, exc)
            else:
                log.info("LeaveGroup request succeeded group=%s generation=0", self.group_id)
        await maybe_leave_group(self)

    _maybe_leave_group.leaves_generation_zero = True  # type: ignore[attr-defined]
    GroupCoordinator._maybe_leave_group = _maybe_leave_group  # type: ignore[method-assign]


def install(servers: KafkaConnection) -> None:
    """Make Faust's consumer answer ``highwaters()`` (table recovery) with :func:`end_offsets`;
    make consumers leave their groups in generation 0 too."""
    leave_first_generation()

    async def _highwaters(self, partitions: list) -> Mapping:
        tps = {TopicPartition(tp.topic, tp.partition): tp for tp in partitions}  # Faust's TP
        ends = await end_offsets(servers, tps)
        return {tps[tp]: offset for tp, offset in ends.items()}

    faust_aiokafka.AIOKafkaConsumerThread._highwaters = _highwaters

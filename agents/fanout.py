"""Fan-out: every enabled sink consumes ``attributions`` in its own consumer group.

Faust delivers a topic to all of an app's agents through one consumer and commits a
partition's offset only when every agent has acked; one stalled vendor would then hold back
every sink and the join's own use of ``attributions``. A consumer group per sink gives each
its own offsets (advanced only past delivered or dead-lettered records) and lets a sink stop
consuming while its circuit is open without touching anyone else.

A vendor's rate limit is per account: each worker's sink uses the share of it that its
share of the sink's partitions is (:class:`SinkListener`), so the workers of a group stay
within it together.

A worker that loses partitions in a rebalance first stops its delivery in progress
(:mod:`sinks.delivery.fence`), so that no request of its lands after the new owner's.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from pydantic import ValidationError

from schemas.attribution import AdvocateTotals, AttributionEvent
from sinks.base import Sink
from sinks.batch import Batch, Item
from sinks.delivery.deliverer import Deliverer
from sinks.delivery.dlq import DeadLetters, Failure
from sinks.delivery.fence import FencedDelivery
from sinks.delivery.watch import DeliveryWatch
from sinks.delivery.window import SlidingWindowLimiter
from sinks.registry import build_sinks
from streams.app import app, settings
from streams.group_consumer import group_consumer
from streams.topics import ensure_topic

__all__ = ["SinkConsumer", "SinkListener", "run_sinks"]

log = logging.getLogger(__name__)


async def _send(topic: str, key: bytes | None, value: bytes, headers: list) -> None:
    await ensure_topic(topic)
    await (await app.producer.send(topic, key, value, None, None, headers))


class SinkListener(ConsumerRebalanceListener):
    """Fences a sink's delivery at a rebalance and shares its vendor's rate limits.

    Revoked: the delivery in progress is stopped before the group moves on (aiokafka runs
    every member's revoke callback before any member is assigned), so no request of this
    worker's can land after the new owner's. Assigned: the sink may use the share of its
    vendor's rate limits that its share of the group's partitions is (all of them when it
    has them all).
    """

    def __init__(
        self,
        name: str,
        consumer: AIOKafkaConsumer,
        limiters: list[SlidingWindowLimiter],
        stop_delivery: Callable[[], Awaitable[None]],
        assigned: Callable[[], None],
    ) -> None:
        self.name = name
        self.consumer = consumer
        self.limiters = limiters
        self.stop_delivery = stop_delivery
        self.assigned = assigned

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.stop_delivery()

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.assigned()
        topics = self.consumer.subscription()
        total = sum(len(self.consumer.partitions_for_topic(t) or ()) for t in topics)
        if not assigned or not total:
            return  # no partitions, no requests
        share = min(1.0, len(assigned) / total)
        for limiter in self.limiters:
            limiter.share(share)
        log.info("sink rate limits shared sink=%s partitions=%d/%d share=%.3f",
                 self.name, len(assigned), total, share)  # fmt: skip


class SinkConsumer:
    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.dead_letters = DeadLetters(sink.name, settings.sink_dlq(sink.name), _send)
        self.deliverer = Deliverer(sink, self.dead_letters)
        self.watch = DeliveryWatch(sink.name, self._vendor_answers)
        self.group = f"{settings.app_id}-sink-{sink.name}"
        # Several rounds of full requests per poll: the rate limiter stays busy while the
        # consumer commits and fetches between polls.
        self.poll_records = sink.policy.batch_size * sink.policy.max_in_flight * 4
        self.delivery = FencedDelivery(sink.name, self.deliverer.deliver)
        self.first_fetched: dict[TopicPartition, int] = {}
        """Per partition, the first offset fetched for the current batch since the latest
        assignment (which set the position to the committed offset): where a dropped batch
        rewinds to."""
        self.cut_at = float("-inf")
        """When the latest batch stopped collecting (``time.monotonic``): the next one
        collects until ``linger`` after it, not after its own first fetch."""

    def _vendor_answers(self) -> bool:
        """Whether the vendor takes requests: its circuit closed, its daily limit not spent
        (a delivery waiting on either is not stuck)."""
        return not (self.deliverer.breaker.is_open or self.deliverer.quota_spent)

    @property
    def topics(self) -> list[str]:
        topics = [settings.topics.attributions]
        if self.sink.consumes_advocate_totals:
            topics.append(settings.topics.advocate_totals)
        return topics

    def _consumer(self) -> AIOKafkaConsumer:
        # an open circuit may hold a batch for a long time: no rebalance for a slow poll
        consumer = group_consumer(settings, [], self.group, self.poll_records,
                                  max_poll_interval_ms=30 * 60 * 1000)  # fmt: skip
        listener = SinkListener(
            self.sink.name, consumer, self.deliverer.limiters, self.delivery.stop,
            self.first_fetched.clear,
        )  # fmt: skip
        consumer.subscribe(self.topics, listener=listener)
        return consumer

    async def _deliver(self, items: list[Item], epoch: int) -> bool:
        """Deliver ``items`` fetched in ``epoch``; False if a rebalance came in between."""
        self.watch.started()
        try:
            return await self.delivery.run(Batch(tuple(items)), epoch)
        finally:
            self.watch.finished()

    async def run(self) -> None:
        await self.sink.setup()
        for topic in self.topics:
            await ensure_topic(topic)  # subscribing to a missing topic auto-creates it
        # The dead-letter topic too, now rather than at the first dead letter: a record sent
        # to a partition created a moment before met NotLeaderForPartition, and the sink's
        # delivery hung on its retry for minutes (CI, 2026-12-06; test_permanent_errors…).
        await ensure_topic(self.dead_letters.topic)
        consumer = self._consumer()
        await consumer.start()
        log.info("sink started sink=%s", self.sink.name)
        try:
            while True:
                epoch = self.delivery.epoch
                fetched = await self._poll(consumer)
                items, offsets = [], {}
                for tp, records in fetched.items():
                    for record in records:
                        item = await self._item(record)
                        if item is not None:
                            items.append(item)
                    offsets[tp] = records[-1].offset + 1
                delivered = not items or await self._deliver(items, epoch)
                if not delivered or epoch != self.delivery.epoch:
                    # A rebalance came: the batch is not ours to send or commit. Its
                    # records of partitions still (or again) ours may have been fetched
                    # after the new assignment moved the position past them: read them
                    # again, or a later commit would skip them (the hour soak lost
                    # records to this until the rewind).
                    self._rewind(consumer)
                    continue
                owned = consumer.assignment()
                offsets = {tp: offset for tp, offset in offsets.items() if tp in owned}
                if offsets:
                    try:
                        await consumer.commit(offsets)
                    except (CommitFailedError, IllegalStateError):
                        log.warning("sink commit lost to a rebalance sink=%s", self.sink.name)
        finally:
            await consumer.stop()
            await self.sink.aclose()

    def _rewind(self, consumer: AIOKafkaConsumer) -> None:
        """Back to the first records fetched since the latest assignment. Records fetched
        before it are not a position to go back to: the assignment restarted from the
        committed offsets, and seeking to them could skip forward past records another
        owner sent in between."""
        owned = consumer.assignment()
        for tp, offset in self.first_fetched.items():
            if tp in owned:
                consumer.seek(tp, offset)
        self.first_fetched.clear()

    async def _poll(self, consumer: AIOKafkaConsumer) -> dict:
        """The records of one delivery: keep collecting until the sink's ``linger`` after
        the previous batch was cut (or until ``poll_records``). Sending whatever each fetch
        brings would spend a rate-limited vendor's requests on a few records each: HubSpot
        allows 10 requests/s, and a steady stream fetched every 100 ms filled them all.
        Batches are still cut at most once per ``linger``, but the previous delivery's time
        counts towards it: the consumer kept fetching while it ran, and a linger started only
        after it made a record that just missed a batch wait for that delivery, a whole
        linger and its own delivery (HubSpot, 0.5 s linger and 0.3 s calls: attribution →
        HubSpot p99 0.8-1.3 s at 1,000 events/s).

        While the vendor's rate limit would hold the request back anyway, collecting goes
        on until it would not: the records that arrive meanwhile go with it instead of
        waiting for the next delivery (Klaviyo's bulk jobs, paced at 150 a minute, at
        1,000 events/s: attribution → Klaviyo p99 1.01 s before). A batch small enough
        to go one record per request waits only for the single requests' limit."""
        linger = self.sink.policy.linger
        self.first_fetched.clear()
        fetched = await consumer.getmany(
            timeout_ms=int(linger * 1000), max_records=self.poll_records
        )
        if not fetched:
            return fetched
        self._note_first(fetched)
        count = sum(len(records) for records in fetched.values())
        now = time.monotonic()
        deadline = max(self.cut_at + linger, now + self.deliverer.delay(count))
        while count < self.poll_records:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            more = await consumer.getmany(
                timeout_ms=int(left * 1000), max_records=self.poll_records - count
            )
            self._note_first(more)
            for tp, records in more.items():
                fetched.setdefault(tp, []).extend(records)
                count += len(records)
            deadline = max(deadline, time.monotonic() + self.deliverer.delay(count))
        self.cut_at = time.monotonic()
        return fetched

    def _note_first(self, fetched: dict) -> None:
        for tp, records in fetched.items():
            if records:
                self.first_fetched.setdefault(tp, records[0].offset)

    async def _item(self, record) -> Item | None:
        model = AdvocateTotals if record.topic == settings.topics.advocate_totals else None
        try:
            event = (model or AttributionEvent).model_validate_json(record.value)
        except ValidationError as exc:
            log.error(
                "undecodable attribution dead-lettered sink=%s partition=%s offset=%s",
                self.sink.name, record.partition, record.offset,
            )  # fmt: skip
            placeholder = AttributionEvent.model_construct(referral_id=None)
            item = Item(placeholder, record.topic, record.partition, record.offset, record.value)
            now = record.timestamp / 1000
            failure = Failure("invalid_record", str(exc)[:300], None, 0, now, now)
            await self.dead_letters.put(item, failure)
            return None
        return Item(event, record.topic, record.partition, record.offset, record.value)


SINKS = [SinkConsumer(sink) for sink in build_sinks(settings.sinks)]


@app.task
async def run_sinks() -> None:
    """Each sink in its own task; one failing never stops the others."""

    async def supervise(consumer: SinkConsumer) -> None:
        while True:
            try:
                await consumer.run()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("sink crashed, restarting in 1s sink=%s", consumer.sink.name)
                await asyncio.sleep(1)

    await asyncio.gather(*(supervise(consumer) for consumer in SINKS))

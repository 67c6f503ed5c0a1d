"""One batch's output: collected while the batch is processed, sent at once, acknowledged.

Ordering matters for at-least-once: a stage awaits :meth:`Outbox.flush` *before* it writes
its table, so a crash can repeat outputs (same ids, same content) but never lose them.
Messages to stages travel in envelopes (:mod:`agents.envelopes`), one per partition.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from faust.types import AppT

from agents import envelopes
from agents.codec import to_json
from agents.messages import Attribution
from agents.rules import Stage, StepResult
from schemas.attribution import AttributionKind
from streams.metrics import ATTRIBUTION_LATENCY, ATTRIBUTIONS
from streams.producer import BatchProducer, Headers, OutRecord
from streams.settings import Topics
from streams.topics import ensure_topic

__all__ = ["Outbox", "crash_on_error"]

log = logging.getLogger(__name__)


@asynccontextmanager
async def crash_on_error(app: AppT) -> AsyncIterator[None]:
    """Stop the worker if a batch fails unexpectedly.

    Faust would restart the agent, but the failed batch's records stay unacknowledged behind
    the consumer's position: nothing would read them again, and the commit could never pass
    them. A restarted worker reads them again from the committed offsets.
    """
    try:
        yield
    except Exception as exc:
        log.exception("batch failed; stopping the worker error=%s", type(exc).__name__)
        await app.crash(exc)
        raise


class Outbox:
    def __init__(
        self, producer: BatchProducer, topics: Topics, stage_topics: dict[str, str]
    ) -> None:
        self._producer = producer
        self._topics = topics
        self._stage_topics = stage_topics
        self._records: list[OutRecord] = []
        self._entries: dict[str, list[tuple[bytes, bytes]]] = {}
        self._kinds: Counter[AttributionKind] = Counter()

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        *,
        timestamp: float | None = None,
        headers: Headers | None = None,
    ) -> None:
        """Queue one record for a topic outside the join (attributions, dead letters)."""
        self._records.append(OutRecord(topic, key, value, timestamp, headers))

    def forward(
        self, stage: str, key: str, kind: str, message: bytes, timestamp: float | None
    ) -> None:
        """Queue a message of ``kind`` (its JSON) for ``stage``'s ``key``."""
        queued = self._entries.setdefault(self._stage_topics[stage], [])
        queued.append((key.encode(), envelopes.entry(key, kind, message, timestamp)))

    def emit(self, result: StepResult, source_timestamp: float | None) -> None:
        """Queue a step's forwards and attribution events; ``source_timestamp`` is the input
        record's time, carried along so latency is measured from the producer's record."""
        if result.forwards:
            entries, topics = self._entries, self._stage_topics
            for stage, key, message in result.forwards:  # self.forward, inline: the hot path
                entry = envelopes.entry(key, message.type, message, source_timestamp)
                queued = entries.get(topics[stage])
                if queued is None:
                    queued = entries[topics[stage]] = []
                queued.append((key.encode(), entry))
        if result.attributions:
            self.attributions(result.attributions, source_timestamp)
        for totals in result.advocate_totals:
            totals.emitted_at = _utc(time.time())
            key = (totals.advocate.id or "").encode()  # never "": AdvocateRevenue checks it
            value = to_json(totals)
            self.send(self._topics.advocate_totals, key, value, timestamp=source_timestamp)

    def attributions(self, events: Iterable[Attribution], source_timestamp: float | None) -> None:
        """Publish attribution events, and fold each one with a referral back into the
        referral stage (it keeps the lookup view and the friend slot)."""
        now = time.time()
        emitted_at = _utc(now)
        for event in events:
            event.emitted_at = emitted_at
            value = to_json(event)
            key = event.referral_id.encode() if event.referral_id else None
            self.send(self._topics.attributions, key, value, timestamp=source_timestamp)
            if event.referral_id:
                self.forward(
                    Stage.REFERRAL,
                    event.referral_id,
                    envelopes.ATTRIBUTION,
                    value,
                    source_timestamp,
                )
            self._kinds[event.kind] += 1
            if source_timestamp:
                ATTRIBUTION_LATENCY.observe(max(0.0, now - source_timestamp))

    async def flush(self) -> None:
        """Send everything queued; return once the broker has acknowledged all of it."""
        records, self._records = self._records, []
        for topic, entries in self._entries.items():
            partition_of = await self._producer.partitioner(topic)
            by_partition: dict[int, list[bytes]] = {}
            for key, item in entries:
                partition = partition_of(key)
                items = by_partition.get(partition)
                if items is None:
                    by_partition[partition] = [item]
                else:
                    items.append(item)
            for partition, items in by_partition.items():
                for value in envelopes.pack(items):
                    records.append(OutRecord(topic, None, value, partition=partition))
        self._entries = {}
        for kind, count in self._kinds.items():  # counted once a batch: each inc takes a lock
            _COUNTERS[kind].inc(count)
        self._kinds.clear()
        if records:
            for topic in {record.topic for record in records}:
                await ensure_topic(topic)
            await self._producer.send_all(records)


_COUNTERS = {kind: ATTRIBUTIONS.labels(kind.value) for kind in AttributionKind}
"""Each kind's counter, looked up once (``labels`` costs a lock and a dict per call)."""


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)

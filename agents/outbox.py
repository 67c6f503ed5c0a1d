"""One batch's output: sends to the broker and waits until every record is acknowledged.

Ordering matters for at-least-once: a stage awaits :meth:`Outbox.flush` *before* it writes
its table, so a crash can repeat outputs (same ids, same content) but never lose them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Iterable
from datetime import UTC, datetime

from faust.types import ProducerT

from agents.rules import StepResult
from schemas.attribution import AttributionEvent
from streams.metrics import ATTRIBUTION_LATENCY, ATTRIBUTIONS
from streams.settings import Topics
from streams.topics import ensure_topic

__all__ = ["Outbox"]

Headers = list[tuple[str, bytes]]


class Outbox:
    def __init__(self, producer: ProducerT, topics: Topics, stage_topics: dict[str, str]) -> None:
        self._producer = producer
        self._topics = topics
        self._stage_topics = stage_topics
        self._pending: list[Awaitable] = []

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        *,
        timestamp: float | None = None,
        headers: Headers | None = None,
    ) -> None:
        await ensure_topic(topic)
        self._pending.append(await self._producer.send(topic, key, value, None, timestamp, headers))

    async def emit(self, result: StepResult, source_timestamp: float | None) -> None:
        """Send a step's forwards and attribution events; ``source_timestamp`` is the input
        record's time, carried along so latency is measured from the producer's record."""
        for forward in result.forwards:
            await self.send(
                self._stage_topics[forward.stage],
                forward.key.encode(),
                forward.message.model_dump_json().encode(),
                timestamp=source_timestamp,
            )
        if result.attributions:
            await self.attributions(result.attributions, source_timestamp)

    async def attributions(
        self, events: Iterable[AttributionEvent], source_timestamp: float | None
    ) -> None:
        now = time.time()
        emitted_at = {"emitted_at": _utc(now)}
        for event in events:
            key = event.referral_id.encode() if event.referral_id else None
            value = event.model_copy(update=emitted_at).model_dump_json().encode()
            await self.send(self._topics.attributions, key, value, timestamp=source_timestamp)
            ATTRIBUTIONS.labels(event.kind.value).inc()
            if source_timestamp:
                ATTRIBUTION_LATENCY.observe(max(0.0, now - source_timestamp))

    async def flush(self) -> None:
        if self._pending:
            pending, self._pending = self._pending, []
            await asyncio.gather(*pending)


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)

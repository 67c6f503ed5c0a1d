"""Dead letters of a sink: ``refstream-dlq-<sink>``, the original event, headers saying why."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sinks.batch import Item
from streams.metrics import SINK_DLQ

__all__ = ["DeadLetters", "Failure"]

Send = Callable[[str, bytes | None, bytes, list[tuple[str, bytes]]], Awaitable[None]]


def _ts(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Failure:
    reason: str
    message: str
    http_status: int | None
    attempts: int
    first_failed_at: float
    last_failed_at: float


class DeadLetters:
    def __init__(self, sink: str, topic: str, send: Send) -> None:
        self.sink = sink
        self.topic = topic
        self._send = send

    async def put(self, item: Item, failure: Failure) -> None:
        headers = [
            ("error.reason", failure.reason.encode()),
            ("error.message", failure.message.encode()[:1000]),
            ("error.http_status", str(failure.http_status or "").encode()),
            ("error.attempts", str(failure.attempts).encode()),
            ("error.first_failed_at", _ts(failure.first_failed_at).encode()),
            ("error.last_failed_at", _ts(failure.last_failed_at).encode()),
            ("sink", self.sink.encode()),
            ("source.topic", item.topic.encode()),
            ("source.partition", str(item.partition).encode()),
            ("source.offset", str(item.offset).encode()),
        ]
        key = item.event.referral_id.encode() if item.event.referral_id else None
        await self._send(self.topic, key, item.raw, headers)
        SINK_DLQ.labels(self.sink, failure.reason).inc()

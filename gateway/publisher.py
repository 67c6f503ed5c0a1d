"""The gateway's producer (gateway.md §7.2): ``acks=all``, every record of a request sent
at once and waited for under one deadline.

Nothing is retried here: a request whose records are not all acknowledged in time is
answered 503 and the platform sends it again with the same event ids. A record that the
broker acknowledges later is a copy the join drops (rule 1).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from streams.connection import KafkaConnection

__all__ = ["GatewayRecord", "Publisher"]

log = logging.getLogger(__name__)
START_BACKOFF_SECONDS = (0.5, 5.0)
LINGER_MS = 5
"""Records of concurrent requests share a produce request: at 1 ms, one produce request per
webhook took a seventh of the gateway's CPU (bench/gateway.py, py-spy); 5 ms adds at most
that to an answer, far inside Shopify's 5 s."""


@dataclass(frozen=True, slots=True)
class GatewayRecord:
    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


class Publisher:
    """Connects in the background (:meth:`run`) and is :attr:`ready` once the producer is
    connected and the metadata of ``topics`` is known (``/readyz``)."""

    def __init__(
        self, connection: KafkaConnection, topics: Sequence[str], request_timeout_ms: int = 30_000
    ) -> None:
        self._connection = connection
        self._topics = tuple(topics)
        self._request_timeout_ms = request_timeout_ms
        self._producer: AIOKafkaProducer | None = None
        self.ready = False

    async def run(self) -> None:
        """Start the producer and learn the topics, retrying until the broker answers."""
        backoff, ceiling = START_BACKOFF_SECONDS
        while not self.ready:
            try:
                if self._producer is None:
                    producer = AIOKafkaProducer(
                        **self._connection.client_options(),
                        acks="all",
                        linger_ms=1,
                        request_timeout_ms=self._request_timeout_ms,
                    )
                    try:
                        await producer.start()
                    except BaseException:
                        await producer.stop()  # its client's connections and tasks
                        raise
                    self._producer = producer
                for topic in self._topics:
                    if not await self._producer.partitions_for(topic):
                        raise KafkaError(f"no partitions for {topic}")
                self.ready = True
                log.info("gateway producer ready topics=%s", ",".join(self._topics))
            except (KafkaError, OSError) as exc:
                log.warning("gateway producer not ready, retrying in %.1fs error=%r", backoff, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, ceiling)

    async def stop(self) -> None:
        self.ready = False
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()

    async def publish(self, records: Sequence[GatewayRecord], timeout: float) -> bool:
        """Whether the broker acknowledged every record within ``timeout`` seconds."""
        producer = self._producer
        if not self.ready or producer is None:
            return False
        deadline = time.monotonic() + timeout
        try:
            async with asyncio.timeout(timeout):  # enqueueing may wait for buffer space
                futures = [
                    await producer.send(r.topic, r.value, key=r.key, headers=r.headers)
                    for r in records
                ]
        except (TimeoutError, KafkaError) as exc:
            log.warning("gateway publish not enqueued error=%r", exc)
            return False
        # asyncio.wait, not a cancelling timeout: a record's future stays with its batch.
        done, pending = await asyncio.wait(futures, timeout=max(0.0, deadline - time.monotonic()))
        for future in pending:  # its outcome comes after the answer: read it, unlogged
            future.add_done_callback(_retrieve)
        return not pending and all(not f.cancelled() and f.exception() is None for f in done)


def _retrieve(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()

"""How long a fetch may wait at the broker for new records: :data:`FETCH_MAX_WAIT_MS`, for
Faust's consumer and the plain consumer groups alike.

aiokafka keeps one fetch request in flight per broker and leaves out of it every partition
whose fetched records the application has not consumed yet
(``aiokafka/consumer/fetcher.py``, ``Fetcher._get_actions_per_node``). When every busy
partition holds such records, the request covers only quiet ones and the broker holds it
for the whole max wait; the busy partitions wait that out before their next fetch. Faust
passes a fixed 1,500 ms (``faust/transport/drivers/aiokafka.py``), and its flow control
keeps records unconsumed on purpose: a stream whose buffer is under pressure has its
partition taken out of ``getmany`` until the buffer drains. At 1,000 events/s one hiccup
of a few hundred milliseconds filled the join's buffers, each hop then waited ~1.5 s per
fetch, the larger fetches filled the buffers again, and the join's p99 stayed at 5 s for
the rest of the run instead of 0.15 s (README, Performance, item 34). With 100 ms the
same hiccup is gone within a second; an idle consumer asks ten times a second.
"""

from __future__ import annotations

from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka

__all__ = ["FETCH_MAX_WAIT_MS", "install"]

FETCH_MAX_WAIT_MS = 100


def install() -> None:
    """Give the consumer Faust creates for its worker :data:`FETCH_MAX_WAIT_MS`."""
    thread = faust_aiokafka.AIOKafkaConsumerThread
    create = thread._create_worker_consumer
    if getattr(create, "bounds_fetch_wait", False):
        return

    def _create_worker_consumer(self: Any, transport: Any) -> Any:
        consumer = create(self, transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read when the fetcher starts
        return consumer

    _create_worker_consumer.bounds_fetch_wait = True  # type: ignore[attr-defined]
    thread._create_worker_consumer = _create_worker_consumer  # type: ignore[method-assign]

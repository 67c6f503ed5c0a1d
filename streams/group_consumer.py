"""Plain aiokafka consumer groups for the loops that need no Faust stream: ingest and sinks.

Each reads its topics in batches, commits only what it has finished with, and joins a
consumer group of its own, named after the app id.
"""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer

from streams import tansu
from streams.fetch_wait import FETCH_MAX_WAIT_MS
from streams.settings import BrokerCompat, Settings

__all__ = ["FETCH_MIN_BYTES", "group_consumer"]

FETCH_MIN_BYTES = 16 * 1024
"""The broker holds a fetch until this much is there, or for :data:`FETCH_MAX_WAIT_MS`. With
aiokafka's 1 byte a thin stream was fetched a few records at a time as fast as the loop
turned round, and each fetch costs the loop's thread about 0.5 ms whatever it carries: at
1,000 events/s ingest and the three sinks made ~170 fetches a second, and the loop's thread,
0.75 of a core busy, delayed the join (input → attribution p99 1.2-3.1 s; 0.21 s with 16 KB,
about 30 ms of input at that rate). A backlog fills every fetch anyway."""


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
        fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
        fetch_min_bytes=FETCH_MIN_BYTES,
    )

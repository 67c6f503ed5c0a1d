"""``refstream_consumer_lag{group,topic,partition}``: end offset minus committed offset.

Computed at scrape time from what each consumer of this worker already knows (the
high-water mark from its last fetch, the offset it last committed) for the partitions it
owns right now, so a revoked partition disappears from the output instead of freezing at its
last value. The ``group`` label tells the join's consumer group from each sink's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import NamedTuple

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector, CollectorRegistry

__all__ = ["CONSUMER_LAG", "ConsumerLag", "Offsets"]


class Offsets(NamedTuple):
    committed: int | None
    """Next offset the group will read (Kafka's committed offset); None before a commit."""
    end: int | None
    """High-water mark: the offset the next record written will get; None before a fetch."""


OffsetSource = Callable[[], Mapping[tuple[str, int], Offsets]]
"""(topic, partition) → offsets, for the partitions a consumer owns now."""


class ConsumerLag(Collector):
    def __init__(self) -> None:
        self._sources: dict[str, OffsetSource] = {}

    def register(self, group: str, source: OffsetSource) -> None:
        self._sources[group] = source

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "refstream_consumer_lag",
            "Records behind the end of the partition (end offset minus committed offset)",
            labels=["group", "topic", "partition"],
        )
        for group, source in self._sources.items():
            try:
                offsets = source()
            except Exception:  # a consumer between restarts: no sample rather than no scrape
                continue
            for (topic, partition), (committed, end) in sorted(offsets.items()):
                if end is None:
                    continue
                family.add_metric([group, topic, str(partition)], max(0, end - (committed or 0)))
        yield family

    def install(self, registry: CollectorRegistry = REGISTRY) -> ConsumerLag:
        registry.register(self)
        return self


CONSUMER_LAG = ConsumerLag().install()

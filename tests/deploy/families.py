"""Every metric family a worker or the gateway can expose, with the sample names and labels
it produces."""

from __future__ import annotations

from faust.sensors.prometheus import FaustMetrics
from prometheus_client import REGISTRY, CollectorRegistry

import streams.metrics  # noqa: F401  (registers the contract families)
from gateway.metrics import REGISTRY as GATEWAY
from streams.lag import BrokerLag

CUSTOM = {  # collectors of their own, with the labels their samples carry
    "refstream_consumer_lag": {"group", "topic", "partition"},
    "refstream_consumer_lag_age_seconds": set(),
    "refstream_table_keys": {"table"},
    "refstream_rocksdb_memory_bytes": {"kind"},
}

SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def _labels(collector) -> tuple[str, ...]:
    return tuple(getattr(collector, "_labelnames", ()))


def exposed() -> dict[str, set[str]]:
    """Sample name → label names (``le`` included for histogram buckets)."""
    faust = CollectorRegistry()
    FaustMetrics.create(faust, "refstream_faust")
    lag = CollectorRegistry()
    BrokerLag("localhost:9092", {}).install(lag)
    names: dict[str, set[str]] = {  # registered by a running worker only
        name: CUSTOM[name] | {"instance", "job"}
        for name in ("refstream_table_keys", "refstream_rocksdb_memory_bytes")
    }
    for registry in (REGISTRY, faust, GATEWAY, lag):
        for collector in list(registry._collector_to_names):
            for family in collector.collect():
                if not family.name.startswith(("refstream_", "process_")):
                    continue
                labels = CUSTOM.get(family.name, set(_labels(collector)))
                for suffix in SUFFIXES.get(family.type, ("",)):
                    extra = {"le"} if suffix == "_bucket" else set()
                    names[family.name + suffix] = labels | extra | {"instance", "job"}
    return names

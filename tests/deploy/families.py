"""Every metric family a worker or the gateway can expose, with the sample names and labels
it produces."""

from __future__ import annotations

from faust.sensors.prometheus import FaustMetrics
from prometheus_client import REGISTRY, CollectorRegistry

import streams.lag
import streams.metrics  # noqa: F401  (registers the contract families)
from gateway.metrics import REGISTRY as GATEWAY

SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def _labels(collector) -> tuple[str, ...]:
    return tuple(getattr(collector, "_labelnames", ()))


def exposed() -> dict[str, set[str]]:
    """Sample name → label names (``le`` included for histogram buckets)."""
    faust = CollectorRegistry()
    FaustMetrics.create(faust, "refstream_faust")
    names: dict[str, set[str]] = {}
    for registry in (REGISTRY, faust, GATEWAY):
        for collector in list(registry._collector_to_names):
            for family in collector.collect():
                if not family.name.startswith("refstream_"):
                    continue
                labels = set(_labels(collector))
                if family.name == "refstream_consumer_lag":
                    labels = {"group", "topic", "partition"}
                for suffix in SUFFIXES.get(family.type, ("",)):
                    extra = {"le"} if suffix == "_bucket" else set()
                    names[family.name + suffix] = labels | extra | {"instance", "job"}
    return names

"""Prometheus metric families of contract section 7 that the join owns. No personal data
in labels: topics, outcomes, kinds and reasons only."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = ["ATTRIBUTIONS", "ATTRIBUTION_LATENCY", "DROPPED", "EVENTS", "PENDING"]

EVENTS = Counter(
    "refstream_events", "Input events by outcome (accepted, invalid, duplicate)",
    ["topic", "outcome"],
)  # fmt: skip
ATTRIBUTIONS = Counter("refstream_attributions", "Attribution events emitted", ["kind"])
DROPPED = Counter(
    "refstream_events_released", "Held events released without an attribution", ["reason"]
)
PENDING = Gauge("refstream_pending_events", "Events held waiting for their partner")
ATTRIBUTION_LATENCY = Histogram(
    "refstream_attribution_latency_seconds",
    "Input record timestamp to attribution emitted",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600, 86400),
)

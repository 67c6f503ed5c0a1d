"""Prometheus metric families of contract section 7 that the join owns. No personal data
in labels: topics, outcomes, kinds and reasons only."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "ATTRIBUTIONS",
    "ATTRIBUTION_LATENCY",
    "BROKER_CONNECTED",
    "BROKER_CONTACT_AGE",
    "DROPPED",
    "EVENTS",
    "PENDING",
    "SINK_CIRCUIT_OPEN",
    "SINK_DELIVERED",
    "SINK_DELIVERY_LATENCY",
    "SINK_DLQ",
    "SINK_OLDEST_PENDING",
    "SINK_REQUESTS",
    "SINK_REQUEST_DURATION",
    "SINK_RETRIES",
    "WORKER_READY",
    "init_sink_series",
]

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

WORKER_READY = Gauge(
    "refstream_worker_ready", "1 when partitions are assigned and tables recovered (/readyz)"
)

BROKER_CONNECTED = Gauge(
    "refstream_broker_connected", "1 while the worker's metadata requests reach the broker"
)
BROKER_CONTACT_AGE = Gauge(
    "refstream_broker_last_contact_age_seconds",
    "Seconds since the broker last answered the worker's metadata request",
)

# Sinks (labels: sink name, HTTP status class or code, reason codes; never record data).
SINK_REQUESTS = Counter("refstream_sink_requests", "Vendor requests by status", ["sink", "status"])
SINK_REQUEST_DURATION = Histogram(
    "refstream_sink_request_duration_seconds", "Vendor request duration", ["sink"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)  # fmt: skip
SINK_RETRIES = Counter("refstream_sink_retries", "Retried vendor requests", ["sink", "reason"])
SINK_DLQ = Counter("refstream_sink_dlq", "Records dead-lettered by a sink", ["sink", "reason"])
SINK_DELIVERED = Counter("refstream_sink_delivered", "Records accepted by the vendor", ["sink"])
SINK_DELIVERY_LATENCY = Histogram(
    "refstream_sink_delivery_latency_seconds", "Attribution emitted to accepted by the vendor",
    ["sink"], buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
)  # fmt: skip
SINK_CIRCUIT_OPEN = Gauge("refstream_sink_circuit_open", "1 while the circuit is open", ["sink"])
SINK_OLDEST_PENDING = Gauge(
    "refstream_sink_oldest_pending_seconds",
    "Age of the sink's oldest record handed to delivery and not yet delivered or dead-lettered",
    ["sink"],
)

RETRY_REASONS = ("rate_limited", "timeout", "server_error", "connection")
DLQ_REASONS = (
    "rejected", "failed_record", "retries_exhausted", "invalid_record", "too_large",
    "unmappable", "unauthorized", "forbidden",
)  # fmt: skip


def init_sink_series(sink: str) -> None:
    """Create a sink's series at 0, so that ``increase()`` in alerts and dashboards sees the
    first retry or dead letter instead of a series appearing out of nothing."""
    SINK_DELIVERED.labels(sink)
    SINK_CIRCUIT_OPEN.labels(sink).set(0)
    for reason in RETRY_REASONS:
        SINK_RETRIES.labels(sink, reason)
    for reason in DLQ_REASONS:
        SINK_DLQ.labels(sink, reason)

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
    "PENDING_TTL",
    "PRODUCER_SEND_RETRIES",
    "REBALANCES",
    "RECOVERY_COMPLETED",
    "RECOVERY_DURATION",
    "SINK_CIRCUIT_OPEN",
    "SINK_DAILY_REMAINING",
    "SINK_DELIVERED",
    "SINK_DELIVERY_LATENCY",
    "SINK_DLQ",
    "SINK_OLDEST_PENDING",
    "SINK_REQUESTS",
    "SINK_REQUEST_DURATION",
    "SINK_RETRIES",
    "WORKER_READY",
    "init_join_series",
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
PENDING_TTL = Gauge(
    "refstream_pending_ttl_seconds", "PENDING_TTL_SECONDS: how long an event is held at most"
)
ATTRIBUTION_LATENCY = Histogram(
    "refstream_attribution_latency_seconds",
    "Input record timestamp to attribution emitted",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600, 86400),
)

PRODUCER_SEND_RETRIES = Counter(
    "refstream_producer_send_retries",
    "Record batches the join's producer sent again after a retriable error (no leader, a "
    "request timeout); it retries for as long as it takes",
)
REBALANCES = Counter("refstream_rebalances", "Rebalances of the join's group completed")
RECOVERY_DURATION = Gauge(
    "refstream_recovery_duration_seconds",
    "Duration of the last rebalance, table recovery included (the first: from process start)",
)
RECOVERY_COMPLETED = Gauge(
    "refstream_recovery_completed_timestamp_seconds",
    "Unix time the last rebalance and table recovery completed",
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
    ["sink"],
    # 30 s steps from 1 to 5 minutes: a 70 s outage read as a 295 s p99 when the buckets
    # jumped from 60 to 300 s (histogram_quantile interpolates inside a bucket).
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 90, 120, 150, 180, 210, 240, 270,
             300, 450, 600, 900, 1800, 3600),
)  # fmt: skip
SINK_CIRCUIT_OPEN = Gauge("refstream_sink_circuit_open", "1 while the circuit is open", ["sink"])
SINK_DAILY_REMAINING = Gauge(
    "refstream_sink_daily_requests_remaining",
    "Requests left in the vendor's daily limit, as its latest answer said (HubSpot)",
    ["sink"],
)
SINK_OLDEST_PENDING = Gauge(
    "refstream_sink_oldest_pending_seconds",
    "Age of the sink's oldest record handed to delivery and not yet delivered or dead-lettered",
    ["sink"],
)

OUTCOMES = ("accepted", "invalid", "duplicate")
REQUEST_STATUSES = (
    "200", "202", "207", "400", "401", "403", "413", "429", "500", "502", "503", "504",
    "timeout", "connection",
)  # fmt: skip
"""Answers created at 0 for every sink: its successes, what it refuses, what it retries."""
RETRY_REASONS = ("rate_limited", "daily_limit", "timeout", "server_error", "connection")
DLQ_REASONS = (
    "rejected", "failed_record", "retries_exhausted", "invalid_record", "too_large",
    "unmappable", "unauthorized", "forbidden",
)  # fmt: skip


def init_join_series(input_topics: tuple[str, ...]) -> None:
    """Create the join's series at 0 (every topic, outcome, kind and reason), so that
    ``rate()`` and ``increase()`` see the first burst after a start instead of a series
    appearing out of nothing with it."""
    from agents.rules import Released
    from schemas.attribution import AttributionKind

    for topic in input_topics:
        for outcome in OUTCOMES:
            EVENTS.labels(topic, outcome)
    for kind in AttributionKind:
        ATTRIBUTIONS.labels(kind.value)
    for reason in Released:
        DROPPED.labels(reason.value)


def init_sink_series(sink: str) -> None:
    """Create a sink's series at 0, so that ``increase()`` in alerts and dashboards sees the
    first request, retry or dead letter instead of a series appearing out of nothing."""
    SINK_DELIVERED.labels(sink)
    SINK_REQUEST_DURATION.labels(sink)
    SINK_DELIVERY_LATENCY.labels(sink)
    SINK_OLDEST_PENDING.labels(sink)
    for status in REQUEST_STATUSES:
        SINK_REQUESTS.labels(sink, status)
    SINK_CIRCUIT_OPEN.labels(sink).set(0)
    for reason in RETRY_REASONS:
        SINK_RETRIES.labels(sink, reason)
    for reason in DLQ_REASONS:
        SINK_DLQ.labels(sink, reason)

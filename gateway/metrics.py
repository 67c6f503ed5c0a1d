"""The gateway's Prometheus families (gateway.md §9). Labels: source, outcome, topic and
reason codes only; never personal data or vendor ids."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = [
    "DLQ", "DLQ_REASONS", "DURATION", "OUTCOMES", "PUBLISHED", "REGISTRY", "REQUESTS",
    "init_series",
]  # fmt: skip

REGISTRY = CollectorRegistry()
"""The gateway process's own registry: its /metrics shows the gateway families only."""

OUTCOMES = (
    "published", "ignored", "dead_lettered", "invalid", "unauthorized", "too_large",
    "unavailable", "not_found",
)  # fmt: skip
DLQ_REASONS = (
    "invalid_json", "invalid_field", "missing_field", "missing_header", "mixed_currency",
    "schema_invalid", "empty_batch", "too_many_events",
)  # fmt: skip
"""Why an authentic body is dead-lettered (``Unmappable.reason``)."""
REQUESTS = Counter(
    "refstream_gateway_requests", "Webhook requests by source and outcome",
    ["source", "outcome"], registry=REGISTRY,
)  # fmt: skip
DURATION = Histogram(
    "refstream_gateway_request_duration_seconds", "Request read to response written",
    ["source"], registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)  # fmt: skip
PUBLISHED = Counter(
    "refstream_gateway_events_published", "Canonical events acknowledged by the broker",
    ["source", "topic"], registry=REGISTRY,
)  # fmt: skip
DLQ = Counter(
    "refstream_gateway_dlq", "Requests written to refstream-dlq-gateway",
    ["source", "reason"], registry=REGISTRY,
)  # fmt: skip


def init_series(sources: list[str], topics: list[str]) -> None:
    """Create every source's series at 0 (requests, published events per input topic, dead
    letters per reason), so that ``increase()`` in alerts and panels sees the first 503,
    401 or event instead of a series appearing out of nothing."""
    for source in sources:
        DURATION.labels(source)
        for outcome in OUTCOMES:
            REQUESTS.labels(source, outcome)
        for topic in topics:
            PUBLISHED.labels(source, topic)
        for reason in DLQ_REASONS:
            DLQ.labels(source, reason)

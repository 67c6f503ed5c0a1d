"""The gateway's Prometheus families (gateway.md §9). Labels: source, outcome, topic and
reason codes only; never personal data or vendor ids."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = ["DLQ", "DURATION", "OUTCOMES", "PUBLISHED", "REGISTRY", "REQUESTS", "init_series"]

REGISTRY = CollectorRegistry()
"""The gateway process's own registry: its /metrics shows the gateway families only."""

OUTCOMES = (
    "published", "ignored", "dead_lettered", "invalid", "unauthorized", "too_large",
    "unavailable", "not_found",
)  # fmt: skip
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


def init_series(sources: list[str]) -> None:
    """Create every source's request series at 0, so that ``increase()`` in alerts sees the
    first 503 or 401 instead of a series appearing out of nothing."""
    for source in sources:
        DURATION.labels(source)
        for outcome in OUTCOMES:
            REQUESTS.labels(source, outcome)

"""Every series a dashboard or alert uses exists at 0 before its first increment."""

import itertools
import re
from pathlib import Path

from prometheus_client import REGISTRY

from agents.rules import Released
from schemas.attribution import AttributionKind
from streams.metrics import (
    OUTCOMES,
    REQUEST_STATUSES,
    RETRY_REASONS,
    init_join_series,
    init_sink_series,
)

ROOT = Path(__file__).parents[2]


def value(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def test_join_series_exist_at_zero_for_every_topic_outcome_kind_and_reason():
    init_join_series(("refs-m", "signups-m", "orders-m"))
    for topic in ("refs-m", "signups-m", "orders-m"):
        for outcome in OUTCOMES:
            assert value("refstream_events_total", topic=topic, outcome=outcome) is not None
    for kind in AttributionKind:
        assert value("refstream_attributions_total", kind=kind.value) is not None
    for reason in Released:
        assert value("refstream_events_released_total", reason=reason.value) is not None
    assert value("refstream_producer_send_retries_total") is not None
    assert value("refstream_rebalances_total") is not None


def test_sink_series_exist_at_zero():
    init_sink_series("metrics-test")
    sink = {"sink": "metrics-test"}
    assert value("refstream_sink_delivered_total", **sink) == 0
    assert value("refstream_sink_delivery_latency_seconds_count", **sink) == 0
    assert value("refstream_sink_request_duration_seconds_count", **sink) == 0
    for status in REQUEST_STATUSES:
        assert value("refstream_sink_requests_total", status=status, **sink) == 0
    for reason in RETRY_REASONS:
        assert value("refstream_sink_retries_total", reason=reason, **sink) == 0


def test_the_rules_release_only_with_reasons_created_up_front():
    """A reason given as a bare string would appear from nothing: every release in the
    rules names a member of ``Released``, whose series ``init_join_series`` creates."""
    source = (ROOT / "agents" / "rules.py").read_text()
    releases = re.findall(r"dropped\.append\(([\w.]+)\)", source)
    assert releases
    assert all(r.startswith("Released.") or r == "reason" for r in releases), releases


def test_delivery_latency_buckets_resolve_one_to_five_minutes():
    """Outages of 60 to 300 s must not read as ~295 s p99 (one bucket from 60 to 300 s)."""
    from streams.metrics import SINK_DELIVERY_LATENCY

    bounds = [b for b in SINK_DELIVERY_LATENCY._upper_bounds if 60 <= b <= 300]
    assert len(bounds) >= 5 and max(b - a for a, b in itertools.pairwise(bounds)) <= 60

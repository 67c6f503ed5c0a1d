"""The join's metric series exist from start-up (an alert's ``increase()`` then sees the
first event instead of a series appearing out of nothing)."""

from __future__ import annotations

from prometheus_client import REGISTRY

import streams.monitor  # noqa: F401  (the worker imports it at start-up; it creates them)
from agents.rules import Released


def test_every_release_reason_is_a_series_from_start_up():
    for reason in Released:
        value = REGISTRY.get_sample_value("refstream_events_released_total", {"reason": reason})
        assert value is not None, reason
    assert "signup_not_referred" in {reason.value for reason in Released}

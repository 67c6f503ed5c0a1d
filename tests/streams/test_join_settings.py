"""The join's tunables (contract section 2, gateway.md section 11): read from the
environment into :class:`agents.rules.JoinRules`, refused with the variable named."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sinks.errors import ConfigurationError
from streams.settings import load_settings


def test_defaults_are_the_contract(monkeypatch):
    for name in ("ATTRIBUTION_CLOCK_SKEW_SECONDS", "REFSTREAM_DEDUP_TTL_HOURS"):
        monkeypatch.delenv(name, raising=False)
    rules = load_settings().join_rules
    assert rules.clock_skew == timedelta(seconds=300)
    assert rules.dedup_ttl == 72 * 3600


def test_skew_and_dedup_ttl_reach_the_rules(monkeypatch):
    monkeypatch.setenv("ATTRIBUTION_CLOCK_SKEW_SECONDS", "0")
    monkeypatch.setenv("REFSTREAM_DEDUP_TTL_HOURS", "1.5")
    rules = load_settings().join_rules
    assert (rules.clock_skew, rules.dedup_ttl) == (timedelta(0), 5400)


@pytest.mark.parametrize(
    ("name", "value"),
    [("ATTRIBUTION_CLOCK_SKEW_SECONDS", "-1"), ("REFSTREAM_DEDUP_TTL_HOURS", "0"),
     ("REFSTREAM_DEDUP_TTL_HOURS", "three days")],
)  # fmt: skip
def test_a_bad_value_is_refused_naming_the_variable(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=f"^{name}: "):
        load_settings()


def test_every_join_stage_applies_the_workers_rules():
    from agents.join import STAGES
    from agents.rules import Stage
    from streams.app import settings

    assert set(STAGES) == set(Stage)
    assert all(stage.rules == settings.join_rules for stage in STAGES.values())

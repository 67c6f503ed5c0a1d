"""The aiokafka log-flood guard."""

from __future__ import annotations

import logging

import pytest

from streams.logs import RepeatFilter, quiet_aiokafka


def test_a_repeated_template_passes_once_a_period_and_counts_the_rest(monkeypatch):
    now = [100.0]
    monkeypatch.setattr("streams.logs.time.monotonic", lambda: now[0])
    repeat = RepeatFilter(period=10)

    def record(msg: str, *args) -> logging.LogRecord:
        return logging.LogRecord("aiokafka.client", logging.ERROR, "f", 1, msg, args, None)

    first = record("Unable connect to node with id %s: %s", 1, "refused")
    assert repeat.filter(first)
    held = [
        repeat.filter(record("Unable connect to node with id %s: %s", 1, n)) for n in range(500)
    ]
    assert not any(held)
    assert repeat.filter(record("Unable to update metadata from %r", [1]))  # another template
    now[0] += 10
    later = record("Unable connect to node with id %s: %s", 1, "refused")
    assert repeat.filter(later)
    assert later.getMessage() == (
        "Unable connect to node with id 1: refused [500 more like this in the last 10 s]"
    )


def test_every_aiokafka_logger_gets_the_filter_and_floods_stop(caplog: pytest.LogCaptureFixture):
    """The two loggers of the flood: the client's (``aiokafka``) and a consumer's group
    coordinator (a child logger, which its parent's filters do not cover)."""
    import aiokafka.client
    import aiokafka.consumer.group_coordinator as coordinator

    quiet_aiokafka()
    quiet_aiokafka()  # idempotent
    for logger in (aiokafka.client.log, coordinator.log):
        assert sum(isinstance(f, RepeatFilter) for f in logger.filters) == 1, logger.name
    with caplog.at_level(logging.ERROR, logger="aiokafka"):
        for _ in range(1000):
            aiokafka.client.log.error("Unable connect to node with id %s: %s", 1, "refused")
            coordinator.log.error("Group Coordinator Request failed: %s", "NodeNotReady")
    assert len(caplog.records) == 2

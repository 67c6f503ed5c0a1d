import time

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from streams.lag import STALE_AFTER_INTERVALS, BrokerLag, consumer_groups, partition_lag
from streams.settings import Settings


def scrape(registry: CollectorRegistry) -> dict[tuple, float]:
    text = generate_latest(registry).decode()
    return {
        (s.labels["group"], s.labels["topic"], s.labels["partition"]): s.value
        for family in text_string_to_metric_families(text)
        if family.name == "refstream_consumer_lag"
        for s in family.samples
    }


def test_lag_counts_from_the_committed_offset_or_the_first_one_in_the_log():
    assert partition_lag(end=100, start=0, committed=40) == 60
    assert partition_lag(end=100, start=0, committed=None) == 100  # nothing committed: all
    assert partition_lag(end=100, start=90, committed=40) == 10  # retention deleted 40..89
    assert partition_lag(end=100, start=90, committed=None) == 10
    assert partition_lag(end=100, start=0, committed=100) == 0
    assert partition_lag(end=0, start=0, committed=None) == 0


def test_every_group_of_the_app_with_the_topics_it_reads(monkeypatch):
    monkeypatch.setenv("REFSTREAM_SINKS", "crm,analytics")
    monkeypatch.setenv("REFSTREAM_APP_ID", "rs")
    groups = consumer_groups(Settings())
    assert groups == {
        "rs": ("refstream-join-by-referral", "refstream-join-by-customer",
               "refstream-join-by-email", "refstream-join-by-advocate"),
        "rs-ingest": ("referrals", "signups", "orders"),
        "rs-sink-crm": ("attributions", "refstream-advocate-totals"),
        "rs-sink-analytics": ("attributions",),
    }  # fmt: skip


def test_served_while_fresh_and_dropped_when_stale():
    registry = CollectorRegistry()
    lag = BrokerLag("localhost:1", {"g": ("t",)}, interval=1.0).install(registry)
    assert scrape(registry) == {}  # never refreshed: no guess
    lag.lags = {("g", "t", 0): 5, ("g", "t", 1): 0}
    lag.refreshed_at = time.monotonic()
    assert scrape(registry) == {("g", "t", "0"): 5, ("g", "t", "1"): 0}
    lag.refreshed_at = time.monotonic() - STALE_AFTER_INTERVALS - 0.1
    assert scrape(registry) == {}  # no frozen number while the broker is not answering

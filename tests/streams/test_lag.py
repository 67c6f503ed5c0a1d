from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from streams.lag import ConsumerLag, Offsets


def scrape(registry: CollectorRegistry) -> dict[tuple, float]:
    text = generate_latest(registry).decode()
    return {
        (s.labels["group"], s.labels["topic"], s.labels["partition"]): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_lag_is_end_minus_committed_for_owned_partitions_only():
    registry = CollectorRegistry()
    lag = ConsumerLag().install(registry)
    owned = {("orders", 0): Offsets(committed=40, end=100), ("orders", 1): Offsets(None, 7)}
    lag.register("refstream", lambda: owned)
    lag.register("refstream-sink-crm", lambda: {("attributions", 2): Offsets(5, None)})

    assert scrape(registry) == {
        ("refstream", "orders", "0"): 60,
        ("refstream", "orders", "1"): 7,  # nothing committed yet: all of it
    }  # no end offset fetched yet: no sample rather than a guess

    del owned[("orders", 0)]  # revoked: the series goes away
    owned[("orders", 1)] = Offsets(7, 7)
    assert scrape(registry) == {("refstream", "orders", "1"): 0}


def test_a_failing_source_does_not_break_the_scrape():
    registry = CollectorRegistry()
    lag = ConsumerLag().install(registry)

    def broken():
        raise RuntimeError("consumer restarting")

    lag.register("a", broken)
    lag.register("b", lambda: {("t", 0): Offsets(1, 3)})
    assert scrape(registry) == {("b", "t", "0"): 2}

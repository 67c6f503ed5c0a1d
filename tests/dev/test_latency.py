import math

from dev.latency import delivery_latencies, percentile


def test_percentile_is_nearest_rank():
    values = list(range(1, 101))
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile([3.0], 99) == 3.0
    assert math.isnan(percentile([], 50))


def test_delivery_latency_takes_the_first_acceptance_after_emission():
    log = [("a", 10.5), ("c@x", 5.0), ("c@x", 12.0), ("a", 11.0)]
    emitted = [("a", 10.0), ("c@x", 11.0), ("never", 1.0)]
    assert delivery_latencies(emitted, log) == [0.5, 1.0]  # c@x: the upsert at 5.0 was earlier

"""The soak's figures (soak_figures.py) and expectations on made-up samples: no broker
needed."""

from __future__ import annotations

import pytest

from .soak import Expected
from .soak_figures import Disruption, episodes, pooled_slope, slope_per_hour


def test_slopes_are_per_hour_and_a_restart_is_no_slope():
    assert slope_per_hour([(0, 100), (1800, 110), (3600, 120)]) == pytest.approx(20)
    assert slope_per_hour([(0, 100), (10, 200)]) is None
    first = [(0, 300), (600, 300), (1200, 300)]
    second = [(1200, 100), (1800, 100), (2400, 100)]  # restarted lower: flat all the same
    assert pooled_slope([first, second]) == pytest.approx(0)
    assert slope_per_hour(first + second) < -200


def lag(*values: int, every: float = 5.0) -> list[tuple[float, int]]:
    return [(i * every, v) for i, v in enumerate(values)]


def test_a_kill_is_timed_from_its_end_past_the_peak_it_causes():
    kill = Disruption("kill", "a", 10, 10)
    samples = lag(300, 400, 300, 900, 5000, 3000, 800, 400, 2000, 300)
    (episode,) = episodes([kill], samples, threshold=1000)
    assert (episode.peak_lag, episode.peak_at) == (5000, 20)
    assert episode.recovered_at == 30 and episode.recovery_seconds == 20  # 40's 2000: noise


def test_a_disruption_that_never_crosses_the_threshold_recovers_at_once():
    (episode,) = episodes([Disruption("outage", "mixpanel", 5, 15)], lag(1, 2, 3, 4), 10)
    assert episode.recovery_seconds == 0


def test_a_disruption_still_disturbed_when_the_next_starts_merges_with_it():
    kill = Disruption("kill", "a", 5, 5)
    outage = Disruption("outage", "hubspot", 20, 40)
    later = Disruption("kill", "b", 80, 80)
    samples = lag(0, 0, 3000, 4000, 6000, 8000, 9000, 9500, 9000, 2000, 100, 0, 0, 0, 0, 0,
                  0, 0, 2500, 0)  # fmt: skip
    first, second = episodes([later, outage, kill], samples, threshold=1000)
    assert first.disruptions == [kill, outage] and first.end == 40
    assert first.recovered_at == 50 and first.recovery_seconds == 10
    assert second.disruptions == [later] and second.recovery_seconds == 15


def test_lag_never_back_is_no_recovery():
    (episode,) = episodes([Disruption("outage", "klaviyo", 0, 10)], lag(10, 5000, 6000), 1000)
    assert episode.recovered_at is None and episode.recovery_seconds is None


def test_chunks_add_up_per_vendor_collection_and_never_share_an_id():
    expected = Expected()
    first = {"contacts": {"a@x": {}}, "deals": {"o1": {}}, "associations": {"o1": ["a@x"]}}
    second = {"contacts": {"b@x": {}}, "deals": {}, "associations": {}}
    expected.add({"hubspot": first, "mixpanel": {"e1": {}}}, 1, 2, [])
    expected.add({"hubspot": second, "mixpanel": {"e2": {}}}, 1, 2, [])
    assert expected.vendors["hubspot"]["contacts"].keys() == {"a@x", "b@x"}
    assert expected.vendors["hubspot"]["deals"].keys() == {"o1"}
    assert expected.vendors["mixpanel"].keys() == {"e1", "e2"}
    with pytest.raises(AssertionError, match="chunks share a contacts record"):
        expected.add({"hubspot": {**second, "contacts": {"a@x": {}}}}, 1, 2, [])

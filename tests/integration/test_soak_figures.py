"""The soak's figures (soak_figures.py) and expectations on made-up samples: no broker
needed."""

from __future__ import annotations

import pytest

from .soak import Expected
from .soak_figures import Disruption, LagSample, episodes, pooled_slope, slope_per_hour


def test_slopes_are_per_hour_and_a_restart_is_no_slope():
    assert slope_per_hour([(0, 100), (1800, 110), (3600, 120)]) == pytest.approx(20)
    assert slope_per_hour([(0, 100), (10, 200)]) is None
    first = [(0, 300), (600, 300), (1200, 300)]
    second = [(1200, 100), (1800, 100), (2400, 100)]  # restarted lower: flat all the same
    assert pooled_slope([first, second]) == pytest.approx(0)
    assert slope_per_hour(first + second) < -200


TP = ("in", 0)
OUT = ("out", 0)


def broker(*points: tuple[int, int, int], every: float = 5.0) -> list[LagSample]:
    """Samples every ``every`` s of one input partition read by ``ingest`` and one output
    partition read by ``sink``: (end offset of both, ingest's committed, sink's committed)."""
    return [
        LagSample(i * every, {TP: end, OUT: end}, {"ingest": {TP: ingest}, "sink": {OUT: sink}})
        for i, (end, ingest, sink) in enumerate(points)
    ]


def test_lag_sums_what_each_group_has_not_committed():
    (sample,) = broker((100, 90, 40))
    assert sample.by_group() == {"ingest": 10, "sink": 60} and sample.total == 70


def test_a_kill_recovers_when_every_group_passed_its_backlog_at_the_successors_readiness():
    kill = Disruption("kill", "a", 10, 10, ready_after=12)  # settled at 22: the sample at 25
    samples = broker((100, 100, 100), (150, 150, 150), (200, 150, 150), (250, 150, 150),
                     (300, 200, 250), (350, 320, 290), (400, 310, 340),
                     (450, 400, 400))  # fmt: skip
    (episode,) = episodes([kill], samples)
    # the backlog: 350 in both partitions at 25, the first sample after 22
    assert episode.settled == 22
    assert episode.recovered_at == 35 and episode.recovery_seconds == 25  # 30: ingest at 310
    assert (episode.peak_lag, episode.peak_at) == (200, 15)


def test_steady_lag_after_the_backlog_is_gone_is_not_the_disruptions():
    """A threshold rule (lag under 50 after the episode's peak) times this at 25 s: the peak
    at 20 is steady noise; all the kill held up was committed by 10."""
    kill = Disruption("kill", "b", 0, 0, ready_after=4)
    samples = broker((100, 0, 0), (200, 150, 150), (300, 250, 250), (400, 390, 390),
                     (500, 400, 100), (600, 600, 600))  # fmt: skip
    (episode,) = episodes([kill], samples)
    assert episode.recovered_at == 10 and episode.recovery_seconds == 10


def test_a_group_that_never_catches_up_is_no_recovery():
    outage = Disruption("outage", "klaviyo", 0, 10)
    samples = broker((100, 100, 0), (200, 200, 50), (300, 300, 99), (400, 400, 99))
    (episode,) = episodes([outage], samples)
    assert episode.recovered_at is None and episode.recovery_seconds is None


def test_a_successor_never_ready_is_no_recovery():
    (episode,) = episodes([Disruption("kill", "a", 0, 0)], broker((0, 0, 0), (10, 10, 10)))
    assert episode.settled == float("inf") and episode.recovery_seconds is None


def test_nothing_held_up_recovers_at_the_first_sample_after_settling():
    samples = broker((1, 1, 1), (2, 2, 2), (3, 3, 3), (4, 4, 4), (5, 5, 5))
    (episode,) = episodes([Disruption("outage", "mixpanel", 5, 15)], samples)
    assert episode.recovered_at == 15 and episode.recovery_seconds == 0


def test_a_disruption_starting_before_the_backlog_is_gone_merges_with_it():
    kill = Disruption("kill", "a", 5, 5, ready_after=3)  # backlog at 10
    outage = Disruption("outage", "hubspot", 20, 40)  # backlog at 40
    later = Disruption("kill", "b", 80, 80, ready_after=3)  # backlog at 85
    samples = broker((10, 10, 10), (20, 10, 10), (30, 12, 12), (40, 15, 15), (50, 50, 20),
                     (60, 60, 30), (70, 70, 40), (80, 80, 50), (90, 90, 60), (100, 100, 95),
                     (110, 110, 100), (120, 120, 120), (130, 130, 130), (140, 140, 140),
                     (150, 150, 150), (160, 160, 160), (170, 170, 170), (180, 165, 170),
                     (190, 190, 190), (200, 200, 200))  # fmt: skip
    first, second = episodes([later, outage, kill], samples)
    assert first.disruptions == [kill, outage] and first.end == 40 and first.settled == 40
    assert first.waits == [15]  # the kill's backlog was still there when the outage began
    assert first.recovered_at == 45 and first.recovery_seconds == 5  # 90 in both at 40
    assert second.disruptions == [later] and second.recovered_at == 90
    assert second.recovery_seconds == 10 and second.waits == []


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

"""The stuck-delivery watchdog: the age of a sink's delivery in progress, and when it is
stuck (old, while the vendor answers)."""

from __future__ import annotations

from prometheus_client import REGISTRY

from sinks.delivery.watch import DeliveryWatch, stuck_sinks


def gauge(sink: str) -> float | None:
    return REGISTRY.get_sample_value("refstream_sink_oldest_pending_seconds", {"sink": sink})


def test_a_delivery_is_timed_from_its_start_and_stuck_only_while_the_vendor_answers():
    now, answers = [1000.0], [True]
    watch = DeliveryWatch("watch-a", lambda: answers[0], clock=lambda: now[0])
    assert gauge("watch-a") == 0.0 and not watch.stuck(300)
    watch.started()
    now[0] += 200
    watch.started()  # a later record of the same delivery does not restart the clock
    now[0] += 150
    assert gauge("watch-a") == 350.0
    assert watch.stuck(300)
    assert "watch-a" in stuck_sinks(300)
    answers[0] = False  # circuit open: an outage, which the circuit's alert covers
    assert not watch.stuck(300)
    answers[0] = True
    watch.finished()
    assert gauge("watch-a") == 0.0
    assert not watch.stuck(300) and "watch-a" not in stuck_sinks(300)

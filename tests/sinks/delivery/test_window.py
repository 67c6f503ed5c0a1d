import asyncio
import itertools
import time
from types import SimpleNamespace

import pytest

from sinks.delivery.window import BURST_SECONDS, SlidingWindowLimiter


async def send_times(limiter: SlidingWindowLimiter, count: int) -> list[float]:
    """When each of ``count`` instant requests let through at once was sent, in order."""
    sent: list[float] = []

    async def request() -> None:
        async with limiter:
            sent.append(time.monotonic())

    await asyncio.gather(*(request() for _ in range(count)))
    return sorted(sent)


async def test_a_request_holds_its_place_until_a_period_after_its_answer():
    limiter = SlidingWindowLimiter([(5, 0.2)])
    spans: list[tuple[float, float]] = []

    async def request(latency: float) -> None:
        async with limiter:
            sent = time.monotonic()
            await asyncio.sleep(latency)
            spans.append((sent, time.monotonic()))

    began = time.monotonic()
    await asyncio.gather(*(request(0.05 if n % 3 else 0.0) for n in range(16)))
    elapsed = time.monotonic() - began

    assert len(spans) == 16
    # Whenever a request is sent, fewer than 5 others were sent and not answered a full
    # period before: the vendor, counting arrivals, never sees 6 in one window.
    for sent, _ in spans:
        busy = [s for s, answered in spans if s < sent and answered > sent - 0.2]
        assert len(busy) < 5
    assert elapsed < 4 * (0.2 + 0.05) + 0.15, "and it uses the allowance it has"


async def test_every_limit_holds_at_once_a_burst_and_a_steady_one():
    # Klaviyo's shape: a short burst window inside a longer steady one.
    limiter = SlidingWindowLimiter([(4, 0.1), (6, 0.5)])

    began = time.monotonic()
    sent = await send_times(limiter, 9)

    for at in sent:
        assert len([s for s in sent if at - 0.1 < s <= at]) <= 4
        assert len([s for s in sent if at - 0.5 < s <= at]) <= 6
    # half the burst window goes at once, then requests are paced; the seventh waits for
    # the first answers to leave the steady window, 0.5 s on
    assert sent[1] - began < 0.02
    assert all(b - a >= 0.02 for a, b in itertools.pairwise(sent[1:]))
    assert sent[6] - began >= 0.5


async def test_a_stream_above_the_average_rate_is_paced_not_held_for_a_period():
    """Past half of the allowance the rest is spread until the oldest place frees, so a
    caller that keeps asking never waits out most of a period (without: 10 at once, then
    1 s of nothing, and again)."""
    limiter = SlidingWindowLimiter([(10, 1.0)])

    began = time.monotonic()
    sent = await send_times(limiter, 25)

    for at in sent:
        assert len([s for s in sent if at - 1.0 < s <= at]) <= 10
    assert len([s for s in sent if s - began < 0.02]) == 5, "the first half at once"
    assert all(b - a >= 0.15 for a, b in itertools.pairwise(sent[4:10])), "the rest spread"
    assert max(b - a for a, b in itertools.pairwise(sent)) < 0.4


async def test_a_steady_stream_is_spaced_evenly_once_its_first_burst_has_left():
    """The answers of a first burst leave the window together; spacing by the oldest alone
    then let the next period burst again (5 at once, then 0.2 s apart, every second)."""
    limiter = SlidingWindowLimiter([(10, 1.0)])

    sent = await send_times(limiter, 30)

    gaps = [b - a for a, b in itertools.pairwise(sent[12:])]
    assert min(gaps) > 0.06 and max(gaps) < 0.16, gaps


async def test_a_long_window_lets_only_some_seconds_of_its_average_rate_go_at_once():
    """Klaviyo's 150 bulk jobs a minute: a stream above that rate for long is paced from
    the 25th, not the 75th, so the rest are not spread thin over the rest of the minute."""
    limiter = SlidingWindowLimiter([(120, 60.0)])

    began = time.monotonic()
    sent = await send_times(limiter, 22)

    assert len([s for s in sent if s - began < 0.05]) == 120 * BURST_SECONDS / 60
    assert 0.4 < sent[20] - began < 0.8  # the rest over the minute: ~0.6 s apart


async def test_a_share_of_the_limits_is_all_a_worker_sends():
    limiter = SlidingWindowLimiter([(8, 0.3), (3, 0.05)])
    limiter.share(0.5)  # 4 per 0.3 s, 1 per 0.05 s

    began = time.monotonic()
    sent = await send_times(limiter, 5)

    assert len([s for s in sent if s - began < 0.3]) == 4
    assert all(b - a >= 0.045 for a, b in itertools.pairwise(sent)), "1 per 0.05 s"
    assert sent[4] - began >= 0.3

    limiter.share(1.0)  # the whole limit again, e.g. once the other worker has gone
    await asyncio.sleep(0.35)
    burst = await send_times(limiter, 3)
    assert max(burst) - min(burst) < 0.08, "3 in one window (a share of 0.5: 0.1 s or more)"


async def test_a_share_is_a_fraction_and_leaves_one_request_a_window():
    limiter = SlidingWindowLimiter([(10, 0.2)])
    for bad in (0, -0.5, 1.5):
        with pytest.raises(ValueError):
            limiter.share(bad)
    limiter.share(0.01)  # 0.1 request: one
    sent = await send_times(limiter, 2)
    assert sent[1] - sent[0] >= 0.19


def test_a_limit_needs_requests_and_a_period():
    with pytest.raises(ValueError):
        SlidingWindowLimiter([])
    with pytest.raises(ValueError):
        SlidingWindowLimiter([(0, 1.0)])


async def test_a_call_of_several_requests_takes_that_many_places():
    """HubSpot's deals write makes three requests: it spends three places, so two such
    writes never fit a window of five together, and one larger than the window still goes
    (alone) rather than waiting forever."""
    limiter = SlidingWindowLimiter([(5, 0.3)])
    spans: list[tuple[float, float]] = []

    async def call(places: int) -> None:
        async with limiter.places(places):
            spans.append((time.monotonic(), places))

    await asyncio.gather(call(3), call(3))
    (first, _), (second, _) = sorted(spans)
    assert second - first >= 0.28  # the second waited for the first's places to leave
    spans.clear()
    began = time.monotonic()
    await asyncio.wait_for(call(8), 2.0)  # more than the window: waits for an empty one
    assert time.monotonic() - began >= 0.25


async def test_delay_says_how_long_the_next_request_would_wait():
    """What the sink consumer goes on collecting for: the wait ``acquire`` would have."""
    limiter = SlidingWindowLimiter([(1, 5.0)])
    assert limiter.delay() == 0.0
    began = time.monotonic()
    await send_times(limiter, 1)
    # the window is full until the answer leaves it, 5 s after it was sent
    assert abs(limiter.delay() - (began + 5.0 - time.monotonic())) < 0.1
    waiting = asyncio.create_task(limiter.acquire(1))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    # a request waiting for its place holds none: the next one's wait is still the same
    assert abs(limiter.delay() - (began + 5.0 - time.monotonic())) < 0.1
    waiting.cancel()


async def test_a_full_window_never_lets_a_request_through_at_its_boundary(monkeypatch):
    """At the instant the oldest answer leaves the window, ``now - period`` and ``answered
    + period`` round differently: the answer was kept as in the window while the wait for
    it to leave read 0.0, so every request asking at that instant went (15 in a window of
    10 on a clock standing still)."""
    import sinks.delivery.window as window

    now = 1.2
    monkeypatch.setattr(window, "time", SimpleNamespace(monotonic=lambda: now))
    limiter = SlidingWindowLimiter([(10, 1.0)])
    limiter._windows[0].answered.extend([0.2] * 10)
    assert 0.2 + 1.0 - now == 0.0 and now - 1.0 < 0.2  # the boundary in question

    waiting = [asyncio.create_task(limiter.acquire(1)) for _ in range(15)]
    await asyncio.sleep(0.05)
    went = sum(task.done() for task in waiting)
    for task in waiting:
        task.cancel()
    assert went == 10  # the ten old answers have left; ten new requests fill the window

"""Rate limits as the vendors count them: at most ``requests`` in any ``seconds`` window,
for each of a vendor's limits at once (Klaviyo has a burst and a steady one).

The vendor counts a request when it arrives, somewhere between our sending it and its
answer. So a request holds its place in each window from the moment it is sent until
that window's period after its answer: however slow the network or the vendor's queue, no
window of the vendor's can see more than its limit of ours. (A token bucket, aiolimiter's,
bursts a full bucket at once and overruns a sliding window; with a bucket of one it loses
part of the allowance to every wake-up.)

A window's first part absorbs a burst at once: half its allowance, or ``BURST_SECONDS`` of
its average rate if less (a stream above the average for longer is no burst: Klaviyo's 150
bulk jobs a minute spent 75 at once left 0.7 s between the rest, signup → Klaviyo p99 1.05 s
at 1,000 events/s). Past that, requests are spaced evenly, as far apart as the places the
window will free allow (:meth:`_Window.pace`): the caller's next batch is larger instead of
the allowance going in a burst followed by a wait of most of a period (at 1,000 events/s
Klaviyo's jobs went in 45 s, then nothing for 15 s: p99 27 s). Looking at every answer in
the window, not only the oldest, makes a steady stream's spacing even: a burst's answers
leaving the window together would otherwise let the next period repeat the burst.

A vendor's limit is per account, not per worker: workers that split a sink's partitions
split the allowance in the same shares (:meth:`SlidingWindowLimiter.share`), so together
they stay within it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence

__all__ = ["BURST_SECONDS", "SlidingWindowLimiter"]

BURST_SECONDS = 10.0
"""Of a longer window's average rate, what may go at once before requests are paced."""
PACE_SAMPLES = 32


class _Window:
    __slots__ = ("answered", "last_sent", "limit", "period", "quota")

    def __init__(self, limit: int, period: float) -> None:
        if limit < 1 or period <= 0:
            raise ValueError("a rate limit needs requests >= 1 and seconds > 0")
        self.limit = limit
        self.quota = limit  # this worker's part of the limit
        self.period = period
        self.answered: deque[float] = deque()  # answer times within the last period
        self.last_sent = float("-inf")

    def wait(self, now: float, sending: int, places: int = 1) -> float | None:
        """Seconds until ``places`` more requests may go within this worker's part of the
        limit: 0 now, None once a request in flight is answered. A call of more places
        than the whole part waits for an empty window (the deliverer splits a batch that
        would need one; a single record or a sink's one-time setup can still); past the
        burst, calls are paced."""
        while self.answered and self.answered[0] + self.period <= now:
            self.answered.popleft()  # the same sum as the wait below: never a wait of 0.0
        used = sending + len(self.answered)
        places = min(places, self.quota)
        if used + places > self.quota:
            return self.answered[0] + self.period - now if self.answered else None
        if used >= self.quota * min(0.5, BURST_SECONDS / self.period) and self.answered:
            gap = self.pace(now, self.quota - used) * places
            return max(0.0, self.last_sent + gap - now)
        return 0.0

    def pace(self, now: float, free: int) -> float:
        """The least even spacing from now on that never waits for a place: request
        ``free + k`` from now needs the ``k``-th oldest answer to have left the window.
        A sample of the answers is enough (the limit itself is kept by ``wait``'s count):
        a full window of Klaviyo's 3,500 a minute took 0.3 ms a request."""
        answered, period = self.answered, self.period
        last = len(answered) - 1
        picks = {0, last, *range(0, last, max(1, last // PACE_SAMPLES))}
        return max((answered[i] + period - now) / (free + 1 + i) for i in picks)


class SlidingWindowLimiter:
    """``limits``: ``(requests, seconds)`` pairs, every one of which holds."""

    def __init__(self, limits: Sequence[tuple[int, float]]) -> None:
        if not limits:
            raise ValueError("at least one rate limit")
        self._windows = [_Window(limit, period) for limit, period in limits]
        self._sending = 0
        self._changed = asyncio.Condition()

    def share(self, fraction: float) -> None:
        """Allow ``fraction`` (0 < fraction <= 1) of every limit, rounded down, at least
        one request per window. A larger share is used from the next request on."""
        if not 0 < fraction <= 1:
            raise ValueError(f"a share of a rate limit is in (0, 1], not {fraction}")
        for window in self._windows:
            window.quota = max(1, int(window.limit * fraction))

    @property
    def capacity(self) -> int:
        """The most places one call may hold within this worker's share of every limit."""
        return min(window.quota for window in self._windows)

    def delay(self) -> float:
        """Seconds until one more request could go, as far as is known now (0: at once;
        a window waiting only on answers in flight counts 0 too)."""
        now = time.monotonic()
        return max(window.wait(now, self._sending) or 0.0 for window in self._windows)

    async def __aenter__(self) -> None:
        await self.acquire(1)

    async def __aexit__(self, *exc_info: object) -> None:
        await self.release(1)

    @contextlib.asynccontextmanager
    async def places(self, count: int) -> AsyncIterator[None]:
        """Hold ``count`` places at once: one call of the sink that makes ``count`` vendor
        requests (HubSpot counts requests per app, whichever endpoint they hit)."""
        await self.acquire(count)
        try:
            yield
        finally:
            await self.release(count)

    async def acquire(self, count: int) -> None:
        async with self._changed:
            while True:
                now = time.monotonic()
                waits = [w.wait(now, self._sending, count) for w in self._windows]
                if all(wait == 0.0 for wait in waits):
                    self._sending += count
                    for window in self._windows:
                        window.last_sent = now
                    return
                # A full window frees when its oldest answer leaves it, or (nothing answered
                # yet) when a request in flight is answered: __aexit__ notifies.
                known = [wait for wait in waits if wait]
                timeout = min(known) if known else None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), timeout)

    async def release(self, count: int) -> None:
        async with self._changed:
            self._sending -= count
            answered = time.monotonic()
            for window in self._windows:
                window.answered.extend([answered] * count)
            self._changed.notify_all()

"""Rate limit as the vendors count it: at most ``limit`` requests in any ``period`` seconds.

The vendor counts a request when it arrives, somewhere between our sending it and its
answer. So a request holds its place in the window from the moment it is sent until
``period`` after its answer: however slow the network or the vendor's queue, no window
of the vendor's can see more than ``limit`` of ours. (A token bucket, aiolimiter's, bursts a
full bucket at once and overruns a sliding window; with a bucket of one it loses part of
the allowance to every wake-up.)
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque

__all__ = ["SlidingWindowLimiter"]


class SlidingWindowLimiter:
    def __init__(self, limit: int, period: float) -> None:
        if limit < 1 or period <= 0:
            raise ValueError("limit must be >= 1 and period > 0")
        self.limit = limit
        self.period = period
        self._sending = 0
        self._answered: deque[float] = deque()  # answer times within the last period
        self._changed = asyncio.Condition()

    async def __aenter__(self) -> None:
        async with self._changed:
            while True:
                now = time.monotonic()
                while self._answered and self._answered[0] <= now - self.period:
                    self._answered.popleft()
                if self._sending + len(self._answered) < self.limit:
                    self._sending += 1
                    return
                wait = self._answered[0] + self.period - now if self._answered else None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), wait)

    async def __aexit__(self, *exc_info: object) -> None:
        async with self._changed:
            self._sending -= 1
            self._answered.append(time.monotonic())
            self._changed.notify()

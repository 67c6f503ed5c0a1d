"""Circuit breaker: stop calling a vendor that keeps failing, probe it, resume by itself.

While open, callers wait in :meth:`CircuitBreaker.wait_closed` instead of calling — the sink
stops consuming (back-pressure) and nothing is dead-lettered because a vendor is down. The
same gate holds a vendor's request to slow down (429 ``Retry-After``) for every caller.
"""

from __future__ import annotations

import asyncio
import time
from enum import StrEnum

from streams.metrics import SINK_CIRCUIT_OPEN

__all__ = ["CircuitBreaker"]


class State(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    def __init__(self, sink: str, failures: int, reset_after: float, max_reset: float = 30.0):
        self.sink = sink
        self.threshold = failures
        self.base_reset = reset_after
        self.max_reset = max_reset
        self.state = State.CLOSED
        self._failures = 0
        self._reset = reset_after
        self._opened_at = 0.0
        self._probing = False
        self._paused_until = 0.0
        SINK_CIRCUIT_OPEN.labels(sink).set(0)

    @property
    def is_open(self) -> bool:
        return self.state is not State.CLOSED

    async def wait_closed(self) -> bool:
        """Return once a call may go out: True when this caller is the half-open circuit's
        one probe, which must then end with :meth:`end_probe` whatever becomes of it."""
        await self.wait_unpaused()
        while True:
            if self.state is State.CLOSED:
                break
            if self.state is State.OPEN and time.monotonic() - self._opened_at >= self._reset:
                self.state = State.HALF_OPEN
            if self.state is State.HALF_OPEN and not self._probing:
                self._probing = True  # this caller is the probe
                return True
            await asyncio.sleep(0.05)
        return False

    async def wait_unpaused(self) -> None:
        """Return once no pause the vendor asked for (429) is running."""
        while (pause := self._paused_until - time.monotonic()) > 0:
            await asyncio.sleep(pause)

    def end_probe(self) -> None:
        """The probe's call is over. Its answer (success, failure, pause) already decided the
        state; a probe that raised something else or was cancelled (a rebalance stops a
        delivery) decided nothing, and the next caller probes instead of all waiting."""
        self._probing = False

    def pause(self, seconds: float) -> None:
        """The vendor asked every caller to wait (rate limited): not a failure."""
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)
        if self._probing:
            self._probing = False  # a throttled probe proves nothing; probe again later

    def success(self) -> None:
        self._failures = 0
        self._probing = False
        self._reset = self.base_reset
        if self.state is not State.CLOSED:
            self.state = State.CLOSED
            SINK_CIRCUIT_OPEN.labels(self.sink).set(0)

    def failure(self) -> None:
        self._failures += 1
        if self.state is State.HALF_OPEN:
            self._probing = False
            self._reset = min(self._reset * 2, self.max_reset)
            self._open()
        elif self.state is State.CLOSED and self._failures >= self.threshold:
            self._open()

    def _open(self) -> None:
        self.state = State.OPEN
        self._opened_at = time.monotonic()
        SINK_CIRCUIT_OPEN.labels(self.sink).set(1)

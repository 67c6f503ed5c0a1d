"""A watchdog for stuck delivery: however the next bug looks, an SRE must see it.

A sink delivers what one poll fetched before it fetches again, so its oldest undelivered
record is the oldest of the delivery in progress. :class:`DeliveryWatch` times that delivery;
``refstream_sink_oldest_pending_seconds{sink}`` shows it, and a sink is *stuck* when it is
older than the threshold while the vendor answers (its circuit closed: an outage is the
circuit's alert, not this one). ``/readyz`` names the stuck sinks.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from streams.metrics import SINK_OLDEST_PENDING

__all__ = ["DeliveryWatch", "stuck_sinks"]

WATCHES: dict[str, DeliveryWatch] = {}
"""The watches of this process's sinks, by sink name."""


def stuck_sinks(threshold: float) -> list[str]:
    return sorted(name for name, watch in WATCHES.items() if watch.stuck(threshold))


class DeliveryWatch:
    def __init__(
        self, sink: str, vendor_answers: Callable[[], bool],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self.sink = sink
        self._vendor_answers = vendor_answers
        self._clock = clock
        self._since: float | None = None
        SINK_OLDEST_PENDING.labels(sink).set_function(self.oldest_pending)
        WATCHES[sink] = self

    def started(self) -> None:
        """Records were handed to the deliverer."""
        if self._since is None:
            self._since = self._clock()

    def finished(self) -> None:
        """Every record of the delivery is delivered or dead-lettered."""
        self._since = None

    def oldest_pending(self) -> float:
        return 0.0 if self._since is None else self._clock() - self._since

    def stuck(self, threshold: float) -> bool:
        return self.oldest_pending() > threshold and self._vendor_answers()

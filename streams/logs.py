"""Keep aiokafka's connection errors from flooding the log while a broker is away.

Every failed connect in aiokafka logs an error and forces a metadata refresh, and each
client's routines retry every 100 ms (``retry_backoff_ms``): with the broker stopped, one
busy worker (ten clients) wrote about 3,300 lines a second, 247,000 in a 36 s outage
(tests/integration/test_broker_restart.py). :class:`RepeatFilter` lets each message
*template* of a logger through at most once per period and says how many like it it held
back, so the first error and the state of things stay visible, at a bounded volume.
"""

from __future__ import annotations

import logging
import time
from collections import Counter

__all__ = ["RepeatFilter", "quiet_aiokafka"]

PERIOD_SECONDS = 10.0


class RepeatFilter(logging.Filter):
    def __init__(self, period: float = PERIOD_SECONDS) -> None:
        super().__init__()
        self.period = period
        self._passed: dict[object, float] = {}
        self._held: Counter = Counter()

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, record.msg)  # the template, not its arguments
        now = time.monotonic()
        passed = self._passed.get(key)
        if passed is not None and now - passed < self.period:
            self._held[key] += 1
            return False
        self._passed[key] = now
        if held := self._held.pop(key, 0):
            record.msg = f"{record.msg} [{held} more like this in the last {self.period:.0f} s]"
        return True


def quiet_aiokafka(period: float = PERIOD_SECONDS) -> None:
    """Install one :class:`RepeatFilter` on every aiokafka logger (a logger's filters do
    not apply to its children's records, so each module's logger gets it)."""
    # the modules whose loggers count are imported, so that their loggers exist
    import aiokafka.consumer.fetcher
    import aiokafka.consumer.group_coordinator
    import aiokafka.producer.sender  # noqa: F401

    repeat = RepeatFilter(period)
    for name in list(logging.Logger.manager.loggerDict):
        if name == "aiokafka" or name.startswith("aiokafka."):
            logger = logging.getLogger(name)
            if not any(isinstance(f, RepeatFilter) for f in logger.filters):
                logger.addFilter(repeat)

"""A sink's delivery in progress, which a rebalance can stop (agents/fanout.py).

When a worker loses a sink's partitions, their new owner sends the records from the
committed offsets again. A request of the old owner's that lands after the new owner's
would put an older state back at a vendor that keeps one (HubSpot's contacts and deals),
not merely repeat an event that its dedup key absorbs. So the revoke callback stops the
delivery and returns only once none of its requests can still be sent; and records fetched
before a rebalance are not delivered after it (:attr:`FencedDelivery.epoch`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from sinks.batch import Batch

__all__ = ["FencedDelivery"]

log = logging.getLogger(__name__)


class FencedDelivery:
    def __init__(self, name: str, deliver: Callable[[Batch], Awaitable[None]]) -> None:
        self.name = name
        self._deliver = deliver
        self._task: asyncio.Task | None = None
        self.epoch = 0
        """Rebalances that revoked partitions so far: read it before fetching a batch."""

    async def run(self, batch: Batch, epoch: int) -> bool:
        """Deliver ``batch``, fetched in ``epoch``: True once delivered (or dead-lettered),
        False if a rebalance came since it was fetched or stopped the delivery; the
        delivery's own errors are raised."""
        if epoch != self.epoch:
            return False
        task = self._task = asyncio.ensure_future(self._deliver(batch))
        try:
            await asyncio.wait({task})
        finally:
            if not task.done():  # the caller itself is being cancelled (shutdown): the
                task.cancel()  # delivery ends before the consumer leaves its group
                await asyncio.wait({task})
        if task.cancelled():
            return False
        task.result()
        return True

    async def stop(self) -> None:
        """Partitions are revoked: cancel the delivery in progress, if any, and wait until
        it has stopped (a write already sent ends first: ``Deliverer._write``); batches
        fetched before now are not delivered."""
        self.epoch += 1
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task})
            log.info("sink delivery stopped by a rebalance sink=%s", self.name)

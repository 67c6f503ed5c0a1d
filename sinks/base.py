"""The extension point: a sink is one class that turns a batch into vendor requests."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

import aiohttp

from sinks.batch import Batch, Item
from sinks.delivery.policy import DeliveryPolicy
from sinks.errors import PermanentError

__all__ = ["Sink", "WriteResult"]


@dataclass(slots=True)
class WriteResult:
    """What a vendor accepted. Items missing from ``rejected`` count as delivered."""

    status: int = 200
    rejected: list[tuple[Item, PermanentError]] = field(default_factory=list)


class Sink(abc.ABC):
    """A vendor destination. Subclasses map records to requests and classify answers;
    batching, retries, limits, the circuit breaker, the DLQ and metrics come from
    :class:`sinks.delivery.Deliverer`, which calls them.

    :param name: the sink's name in metrics, DLQ topic and settings (``crm``, ``email``, ...).
    """

    name: str
    policy: DeliveryPolicy
    consumes_advocate_totals: bool = False
    """Also consume ``refstream-advocate-totals`` (advocate-level aggregates)."""

    def __init__(self) -> None:
        self.session: aiohttp.ClientSession | None = None

    def accepts(self, item: Item) -> bool:
        """Whether this sink has anything to send for ``item`` (vendor mapping)."""
        return True

    def ordering_key(self, item: Item) -> str | None:
        """Items with the same key go out in one request, in order; requests run
        concurrently, so a vendor whose writes overwrite (upserts) needs this."""
        return None

    async def setup(self) -> None:
        """Open the HTTP session; called once before the first ``write``."""
        timeout = aiohttp.ClientTimeout(total=self.policy.request_timeout)
        connector = aiohttp.TCPConnector(limit=self.policy.max_in_flight)
        self.session = aiohttp.ClientSession(timeout=timeout, connector=connector)

    async def aclose(self) -> None:
        if self.session is not None:
            await self.session.close()

    @abc.abstractmethod
    async def write(self, batch: Batch) -> WriteResult:
        """Send ``batch`` (at most ``policy.batch_size`` items) in one vendor request.

        Raise :class:`sinks.errors.RetryableError` to have the whole batch retried, or
        :class:`sinks.errors.PermanentError` to dead-letter all of it; return the items the
        vendor rejected individually in :class:`WriteResult`.
        """

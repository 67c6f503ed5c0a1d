"""The extension point: a sink is one module with one class that declares its settings,
its delivery policy and its emulator, and turns a batch into a vendor request."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import ClassVar

import aiohttp
from pydantic_settings import BaseSettings

from schemas.attribution import AttributionEvent
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
    batching, byte and rate limits, retries, the circuit breaker, the DLQ and metrics come
    from :class:`sinks.delivery.Deliverer`, which calls them.

    A subclass declares, as class attributes:

    * ``name``: in ``REFSTREAM_SINKS``, metrics and the DLQ topic (``refstream-dlq-<name>``);
    * ``Settings``: a pydantic-settings model with the sink's ``env_prefix``; a field
      without a default is a credential the sink cannot start without (the registry
      names the variable when it is missing);
    * ``policy``: the vendor's limits (:class:`DeliveryPolicy`);
    * ``emulator``: ``"module:Class"`` of its emulator, which the shared tests and the demo
      start for every registered sink.
    """

    name: ClassVar[str]
    Settings: ClassVar[type[BaseSettings]]
    policy: DeliveryPolicy
    emulator: ClassVar[str]
    consumes_advocate_totals: ClassVar[bool] = False
    """Also consume ``refstream-advocate-totals`` (advocate-level aggregates)."""

    def __init__(self, settings: BaseSettings) -> None:
        self.settings = settings
        self.session: aiohttp.ClientSession | None = None

    def accepts(self, item: Item) -> bool:
        """Whether this sink has anything to send for ``item`` (vendor mapping)."""
        return True

    def ordering_key(self, item: Item) -> str | None:
        """Items with the same key go out in one request, in order; requests run
        concurrently, so a vendor whose writes overwrite (upserts) needs this."""
        return None

    def idempotency_key(self, item: Item) -> str | None:
        """The vendor's dedup key for ``item``. A record repeated within one delivery
        (the join re-emits after a crash) is sent once: some vendors refuse a whole batch
        that carries a key twice."""
        event = item.event
        return event.attribution_event_id if isinstance(event, AttributionEvent) else None

    def requests_per_write(self, batch: Batch) -> int:
        """How many vendor requests one ``write`` of ``batch`` makes for its records: the
        places it takes in the rate limits (a vendor counts requests, whichever endpoint
        they call). A batch needing more than a worker's share of a limit is split."""
        return 1

    def setup_requests(self) -> int:
        """Requests the next ``write`` makes before its records' (a one-time setup, such as
        HubSpot's custom properties): places it takes too, which no split would save."""
        return 0

    @abc.abstractmethod
    def encode(self, item: Item) -> bytes:
        """The record's part of a request, serialised (JSON): the delivery layer sizes
        batches by it and refuses a record larger than ``policy.max_item_bytes``. Raising
        here dead-letters the record (``unmappable``): one odd record never stops a sink."""

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
        """Send ``batch`` (within the policy's record and byte limits; ``batch.parts`` are
        the records' encodings) in one vendor request (or ``requests_per_write(batch)`` of them).

        Raise :class:`sinks.errors.RetryableError` to have the whole batch retried, or
        :class:`sinks.errors.PermanentError` to dead-letter all of it (a batch of several
        records is split first, to find the bad ones); return the items the vendor
        rejected individually in :class:`WriteResult`.
        """

"""Delivers a batch through a :class:`sinks.base.Sink`: the one delivery mechanism.

For each vendor request: wait while the circuit is open, take a rate-limit token and an
in-flight slot, call ``sink.write``, then

* success → the items count as delivered (minus those the vendor rejected one by one,
  which are dead-lettered);
* :class:`RateLimited` (429) → the whole sink pauses for ``Retry-After`` (or a backoff);
  throttling is neither a failure nor an attempt;
* other :class:`RetryableError` → back off (exponential, full jitter) and try again; attempts
  and time count only while the circuit is closed, so an outage never dead-letters anything;
* :class:`PermanentError` for a multi-record request → split it and retry the halves, to
  dead-letter exactly the bad records; for a single record → dead-letter it.

Before any request, each record is encoded once by the sink: a record the sink cannot map
is dead-lettered as ``unmappable``, one larger than the vendor takes as ``too_large``, a
record repeated within the delivery is sent once, and requests are cut by records and
bytes (the policy's limits).

``deliver`` returns when every item is delivered or dead-lettered.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time

from sinks.base import Sink, WriteResult
from sinks.batch import Batch, Item
from sinks.delivery.breaker import CircuitBreaker
from sinks.delivery.dlq import DeadLetters, Failure
from sinks.delivery.window import SlidingWindowLimiter
from sinks.errors import DeliveryError, PermanentError, RateLimited, RetryableError
from streams.metrics import (
    SINK_DELIVERED,
    SINK_DELIVERY_LATENCY,
    SINK_REQUEST_DURATION,
    SINK_REQUESTS,
    SINK_RETRIES,
    init_sink_series,
)

__all__ = ["Deliverer"]

log = logging.getLogger(__name__)

SENT_WRITE_GRACE = 5.0
"""Seconds a cancelled delivery waits for a write already sent: under half the groups'
10 s rebalance timeout (their session), far above a vendor's usual answer."""


class Deliverer:
    def __init__(self, sink: Sink, dead_letters: DeadLetters) -> None:
        policy = sink.policy
        self.sink = sink
        self.policy = policy
        self.dead_letters = dead_letters
        self.breaker = CircuitBreaker(sink.name, policy.breaker_failures, policy.breaker_reset)
        self.limiter = SlidingWindowLimiter(policy.limits)
        self.bulk_limiter = (
            SlidingWindowLimiter(policy.bulk_limits) if policy.bulk_limits else self.limiter
        )
        self.in_flight = asyncio.Semaphore(policy.max_in_flight)
        self.setup_turn = asyncio.Lock()
        """Held by a write that makes the sink's one-time setup, so that the writes waiting
        behind it count their places once it is done."""
        self.quota_spent_until = 0.0
        """``time.monotonic()`` until which the vendor's daily limit counts as spent: two
        pauses after its latest refusal, or until a write is answered."""
        self.taken = 1.0
        """The share of the latest delivery's records the sink took (``accepts``)."""
        self.limiters = list({id(x): x for x in (self.limiter, self.bulk_limiter)}.values())
        """Every rate limit the sink spends (shared between workers by partitions)."""
        init_sink_series(sink.name)

    def delay(self, records: int) -> float:
        """Seconds until a delivery of ``records`` could send its first request, as far as
        is known now: records that go one per request wait for the single limit only. Of
        records fetched, the sink takes as many as it took of the previous delivery's
        (Klaviyo: about a third of the attributions)."""
        single = records * self.taken < self.policy.bulk_from
        return (self.limiter if single else self.bulk_limiter).delay()

    async def deliver(self, batch: Batch) -> None:
        wanted = [item for item in batch if self.sink.accepts(item)]
        if batch:
            self.taken = len(wanted) / len(batch)
        encoded = await self._encode(self._once(wanted))
        async with asyncio.TaskGroup() as requests:  # one failing cancels its siblings
            for chunk in self._chunks(encoded):
                requests.create_task(self._request(chunk))

    def _once(self, items: list[Item]) -> list[Item]:
        """Without repeats of a record (same idempotency key): sending it once delivers it."""
        seen: set[str] = set()
        unique = []
        for item in items:
            key = self.sink.idempotency_key(item)
            if key is None or key not in seen:
                unique.append(item)
                if key is not None:
                    seen.add(key)
        return unique

    async def _encode(self, items: list[Item]) -> list[tuple[Item, bytes]]:
        """Each record's encoding; records the vendor must never see are dead-lettered."""
        encoded, limit = [], self.policy.max_item_bytes
        for item in items:
            try:
                part = self.sink.encode(item)
            except Exception as exc:  # a mapping bug or an odd record: never the whole sink
                log.warning("sink=%s cannot map offset=%d: %r", self.sink.name, item.offset, exc)
                await self._refuse(item, "unmappable", f"{type(exc).__name__}: {exc}"[:300])
                continue
            if limit is not None and len(part) > limit:
                await self._refuse(item, "too_large", f"{len(part)} bytes > {limit} per record")
                continue
            encoded.append((item, part))
        return encoded

    async def _refuse(self, item: Item, reason: str, message: str) -> None:
        now = time.time()
        await self.dead_letters.put(item, Failure(reason, message, None, 0, now, now))

    def _chunks(self, encoded: list[tuple[Item, bytes]]) -> list[Batch]:
        """Requests of at most ``batch_size`` ordering keys and ``max_request_bytes``; one
        key never spans two. Fewer records than ``bulk_from`` go one per request."""
        policy = self.policy
        if len(encoded) < policy.bulk_from:
            return [Batch((item,), (part,)) for item, part in encoded]
        groups: dict[object, list[tuple[Item, bytes]]] = {}
        for pair in encoded:
            key = self.sink.ordering_key(pair[0])
            groups.setdefault(key if key is not None else id(pair[0]), []).append(pair)
        budget = (policy.max_request_bytes or 0) - policy.envelope_bytes
        chunks: list[Batch] = []
        current: list[tuple[Item, bytes]] = []
        keys = size = 0
        for group in groups.values():
            grown = size + sum(len(part) + 1 for _, part in group)
            full = keys == policy.batch_size or (policy.max_request_bytes and grown > budget)
            if current and full:
                chunks.append(Batch(*map(tuple, zip(*current, strict=True))))
                current, keys, grown = [], 0, grown - size
            current.extend(group)
            keys += 1
            size = grown
        if current:
            chunks.append(Batch(*map(tuple, zip(*current, strict=True))))
        return chunks

    async def _attempt(self, chunk: Batch) -> WriteResult | DeliveryError:
        """One vendor request. The circuit's probe, the in-flight slot and the rate-limit
        place are held for the call alone and released before the caller acts on the answer:
        a refused batch's halves need places of their own, and a split held its parent's
        until, as deep as ``max_in_flight``, no request could go out at all."""
        probe = await self.breaker.wait_closed()
        try:
            async with self.in_flight:
                if self.sink.setup_requests():
                    async with self.setup_turn:  # re-checked: the holder may have done it
                        if self.sink.setup_requests():
                            return await self._call(chunk)
                return await self._call(chunk)
        finally:
            if probe:  # answered, raised or cancelled: never leave the circuit probed forever
                self.breaker.end_probe()

    async def _call(self, chunk: Batch) -> WriteResult | DeliveryError:
        """The write, with its places in the rate limits (the sink's setup too, if any)."""
        limiter = self.bulk_limiter if len(chunk) > 1 else self.limiter
        places = self.sink.setup_requests() + self.sink.requests_per_write(chunk)
        async with limiter.places(places):
            # a pause the vendor asked for (429) while this call waited for its slot and
            # places holds it too
            await self.breaker.wait_unpaused()
            started = time.monotonic()
            try:
                result = await self._write(chunk)
            except DeliveryError as exc:
                self._observe(started, exc.status or exc.reason)
                return exc
            self._observe(started, result.status)
            return result

    async def _write(self, chunk: Batch) -> WriteResult:
        """``sink.write``, which a cancellation (a rebalance's fence) lets finish for up to
        ``SENT_WRITE_GRACE`` seconds before it cancels it too: a request already on the wire
        can still land after the new owner's otherwise, and the vendor would keep the older
        state. The slot and rate-limit places stay held until it has ended."""
        write = asyncio.ensure_future(self.sink.write(chunk))
        try:
            return await asyncio.shield(write)
        except asyncio.CancelledError:
            await asyncio.wait({write}, timeout=SENT_WRITE_GRACE)
            if not write.done():
                write.cancel()
                log.warning("sink write cancelled while sent sink=%s", self.sink.name)
            elif not write.cancelled():
                write.exception()  # retrieved: its outcome is the new owner's business now
            raise

    @property
    def quota_spent(self) -> bool:
        """The vendor said its daily limit is spent: delivery waits for its reset (and is
        not stuck meanwhile)."""
        return time.monotonic() < self.quota_spent_until

    def _fitting(self, chunk: Batch) -> int:
        """How many of ``chunk``'s first records one write may carry: as many as fit this
        worker's share of the rate limit (HubSpot: 400 orders make 12 requests, and a share
        of 100 a 10 s between 34 workers is 2), or, where one record alone needs more, as
        many as need no more than one does (3 for up to 100 orders: a smaller write would
        only make more requests). The cut goes at the start of an ordering key if it can."""
        requests = self.sink.requests_per_write
        if len(chunk) == 1:
            return 1
        limit = max(self.bulk_limiter.capacity, requests(chunk.cut(1)[0]))
        if requests(chunk) <= limit:
            return len(chunk)
        fits, too_many = 1, len(chunk)  # requests grow with the records a write carries
        while too_many - fits > 1:
            middle = (fits + too_many) // 2
            if requests(chunk.cut(middle)[0]) <= limit:
                fits = middle
            else:
                too_many = middle
        key, items = self.sink.ordering_key, chunk.items
        start = fits
        while start > 0 and (k := key(items[start])) is not None and key(items[start - 1]) == k:
            start -= 1

        def cost(at: int) -> int:
            first, rest = chunk.cut(at)
            return requests(first) + requests(rest)

        # at a key's start unless that makes more requests (then the parts go in order)
        return start if start and cost(start) <= cost(fits) else fits

    async def _request(self, chunk: Batch) -> None:
        fits = self._fitting(chunk)
        if fits < len(chunk):
            await self._in_turn(*chunk.cut(fits))
            return
        policy, name = self.policy, self.sink.name
        attempts, retry_time = 0, 0.0
        first_failed = last_failed = 0.0
        while True:
            answer = await self._attempt(chunk)
            if isinstance(answer, WriteResult | PermanentError):
                self.quota_spent_until = 0.0
            if isinstance(answer, WriteResult):
                self.breaker.success()
                await self._delivered(chunk, answer.rejected, attempts + 1)
                return
            if isinstance(answer, PermanentError):
                self.breaker.success()  # the vendor answered: it is up
                await self._permanent(chunk, answer, attempts + 1, first_failed or time.time())
                return
            error = answer if isinstance(answer, RetryableError) else RetryableError(str(answer))
            now = time.time()
            first_failed = first_failed or now
            last_failed = now
            if isinstance(error, RateLimited):  # throttled, not failing: pause the whole sink
                pause = self._backoff(attempts, error)
                if error.reason == "daily_limit":
                    if not self.quota_spent:
                        log.warning("the vendor's daily request limit is spent sink=%s: "
                                    "delivery waits for its reset", name)  # fmt: skip
                    self.quota_spent_until = time.monotonic() + 2 * pause
                SINK_RETRIES.labels(name, error.reason).inc()
                self.breaker.pause(pause)
                continue
            counted = not self.breaker.is_open
            self.breaker.failure()
            SINK_RETRIES.labels(name, error.reason).inc()
            if counted:
                attempts += 1
                if attempts >= policy.max_attempts or retry_time >= policy.max_retry_seconds:
                    failure = Failure(
                        "retries_exhausted", error.message, error.status, attempts,
                        first_failed, last_failed,
                    )  # fmt: skip
                    for item in chunk:
                        await self.dead_letters.put(item, failure)
                    return
            delay = self._backoff(attempts, error)
            retry_time += delay
            await asyncio.sleep(delay)

    def _backoff(self, attempts: int, error: RetryableError) -> float:
        if isinstance(error, RateLimited) and error.retry_after is not None:
            return min(error.retry_after, self.policy.backoff_max)
        ceiling = min(self.policy.backoff_max, self.policy.backoff_base * 2 ** max(attempts, 1))
        return random.uniform(0, ceiling)  # full jitter

    async def _permanent(self, chunk: Batch, exc: PermanentError, attempts: int, first: float):
        if len(chunk) > 1:  # find the bad records: halves are retried on their own
            await self._in_turn(*chunk.split(self.sink.ordering_key))
            return
        failure = Failure(exc.reason, exc.message, exc.status, attempts, first, time.time())
        await self.dead_letters.put(chunk.items[0], failure)

    async def _in_turn(self, first: Batch, second: Batch) -> None:
        """Deliver the two parts of a batch (each may split again), at once unless they
        share an ordering key."""
        key = self.sink.ordering_key
        if {key(i) for i in first} & {key(i) for i in second} - {None}:
            # one key's records on both sides (a chunk of one contact): in their order, or
            # the earlier update could land last and stay
            await self._request(first)
            await self._request(second)
            return
        async with asyncio.TaskGroup() as halves:
            halves.create_task(self._request(first))
            halves.create_task(self._request(second))

    async def _delivered(
        self, chunk: Batch, rejected: list[tuple[Item, PermanentError]], attempts: int
    ) -> None:
        now = time.time()
        bad = {id(item) for item, _ in rejected}
        for item, exc in rejected:
            failure = Failure(exc.reason, exc.message, exc.status, attempts, now, now)
            await self.dead_letters.put(item, failure)
        delivered = [item for item in chunk if id(item) not in bad]
        SINK_DELIVERED.labels(self.sink.name).inc(len(delivered))
        latency = SINK_DELIVERY_LATENCY.labels(self.sink.name)
        for item in delivered:
            if item.event.emitted_at is not None:
                latency.observe(max(0.0, now - item.event.emitted_at.timestamp()))

    def _observe(self, started: float, status: int | str) -> None:
        SINK_REQUEST_DURATION.labels(self.sink.name).observe(time.monotonic() - started)
        SINK_REQUESTS.labels(self.sink.name, str(status)).inc()

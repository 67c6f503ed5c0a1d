"""A batch the vendor refuses as a whole is split until exactly its bad records are dead-
lettered, at every size up to the sink's batch size, while other requests share the slots.

Before the fix a split held its parent's in-flight slot and rate-limit place while its
halves waited for their own: a refusal as deep as ``max_in_flight`` hung the sink for good.
"""

from __future__ import annotations

import asyncio
import functools
import random
from dataclasses import replace

import pytest

from sinks.base import Sink, WriteResult
from sinks.batch import Batch, Item
from sinks.delivery.breaker import State
from sinks.delivery.deliverer import Deliverer
from sinks.delivery.policy import DeliveryPolicy
from sinks.errors import PermanentError, UpstreamUnavailable
from sinks.hubspot import HUBSPOT_POLICY
from sinks.mixpanel import MIXPANEL_POLICY

from ..conftest import RecordingDLQ, attribution, items

BOUND_SECONDS = 20.0
"""However a batch is refused, its delivery ends within this (a hang never does)."""


class StrictVendor(Sink):
    """A vendor that refuses a whole request (400) when any record in it is bad, and
    remembers what it accepted; no network, so every size can be swept in seconds."""

    name = "strict"

    def __init__(self, policy: DeliveryPolicy, bad: set[str]) -> None:
        super().__init__(settings=None)
        self.policy = policy
        self.bad = bad
        self.accepted: list[str] = []
        self.requests = 0

    def encode(self, item: Item) -> bytes:
        return item.event.referral_id.encode()

    async def write(self, batch: Batch) -> WriteResult:
        self.requests += 1
        await asyncio.sleep(0)  # other requests run while this one is in flight
        ids = [item.event.referral_id for item in batch]
        if self.bad.intersection(ids):
            raise PermanentError("a record in the request is invalid", status=400)
        self.accepted.extend(ids)
        return WriteResult()


def fast(policy: DeliveryPolicy) -> DeliveryPolicy:
    """The sink's own batch size and concurrency; limits out of the way of the sweep."""
    return replace(policy, limits=((1_000_000, 1.0),), backoff_base=0.001)


@functools.cache
def pool(count: int) -> Batch:
    """``count`` items built once: the sweep slices them rather than building thousands."""
    return items(*(attribution(n) for n in range(count)))


async def deliver_refused(policy: DeliveryPolicy, size: int, bad_count: int, seed: int):
    """A batch of ``size`` with ``bad_count`` bad records, delivered while other deliveries
    of the same sink compete for its slots; returns the vendor, the DLQ and the bad ids."""
    everything = pool(size + 3 * policy.max_in_flight).items
    refused, others = everything[:size], everything[size:]
    bad = {item.event.referral_id for item in random.Random(seed).sample(refused, bad_count)}
    vendor = StrictVendor(policy, bad)
    dlq = RecordingDLQ("strict")
    deliverer = Deliverer(vendor, dlq)
    competing = [deliverer.deliver(Batch((item,))) for item in others]
    await asyncio.wait_for(
        asyncio.gather(deliverer.deliver(Batch(refused)), *competing), BOUND_SECONDS
    )
    return vendor, dlq, bad, {item.event.referral_id for item in everything}


def all_bad_sizes(batch_size: int) -> set[int]:
    """A batch refused in every record splits into 2n - 1 requests: a few sizes suffice."""
    return {1, 2, 3, 4, 5, 8, 9, 16, 17, 33, batch_size - 1, batch_size}


def sizes(batch_size: int) -> list[int]:
    """Every size to 100; above that, what decides a hang is the split's depth (one level
    per halving) against ``max_in_flight``: every depth's edges, a seeded sample between
    them, and the batch size itself."""
    edges = {e for k in range(7, 12) for e in (2**k - 1, 2**k, 2**k + 1)}
    between = range(101, batch_size + 1)
    sample = set(random.Random(batch_size).sample(between, min(40, len(between))))
    above = {s for s in edges | sample | {batch_size - 1, batch_size} if 100 < s <= batch_size}
    return [*range(1, min(100, batch_size) + 1), *sorted(above)]


@pytest.mark.parametrize(
    "sink_policy", [HUBSPOT_POLICY, MIXPANEL_POLICY], ids=["hubspot-100", "mixpanel-2000"]
)
async def test_a_refused_batch_of_any_size_dead_letters_exactly_its_bad_records(sink_policy):
    policy = fast(sink_policy)
    for size in sizes(policy.batch_size):
        counts = {1, min(3, size)} | ({size} if size in all_bad_sizes(policy.batch_size) else set())
        for bad_count in sorted(counts):
            vendor, dlq, bad, ids = await deliver_refused(policy, size, bad_count, size)
            lettered = sorted(key.decode() for _, key, _, _ in dlq.sent)
            assert lettered == sorted(bad), (size, bad_count)
            assert sorted(vendor.accepted) == sorted(ids - bad), (size, bad_count)
            assert {h["error.reason"] for _, _, _, h in dlq.sent} == {b"rejected"}


async def test_full_hubspot_batches_with_bad_emails_dead_letter_exactly_those(emulators, make_sink):
    sink = await make_sink("crm", limits=((1000, 1.0),))
    dlq = RecordingDLQ("crm")
    events = [attribution(n) for n in range(300)]
    for n in (0, 37, 99, 150, 299):
        events[n] = attribution(n, friend=events[n].friend.model_copy(update={"email": "x"}))
    await asyncio.wait_for(Deliverer(sink, dlq).deliver(items(*events)), BOUND_SECONDS)
    assert sorted(key for _, key, _, _ in dlq.sent) == sorted(
        f"ref_{n}".encode() for n in (0, 37, 99, 150, 299)
    )
    assert len(emulators.hubspot.contacts) == 295


class Hangs(Sink):
    """A vendor whose first call is down (the circuit opens), and whose probe then never
    answers until cancelled, as a delivery is when its worker's partitions are revoked."""

    name = "hangs"

    def __init__(self) -> None:
        super().__init__(settings=None)
        self.policy = DeliveryPolicy(
            batch_size=1, max_in_flight=4, limits=((1000, 1.0),), breaker_failures=1,
            breaker_reset=0.05, backoff_base=0.001, max_attempts=100,
        )  # fmt: skip
        self.calls = 0
        self.probe_started = asyncio.Event()
        self.hang = True

    def encode(self, item: Item) -> bytes:
        return b"{}"

    async def write(self, batch: Batch) -> WriteResult:
        self.calls += 1
        if self.calls == 1:
            raise UpstreamUnavailable("down", status=503)
        if self.hang:
            self.probe_started.set()
            await asyncio.Event().wait()
        return WriteResult()


async def test_a_cancelled_probe_leaves_the_circuit_to_the_next_caller():
    sink = Hangs()
    deliverer = Deliverer(sink, RecordingDLQ("hangs"))
    first = asyncio.create_task(deliverer.deliver(items(attribution(1))))
    await asyncio.wait_for(sink.probe_started.wait(), 5)
    assert deliverer.breaker.state is State.HALF_OPEN
    first.cancel()  # a rebalance stops the delivery mid-probe
    with pytest.raises(asyncio.CancelledError):
        await first
    sink.hang = False
    await asyncio.wait_for(deliverer.deliver(items(attribution(2))), 5)
    assert deliverer.breaker.state is State.CLOSED


class KeyedVendor(StrictVendor):
    """A strict vendor whose records are updates of a few keys (contacts): it keeps each
    key's last accepted update, and answers requests holding an early update slowly, so
    that halves sent side by side would land out of order."""

    def __init__(self, bad: set[str], slow: set[str]) -> None:
        super().__init__(fast(HUBSPOT_POLICY), bad)
        self.slow = slow
        self.last: dict[str, str] = {}

    def ordering_key(self, item: Item) -> str | None:
        return item.event.friend.email

    async def write(self, batch: Batch) -> WriteResult:
        ids = [item.event.referral_id for item in batch]
        if self.slow.intersection(ids):
            await asyncio.sleep(0.05)
        result = await super().write(batch)
        for item in batch:
            self.last[item.event.friend.email] = item.event.referral_id
        return result


@pytest.mark.parametrize("size", [2, 3, 4, 5, 8, 9])
async def test_a_split_never_lets_an_earlier_update_of_a_key_land_last(size):
    """One contact's updates in a refused request, wherever the cut falls: the last one
    accepted is the latest (the integration test of permanent errors once found a friend's
    contact left at its order's total after the refund's)."""
    for bad_at in range(size):
        for group in range(1, size + 1):  # the first `group` records update one contact
            events = []
            for n in range(size):
                event = attribution(n)
                if n < group:
                    friend = event.friend.model_copy(update={"email": "same@example.com"})
                    event = event.model_copy(update={"friend": friend})
                events.append(event)
            bad = {f"ref_{bad_at}"}
            vendor = KeyedVendor(bad, slow={"ref_0"})
            dlq = RecordingDLQ("strict")
            deliverer = Deliverer(vendor, dlq)
            await asyncio.wait_for(deliverer.deliver(items(*events)), BOUND_SECONDS)
            accepted_same = [f"ref_{n}" for n in range(group) if f"ref_{n}" not in bad]
            if accepted_same:
                assert vendor.last["same@example.com"] == accepted_same[-1], (bad_at, group)

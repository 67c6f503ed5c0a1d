"""The shared mechanism: retries, Retry-After, breaker back-pressure, budgets, splitting."""

from __future__ import annotations

import asyncio
import time

from sinks.delivery.deliverer import Deliverer
from streams.metrics import SINK_CIRCUIT_OPEN

from ..conftest import RecordingDLQ, attribution, items


async def test_429_retry_after_is_honoured_then_delivered(emulators, make_sink):
    emulators.klaviyo.faults.rate_limit = {"count": 2, "retry_after": 0.3}
    sink = await make_sink("email")
    started = time.monotonic()
    await Deliverer(sink, RecordingDLQ("email")).deliver(items(attribution(1)))
    assert time.monotonic() - started >= 0.6
    assert emulators.klaviyo.status_counts == {429: 2, 202: 1}


async def test_server_errors_are_retried_until_accepted(emulators, make_sink):
    emulators.mixpanel.faults.status_5xx_rate = 0.5
    sink = await make_sink("analytics", batch_size=1, max_attempts=60)
    dlq = RecordingDLQ("analytics")
    await Deliverer(sink, dlq).deliver(items(*(attribution(n) for n in range(20))))
    assert len(emulators.mixpanel.events) == 20
    assert dlq.sent == []
    assert emulators.mixpanel.status_counts.get(500, 0) > 0


async def test_an_outage_opens_the_circuit_and_dead_letters_nothing(emulators, make_sink):
    emulators.hubspot.faults.down = True
    sink = await make_sink("crm", max_attempts=3, breaker_failures=2, breaker_reset=0.2)
    dlq = RecordingDLQ("crm")
    delivery = asyncio.create_task(Deliverer(sink, dlq).deliver(items(attribution(1))))
    await asyncio.sleep(1.5)  # far more than 3 attempts' worth of backoff
    assert not delivery.done()
    assert SINK_CIRCUIT_OPEN.labels("crm")._value.get() == 1
    emulators.hubspot.faults.down = False
    await asyncio.wait_for(delivery, 10)
    assert SINK_CIRCUIT_OPEN.labels("crm")._value.get() == 0
    assert "friend1@example.com" in emulators.hubspot.contacts
    assert dlq.sent == []


async def test_a_record_that_keeps_failing_is_dead_lettered_after_its_budget(emulators, make_sink):
    emulators.klaviyo.faults.status_5xx_rate = 1.0
    sink = await make_sink("email", max_attempts=3, breaker_failures=100)
    dlq = RecordingDLQ("email")
    await Deliverer(sink, dlq).deliver(items(attribution(1)))
    ((_, _, _, headers),) = dlq.sent
    assert headers["error.reason"] == b"retries_exhausted"
    assert headers["error.attempts"] == b"3"
    assert headers["error.http_status"] == b"500"
    assert headers["error.first_failed_at"] <= headers["error.last_failed_at"]


async def test_a_batch_refused_whole_is_split_to_find_the_bad_record(emulators, make_sink):
    sink = await make_sink("crm")
    dlq = RecordingDLQ("crm")
    bad = attribution(3, friend=attribution(3).friend.model_copy(update={"email": "nope"}))
    await Deliverer(sink, dlq).deliver(items(attribution(1), attribution(2), bad, attribution(4)))
    assert len(emulators.hubspot.contacts) == 3
    assert [key for _, key, _, _ in dlq.sent] == [b"ref_3"]


async def test_one_contacts_updates_never_race_each_other(emulators, make_sink):
    """An order and its refund for one friend in one fetch: one request, in order."""
    sink = await make_sink("crm", batch_size=2)
    first = attribution(1, "referral_converted")
    later = attribution(
        1, "order_refunded", source_event_id="evt_f1",
        totals=first.totals.model_copy(update={"orders": 0, "revenue": {"EUR": "0.00"}}),
    )  # fmt: skip
    batch = items(attribution(2), first, attribution(3), later, attribution(4))
    deliverer = Deliverer(sink, RecordingDLQ("crm"))
    chunks = deliverer._chunks([(item, sink.encode(item)) for item in batch])
    assert [[i.event.referral_id for i in c] for c in chunks] == [
        ["ref_2", "ref_1", "ref_1"], ["ref_3", "ref_4"],
    ]  # fmt: skip
    await deliverer.deliver(batch)
    assert emulators.hubspot.contacts["friend1@example.com"]["referral_orders"] == "0"


async def test_a_429_storm_pauses_the_sink_without_spending_the_retry_budget(emulators, make_sink):
    emulators.klaviyo.faults.rate_limit = {"count": 30, "retry_after": 0.05}
    sink = await make_sink("email", max_attempts=2, breaker_failures=2)
    dlq = RecordingDLQ("email")
    await Deliverer(sink, dlq).deliver(items(*(attribution(n) for n in range(5))))
    assert len(emulators.klaviyo.events) == 5
    assert emulators.klaviyo.status_counts[429] == 30
    assert dlq.sent == []
    assert SINK_CIRCUIT_OPEN.labels("email")._value.get() == 0


async def test_a_429_pauses_the_calls_already_waiting_for_a_slot(emulators, make_sink):
    """One call at a time: the second record's call waits for the slot while the first is
    answered 429 with Retry-After 0.3 s; it goes after the pause, not as the slot frees."""
    emulators.klaviyo.faults.rate_limit = {"count": 1, "retry_after": 0.3}
    sink = await make_sink("email", max_in_flight=1)
    sent: list[float] = []
    write = sink.write

    async def timed_write(batch):
        sent.append(time.monotonic())
        return await write(batch)

    sink.write = timed_write  # type: ignore[method-assign]
    await Deliverer(sink, RecordingDLQ("email")).deliver(items(attribution(1), attribution(2)))

    assert emulators.klaviyo.status_counts == {429: 1, 202: 2}
    first, *later = sent
    assert len(later) == 2 and min(later) - first >= 0.3

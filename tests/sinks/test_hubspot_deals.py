"""The CRM sink's deals against the HubSpot emulator: a deal per attributed order, upserted
by ``refstream_order_id``, net of refunds, associated with the friend's contact by the ids
the upserts returned; custom properties created first; refused deals dead-lettered alone."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import orjson
import pytest
from aiohttp import web

from schemas.attribution import OrderRef, attribution_event_id
from sinks import hubspot
from sinks.delivery.deliverer import Deliverer
from sinks.errors import RateLimited, RetryableError

from .conftest import RecordingDLQ, attribution, items


def refund(n: int, amount: str, net: str, event: str) -> object:
    order = OrderRef(order_id=f"ord_{n}", amount=Decimal(amount), currency="EUR",
                     net_amount=Decimal(net))  # fmt: skip
    event_id = attribution_event_id(f"ref_{n}", "order_refunded", event)
    return attribution(n, "order_refunded", order=order, source_event_id=event,
                       attribution_event_id=event_id)  # fmt: skip


def clean(emulator) -> None:
    assert emulator.invalid_requests == [] and emulator.response_violations == []


async def test_attributed_orders_become_deals_net_of_refunds_on_the_friends_contact(
    emulators, make_sink
):
    vendor = emulators.hubspot
    sink = await make_sink("crm")
    dlq = RecordingDLQ("crm")
    deliverer = Deliverer(sink, dlq)
    await deliverer.deliver(items(
        attribution(1), attribution(1, "referral_converted", source_event_id="evt_o1"),
        attribution(2, "referral_converted", source_event_id="evt_o2"),
    ))  # fmt: skip
    assert vendor.deals["ord_1"] == {
        "refstream_order_id": "ord_1", "dealname": "Referral order ord_1", "amount": "49.90",
        "deal_currency_code": "EUR", "dealstage": "closedwon", "pipeline": "default",
        "closedate": "2026-11-20T00:00:00Z", "referral_id": "ref_1",
        "referral_advocate_id": "adv_1", "referral_advocate_email": "adv1@example.com",
    }  # fmt: skip
    # A partial refund leaves the deal won at its net; a full one loses it. Both arrive in a
    # later delivery, as refunds do, and the same order's events in one request merge.
    await deliverer.deliver(items(
        refund(1, "9.90", "40.00", "evt_r1"), refund(2, "20.00", "29.90", "evt_r2a"),
        refund(2, "29.90", "0.00", "evt_r2b"),
    ))  # fmt: skip
    assert {o: (d["amount"], d["dealstage"]) for o, d in vendor.deals.items()} == {
        "ord_1": ("40.00", "closedwon"), "ord_2": ("0.00", "closedlost"),
    }  # fmt: skip
    assert vendor.held()["associations"] == {
        "ord_1": ["friend1@example.com"], "ord_2": ["friend2@example.com"],
    }  # fmt: skip
    assert dlq.sent == []
    routes = vendor.requests_by_route
    assert routes[hubspot.PATH] == 2 and routes[hubspot.DEALS_PATH] == 2
    assert routes[hubspot.ASSOCIATIONS_PATH] == 2
    # The custom properties were created once, by the first write; the deals' id is unique.
    assert routes["/crm/v3/properties/{object_type}"] == len(hubspot.property_definitions(True))
    assert vendor.properties["deals"]["refstream_order_id"]["hasUniqueValue"] is True
    clean(vendor)


async def test_properties_that_exist_already_are_fine_and_missing_ones_are_refused(
    emulators, make_sink
):
    vendor = emulators.hubspot
    first = await make_sink("crm")
    await Deliverer(first, RecordingDLQ("crm")).deliver(items(attribution(1)))
    again = await make_sink("crm")  # a restarted worker: every property answers 409
    dlq = RecordingDLQ("crm")
    await Deliverer(again, dlq).deliver(items(attribution(2)))
    assert dlq.sent == [] and vendor.status_counts[409] == len(hubspot.property_definitions(True))
    assert set(vendor.contacts) == {"friend1@example.com", "friend2@example.com"}

    vendor.properties["contacts"].clear()  # an account without them, and a sink that skips
    skipping = await make_sink("crm")
    skipping.properties_ready = True
    await Deliverer(skipping, dlq).deliver(items(attribution(3)))
    assert [headers["error.reason"] for *_, headers in dlq.sent] == [b"rejected"]
    assert "friend3@example.com" not in vendor.contacts


async def test_a_refused_deal_is_dead_lettered_with_its_reason_and_the_rest_delivered(
    emulators, make_sink
):
    vendor = emulators.hubspot
    vendor.faults.reject = {"ord_2"}
    sink = await make_sink("crm")
    dlq = RecordingDLQ("crm")
    await Deliverer(sink, dlq).deliver(items(
        attribution(1, "referral_converted", source_event_id="evt_o1"),
        attribution(2, "referral_converted", source_event_id="evt_o2"),
        attribution(3, "referral_converted", source_event_id="evt_o3"),
    ))  # fmt: skip
    assert set(vendor.deals) == {"ord_1", "ord_3"}
    assert vendor.held()["associations"] == {
        "ord_1": ["friend1@example.com"], "ord_3": ["friend3@example.com"],
    }  # fmt: skip
    assert len(dlq.sent) == 1
    _, key, value, headers = dlq.sent[0]
    assert key == b"ref_2" and b'"ord_2"' in value
    assert headers["error.reason"] == b"rejected" and headers["error.http_status"] == b"400"
    assert b"deal ord_2" in headers["error.message"]
    clean(vendor)


async def test_hubspot_deals_false_sends_contacts_only(emulators, make_sink, monkeypatch):
    monkeypatch.setenv("HUBSPOT_DEALS", "false")
    vendor = emulators.hubspot
    sink = await make_sink("crm")
    await Deliverer(sink, RecordingDLQ("crm")).deliver(
        items(attribution(1, "referral_converted", source_event_id="evt_o1"))
    )
    assert vendor.deals == {} and vendor.properties["deals"] == {}
    assert hubspot.DEALS_PATH not in vendor.requests_by_route
    assert vendor.contacts["friend1@example.com"]["lifecyclestage"] == "customer"


def test_a_write_counts_every_request_it_makes_against_the_shared_limit(monkeypatch):
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", "t")
    sink = hubspot.HubSpotSink(hubspot.HubSpotSettings())
    signups = items(attribution(1), attribution(2))
    orders = items(*(attribution(n, "referral_converted") for n in range(150)))
    setup = len(hubspot.property_definitions(True))
    assert sink.setup_requests() == setup and sink.requests_per_write(signups) == 1
    sink.properties_ready = True
    assert sink.setup_requests() == 0 and sink.requests_per_write(signups) == 1
    assert sink.requests_per_write(orders) == 2 + 2 * 2  # 150 friends and deals: two of each


async def test_a_deals_request_refused_whole_is_split_until_the_bad_deal_is_found(
    emulators, make_sink
):
    vendor = emulators.hubspot
    vendor.refuse_deal_batches_with = {"ord_3"}
    sink = await make_sink("crm")
    dlq = RecordingDLQ("crm")
    await Deliverer(sink, dlq).deliver(
        items(
            *(attribution(n, "referral_converted", source_event_id=f"evt_o{n}") for n in range(6))
        )
    )
    assert set(vendor.deals) == {f"ord_{n}" for n in range(6)} - {"ord_3"}
    assert [(key, headers["error.http_status"]) for _, key, _, headers in dlq.sent] == [
        (b"ref_3", b"400")
    ]
    assert vendor.status_counts[400] >= 2  # the whole request, then each half holding it
    clean(vendor)


async def test_a_refund_without_net_amount_updates_the_contact_only(emulators, make_sink):
    """Refunds emitted before they carried ``net_amount``: the deal keeps its amount."""
    vendor = emulators.hubspot
    sink = await make_sink("crm")
    deliverer = Deliverer(sink, RecordingDLQ("crm"))
    await deliverer.deliver(items(attribution(1, "referral_converted", source_event_id="e1")))
    old = refund(1, "9.90", "40.00", "evt_r1")
    old = old.model_copy(update={"order": old.order.model_copy(update={"net_amount": None})})
    old = old.model_copy(update={"totals": old.totals.model_copy(update={"orders": 7})})
    dlq = RecordingDLQ("crm")
    await Deliverer(sink, dlq).deliver(items(old))
    assert dlq.sent == [] and vendor.deals["ord_1"]["amount"] == "49.90"
    assert vendor.contacts["friend1@example.com"]["referral_orders"] == "7"


async def test_a_deal_whose_contact_id_is_not_returned_is_dead_lettered(emulators, make_sink):
    """No search calls: without the contact's id from the upsert the deal cannot be
    associated, and that is said in the DLQ rather than left unassociated."""
    vendor = emulators.hubspot
    sink = await make_sink("crm")
    handle = vendor.handle

    async def without_emails(request, body):
        answer = await handle(request, body)
        payload = orjson.loads(answer.body)
        for result in payload["results"]:
            result["properties"].pop("email", None)
        return web.json_response(payload, status=answer.status)

    vendor.endpoints[0].handle = without_emails
    dlq = RecordingDLQ("crm")
    await Deliverer(sink, dlq).deliver(items(attribution(1, "referral_converted")))
    assert vendor.deals == {} and "friend1@example.com" in vendor.contacts
    ((_, key, _, headers),) = dlq.sent
    assert key == b"ref_1" and b"no id for the friend" in headers["error.message"]


async def test_a_thick_write_sends_contacts_in_calls_of_100_and_deals_in_fewer(
    emulators, make_sink
):
    """250 friends, 60 of them with an order: three contacts calls, and one deals call and
    one associations call for all 60 deals (a write per 100 contacts made three pairs)."""
    vendor = emulators.hubspot
    sink = await make_sink("crm")
    events = [attribution(n) for n in range(190)]
    events += [attribution(n, "referral_converted", source_event_id=f"evt_o{n}")
               for n in range(190, 250)]  # fmt: skip
    dlq = RecordingDLQ("crm")
    await Deliverer(sink, dlq).deliver(items(*events))

    assert dlq.sent == []
    assert len(vendor.contacts) == 250 and len(vendor.deals) == 60
    assert vendor.requests_by_route[hubspot.PATH] == 3
    assert vendor.requests_by_route[hubspot.DEALS_PATH] == 1
    assert vendor.requests_by_route[hubspot.ASSOCIATIONS_PATH] == 1
    clean(vendor)


async def test_a_write_whose_calls_go_at_once_fails_as_the_call_that_failed(emulators, make_sink):
    """A write's contacts calls (and its deal chunks) go out together: one answered 500 is
    the write's retryable error, not an exception group the delivery layer cannot read,
    and the retried write leaves every contact and deal once, each deal associated."""
    vendor = emulators.hubspot
    sink = await make_sink("crm")
    await sink.ensure_properties()  # before the faults: the write alone meets them
    events = [attribution(n) for n in range(150)]
    events += [attribution(n, "referral_converted", source_event_id=f"evt_o{n}")
               for n in range(150, 380)]  # fmt: skip
    batch = items(*events)
    vendor.faults.status_5xx_every = 2  # the second call of the write fails

    with pytest.raises(RetryableError):
        await sink.write(batch)

    dlq = RecordingDLQ("crm")
    vendor.faults.status_5xx_every = 0
    await Deliverer(sink, dlq).deliver(batch)
    assert dlq.sent == [] and vendor.status_counts[500] >= 1
    assert len(vendor.contacts) == 380 and len(vendor.deals) == 230
    assert len(vendor.held()["associations"]) == 230
    clean(vendor)


def recording(deliverer: Deliverer) -> list[int]:
    """The places each of ``deliverer``'s writes takes, in the order they ask."""
    held: list[int] = []
    acquire = deliverer.bulk_limiter.acquire

    async def recording_acquire(count: int) -> None:
        held.append(count)
        await acquire(count)

    deliverer.bulk_limiter.acquire = recording_acquire  # type: ignore[method-assign]
    return held


@pytest.mark.parametrize(
    ("orders", "share", "writes"),
    [
        (150, 3, [3, 3]),  # 6 requests whole: 100 orders, then 50
        (300, 6, [6, 3]),  # 9 whole; halves of 150 would make 12
        (400, 2, [3, 3, 3, 3]),  # one order alone needs 3: writes of 100, not 400 of one
    ],
)
async def test_a_write_needing_more_requests_than_the_workers_share_is_cut_to_fit(
    emulators, make_sink, orders, share, writes
):
    """A write of orders makes a contacts, a deals and an associations call per 100. A
    batch needing more than the worker's share of the limit goes as writes that fit it,
    and never as more requests than it needed whole."""
    vendor = emulators.hubspot
    sink = await make_sink("crm", limits=((100, 0.2),))  # HubSpot's count, a short window
    await sink.ensure_properties()
    deliverer = Deliverer(sink, RecordingDLQ("crm"))
    deliverer.limiter.share(share / 100)
    assert deliverer.bulk_limiter.capacity == share
    held = recording(deliverer)
    events = [attribution(n, "referral_converted", source_event_id=f"evt_o{n}")
              for n in range(orders)]  # fmt: skip
    await deliverer.deliver(items(*events))

    assert len(vendor.deals) == orders and len(vendor.contacts) == orders
    assert sorted(held, reverse=True) == writes
    properties = len(hubspot.property_definitions(True))
    assert sum(vendor.requests_by_route.values()) - properties == sum(writes)
    clean(vendor)


async def test_the_first_writes_wait_for_the_one_that_creates_the_properties(emulators, make_sink):
    """Only the write that creates the custom properties takes places for them: the writes
    queued behind it count theirs once it is done, and then go at once again."""
    vendor = emulators.hubspot
    vendor.faults.latency = 0.05
    sink = await make_sink("crm", batch_size=1, limits=((100, 0.2),))
    deliverer = Deliverer(sink, RecordingDLQ("crm"))
    held = recording(deliverer)
    writing, most = 0, 0
    write = sink.write

    async def counting_write(batch):
        nonlocal writing, most
        writing += 1
        most = max(most, writing)
        try:
            return await write(batch)
        finally:
            writing -= 1

    sink.write = counting_write  # type: ignore[method-assign]
    await deliverer.deliver(items(*(attribution(n) for n in range(10))))

    setup = len(hubspot.property_definitions(True))
    assert len(vendor.contacts) == 10
    assert held == [setup + 1] + [1] * 9
    assert sum(vendor.requests_by_route.values()) == sum(held)
    assert most == sink.policy.max_in_flight  # the nine behind it, at once
    clean(vendor)


def test_a_cut_goes_at_a_contacts_first_record_unless_that_makes_more_requests(monkeypatch):
    """Record 200 is a second order of record 199's friend. With 250 records the cut can
    move back to 199 at no cost (9 requests either way); with 300 it would make 11 instead
    of 9, so it stays at 200 and the two parts go one after the other."""
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", "t")
    sink = hubspot.HubSpotSink(hubspot.HubSpotSettings())
    sink.properties_ready = True
    deliverer = Deliverer(sink, RecordingDLQ("crm"))
    deliverer.limiter.share(6 / 100)
    friend = attribution(199).friend

    def orders(count: int) -> object:
        return items(*(
            attribution(n, "referral_converted", **({"friend": friend} if n == 200 else {}))
            for n in range(count)
        ))  # fmt: skip

    assert deliverer._fitting(orders(250)) == 199
    assert deliverer._fitting(orders(300)) == 200


async def test_a_spent_daily_limit_pauses_delivery_until_a_new_day_and_loses_nothing(
    emulators, make_sink
):
    """HubSpot's daily limit answers 429 with ``policyName: DAILY`` and no Retry-After: the
    sink pauses (counted as ``daily_limit``; the delivery is waiting, not stuck), asks again
    after each pause, and delivers everything once the day is new; every answer's
    remaining allowance is a gauge."""
    from streams.metrics import SINK_DAILY_REMAINING, SINK_RETRIES

    vendor = emulators.hubspot
    sink = await make_sink("crm", batch_size=1, bulk_from=2, backoff_max=0.2)
    await sink.ensure_properties()
    vendor.daily_limit = vendor.daily_used + 2  # two more requests today
    retried = SINK_RETRIES.labels("crm", "daily_limit")._value.get()
    dlq = RecordingDLQ("crm")
    deliverer = Deliverer(sink, dlq)
    delivery = asyncio.create_task(deliverer.deliver(items(*(attribution(n) for n in range(5)))))

    async def refused(times: int) -> None:
        while vendor.over_daily < times:
            await asyncio.sleep(0.02)

    await asyncio.wait_for(refused(6), 10)  # three refused at once, then again after a pause
    assert not delivery.done() and len(vendor.contacts) == 2
    assert deliverer.quota_spent and SINK_DAILY_REMAINING.labels("crm")._value.get() == 0
    vendor.daily_used = 0  # midnight in the account's time zone
    await asyncio.wait_for(delivery, 10)

    assert len(vendor.contacts) == 5 and dlq.sent == [] and not deliverer.quota_spent
    assert SINK_RETRIES.labels("crm", "daily_limit")._value.get() - retried >= 6
    remaining = SINK_DAILY_REMAINING.labels("crm")._value.get()  # the last answer read
    assert vendor.daily_limit - 3 <= remaining <= vendor.daily_limit - 1
    clean(vendor)


def test_a_spent_daily_limit_pauses_the_sink_for_30_s_at_a_time(monkeypatch):
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", "t")
    sink = hubspot.HubSpotSink(hubspot.HubSpotSettings())
    daily = RateLimited("429", retry_after=hubspot.DAILY_RETRY_SECONDS, reason="daily_limit")
    burst = RateLimited("429", retry_after=None)
    deliverer = Deliverer(sink, RecordingDLQ("crm"))
    assert deliverer._backoff(0, daily) == 30.0
    assert deliverer._backoff(0, burst) <= 2 * sink.policy.backoff_base

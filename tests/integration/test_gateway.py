"""The webhook gateway against a real broker: a gateway process, and for the end-to-end
test a worker and the vendor emulators too (gateway.md; issue 18's "Must show")."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections import Counter
from datetime import UTC, datetime

import aiohttp
import orjson
import pytest

from agents.rules import JoinRules
from dev.expectations import vendor_state
from dev.gateway import Signer
from dev.join_sim import JoinSim
from dev.kafka_io import read_topic
from gateway.ids import email_id
from schemas.events import parse_event
from tests.gateway import vectors as v

from .gateway_helpers import published, send, start_gateway
from .test_join import assert_attributions_exact, metric_samples, total
from .test_sinks import expected_vendor_state, wait_for_vendors

pytestmark = pytest.mark.integration

VECTOR_SECRETS = {
    "REFSTREAM_GATEWAY_SHOPIFY_SECRET": v.SHOPIFY_SECRET,
    "REFSTREAM_GATEWAY_STRIPE_SECRET": v.STRIPE_SECRET,
    "REFSTREAM_GATEWAY_REFERRALCANDY_SECRET": v.REFERRALCANDY_SECRET,
    "REFSTREAM_GATEWAY_REWARDFUL_SECRET": v.REWARDFUL_SECRET,
    "REFSTREAM_GATEWAY_INTERNAL_SECRET": v.INTERNAL_SECRET,
}


def values(records) -> list[dict]:
    return [orjson.loads(r.value) for r in records]


def sorted_events(events) -> list[dict]:
    return sorted(events, key=lambda e: e["event_id"])


async def test_vectors_and_refusals_against_the_broker(pipeline):
    """§10's vectors are published exactly as mapped (keys and headers of §7.1 too); 401,
    413, 404 and the canonical 400 store nothing; an authentic unmappable body is 200
    ``dead_lettered`` with its raw bytes in the DLQ."""
    gateway = await start_gateway(
        pipeline,
        **VECTOR_SECRETS,
        REFSTREAM_GATEWAY_IDENTITY="platform",
        REFSTREAM_GATEWAY_MAX_BODY_BYTES="4096",
    )
    signer = Signer(VECTOR_SECRETS, shop=v.SHOP)
    shopify_customer = signer.shopify("customers/create", v.SHOPIFY_CUSTOMER)
    assert shopify_customer.headers["X-Shopify-Hmac-Sha256"] == v.SHOPIFY_CUSTOMER_HMAC
    stale_stripe = signer.stripe(v.STRIPE_SESSION, t=v.STRIPE_T)
    assert stale_stripe.headers["Stripe-Signature"] == v.STRIPE_SIGNATURE
    internal = signer.internal("/v1/events/signups", v.INTERNAL)
    bad_batch = orjson.dumps(
        [
            orjson.loads(v.INTERNAL) | {"event_id": "evt_9"},
            orjson.loads(v.INTERNAL) | {"event_id": "gw_forged"},
        ]
    )
    flipped = signer.shopify("orders/paid", v.SHOPIFY_ORDER)
    flipped = type(flipped)(
        flipped.source, flipped.path, flipped.headers, flipped.body.replace(b"598.94", b"598.95", 1)
    )
    cases = [
        (shopify_customer, 200, ["gw_d08710f9cbde00797027c6494ce62772"]),
        (signer.shopify("orders/paid", v.SHOPIFY_ORDER), 200, [v.SHOPIFY_MAPPED[1]["event_id"]]),
        (signer.stripe(v.STRIPE_SESSION), 200, ["gw_12de976a8c8a0ad74496b76100290866"]),
        (
            signer.referralcandy(v.REFERRALCANDY),
            200,
            ["gw_19613f1a47daab9eac9a6aa7d6a13fd5", "gw_12ffe6557b0e3e301a8ad014b178c35b"],
        ),
        (
            signer.rewardful(v.REWARDFUL),
            200,
            ["gw_273c38b128fb533f2b3254558897e6eb", "gw_c5ee5905f9ed88fde43dbec4f289174b"],
        ),
        (internal, 200, ["evt_2"]),
        (stale_stripe, 401, None),
        (flipped, 401, None),
        (signer.shopify("orders/paid", b"{" + b" " * 5000 + b"}"), 413, None),
        (signer.shopify("orders/paid", b'{"id": 1'), 200, "invalid_json"),
        (signer.internal("/v1/events/signups", bad_batch), 400, "reserved_event_id"),
    ]
    async with aiohttp.ClientSession() as session:
        for request, status, want in cases:
            got_status, answer = await send(session, gateway, request)
            assert got_status == status, (request.path, answer)
            if isinstance(want, list):
                assert answer == {"outcome": "published", "event_ids": want}
            elif want == "invalid_json":
                assert answer == {"outcome": "dead_lettered", "reason": "invalid_json"}
            elif want is not None:
                assert answer["outcome"] == "invalid" and answer["reason"] == want
                assert answer["errors"] == [{"index": 1, "reason": "reserved_event_id"}]
        async with session.post(gateway.url + "/v1/webhooks/unknown", data=b"{}") as r:
            assert r.status == 404

    rc_advocate = {"id": email_id("advocate@example.com"), "email": "advocate@example.com"}
    rc_friend = {"id": email_id("friend@example.com"), "email": "friend@example.com"}
    rc_id = v.REFERRALCANDY_REFERRAL_ID
    want = {
        "referrals": [
            {
                "event_id": "gw_19613f1a47daab9eac9a6aa7d6a13fd5",
                "type": "referral.created",
                "referral_id": rc_id,
                "occurred_at": "2015-06-16T07:23:02Z",
                "advocate": rc_advocate,
                "friend_email": "friend@example.com",
            },
            v.REWARDFUL_MAPPED[0],
        ],
        "signups": [
            v.SHOPIFY_MAPPED[0],
            {
                "event_id": "gw_12ffe6557b0e3e301a8ad014b178c35b",
                "type": "signup.completed",
                "referral_id": rc_id,
                "occurred_at": "2015-06-16T07:23:02Z",
                "customer": rc_friend,
            },
            v.REWARDFUL_MAPPED[1],
            orjson.loads(v.INTERNAL),
        ],
        "orders": [v.SHOPIFY_MAPPED[1], v.STRIPE_ORDER],
    }
    for topic, events in want.items():
        records = await published(pipeline, topic, len(events))
        assert sorted_events(values(records)) == sorted_events(events), topic
        for record in records:
            event = orjson.loads(record.value)
            key = {
                "referrals": event.get("referral_id"),
                "orders": event.get("order_id"),
                "signups": event.get("referral_id") or event["customer"]["id"],
            }[topic]
            assert record.key == key.encode()
            assert dict(record.headers)["gateway.source"] in (
                b"shopify",
                b"stripe",
                b"referralcandy",
                b"rewardful",
                b"internal",
            )
    (internal_record,) = [r for r in await published(pipeline, "signups", 4) if r.key == b"ref_1"]
    assert internal_record.value == v.INTERNAL  # published byte for byte
    letters = await published(pipeline, "dlq_gateway", 2)
    assert sorted((r.key, r.value, dict(r.headers)["error.reason"]) for r in letters) == sorted(
        [
            (b"shopify", b'{"id": 1', b"invalid_json"),
            (b"internal", bad_batch, b"reserved_event_id"),
        ]
    )
    samples = metric_samples(gateway)
    assert total(samples, "refstream_gateway_requests_total", outcome="unauthorized") == 2
    assert total(samples, "refstream_gateway_requests_total", outcome="too_large") == 1
    assert total(samples, "refstream_gateway_events_published_total") == 8


def _at(base: float, seconds: float) -> str:
    return datetime.fromtimestamp(base + seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def journeys(signer: Signer, base: float) -> list:
    """Two referred friends and a stranger, as the platforms report them."""
    T = int(base)
    bob = {"id": 1001, "email": "bob@example.com", "first_name": "Bob", "last_name": "Lee"}
    order = {
        "email": "bob@example.com",
        "currency": "USD",
        "financial_status": "paid",
        "test": False,
        "customer": bob,
    }
    lead = {
        "object": {
            "id": "9d7c3c1e-0000-4000-8000-00000000000b",
            "created_at": _at(base, 0),
            "became_lead_at": _at(base, 30),
            "became_conversion_at": None,
            "customer": {"id": "cus_carol", "email": "carol@example.com", "platform": "stripe"},
            "affiliate": {
                "id": "aff-dan",
                "email": "dan@example.com",
                "first_name": "Dan",
                "campaign": {"id": "camp-1"},
                "stripe_customer_id": None,
            },
        },
        "event": {"id": "rw-evt-1", "type": "referral.lead"},
        "request": {"id": "rw-req-1"},
    }
    converted = orjson.loads(orjson.dumps(lead))
    converted["event"] = {"id": "rw-evt-2", "type": "referral.converted"}
    converted["object"]["became_conversion_at"] = _at(base, 700)
    session = {
        "object": "checkout.session",
        "mode": "payment",
        "payment_status": "paid",
        "payment_intent": "pi_B1",
        "customer": "cus_carol",
        "amount_total": 4990,
        "currency": "eur",
        "customer_details": {"email": "carol@example.com"},
    }
    charge = {
        "id": "ch_B1",
        "object": "charge",
        "payment_intent": "pi_B1",
        "captured": True,
        "amount_captured": 4990,
        "currency": "eur",
        "created": T + 600,
        "customer": "cus_carol",
        "billing_details": {"email": "carol@example.com"},
    }
    refund = {
        "id": "re_B1",
        "object": "refund",
        "payment_intent": "pi_B1",
        "charge": "ch_B1",
        "amount": 1000,
        "currency": "eur",
        "created": T + 900,
        "status": "succeeded",
    }

    def stripe(kind: str, obj: dict, evt: str, created: int) -> dict:
        return {
            "id": evt,
            "object": "event",
            "type": kind,
            "created": created,
            "data": {"object": obj},
        }

    return [
        signer.referralcandy(
            {
                "referral_email": "bob@example.com",
                "referral_timestamp": T,
                "referring_email": "ann@example.com",
            }
        ),
        signer.shopify("customers/create", {**bob, "created_at": _at(base, 60)}, "sh-1"),
        signer.shopify(
            "orders/create",
            {**order, "id": 5001, "total_price": "120.00", "created_at": _at(base, 120)},
            "sh-2",
        ),
        signer.shopify(
            "orders/paid",
            {**order, "id": 5001, "total_price": "120.00", "created_at": _at(base, 120)},
            "sh-3",
        ),
        signer.shopify(
            "orders/paid",
            {**order, "id": 5002, "total_price": "30.00", "created_at": _at(base, 3600)},
            "sh-4",
        ),
        signer.shopify(
            "refunds/create",
            {
                "id": 7001,
                "order_id": 5001,
                "created_at": _at(base, 7200),
                "transactions": [
                    {"kind": "refund", "status": "success", "amount": "20.00", "currency": "USD"}
                ],
            },
            "sh-5",
        ),
        signer.shopify(
            "customers/create",
            {"id": 1009, "email": "eve@example.com", "created_at": _at(base, 100)},
            "sh-6",
        ),
        signer.rewardful(lead),
        signer.rewardful(converted),
        signer.stripe(stripe("checkout.session.completed", session, "evt_B1", T + 600)),
        signer.stripe(stripe("charge.succeeded", charge, "evt_B2", T + 601)),
        signer.stripe(stripe("refund.created", refund, "evt_B3", T + 900)),
    ]


async def test_end_to_end_every_webhook_three_times(sink_pipeline, emulators):
    """A ReferralCandy referral + a Shopify customer, orders and a refund; a Rewardful lead +
    a Stripe checkout and refund: each request delivered three times, and each order
    reported twice (orders/create + orders/paid; checkout session + charge). With
    REFSTREAM_GATEWAY_IDENTITY=email the friend is one customer across the systems: every
    fact is attributed once, and the vendors hold exactly what the rules say."""
    worker = sink_pipeline.worker()
    gateway = await start_gateway(sink_pipeline, REFSTREAM_GATEWAY_IDENTITY="email")
    signer = Signer()
    requests = journeys(signer, time.time() - 86400)
    outcomes: Counter[tuple[str, str]] = Counter()
    async with aiohttp.ClientSession() as session:
        for _ in range(3):
            for request in requests:
                status, answer = await send(session, gateway, signer.resigned(request))
                assert status == 200, answer
                outcomes[(request.source, answer.get("reason") or answer["outcome"])] += 1
    assert outcomes == Counter({
        ("referralcandy", "published"): 3, ("shopify", "published"): 3 * 6,
        ("rewardful", "published"): 6, ("stripe", "published"): 3 * 3,
    })  # fmt: skip

    # What the gateway published, fed to the rules' in-memory model, is what must come out.
    inputs = []
    for topic in ("referrals", "signups", "orders"):
        inputs += [parse_event(r.value) for r in await published(sink_pipeline, topic, 1)]
    expected = JoinSim(rules=JoinRules(pending_ttl=1.0))
    expected.feed(*sorted(inputs, key=lambda e: (e.occurred_at, e.event_id)))
    expected.expire(1.0)
    kinds = Counter(kind for kind, _, _ in expected.kinds())
    # The refunds carry no customer: the join finds it through order_id (gateway.md §11.3).
    assert kinds == Counter(
        friend_signed_up=2, referral_converted=2, order_attributed=1, order_refunded=2
    )
    assert "signup_not_referred" in expected.dropped  # Eve, never referred (§11.6)
    friends = {a.friend.id for a in expected.emitted if a.kind.value == "friend_signed_up"}
    assert friends == {email_id("bob@example.com"), email_id("carol@example.com")}

    await asyncio.to_thread(worker.wait_ready)
    records = await read_topic(
        sink_pipeline.servers,
        sink_pipeline.topics["attributions"],
        until=lambda r: (
            len({orjson.loads(x.value)["attribution_event_id"] for x in r}) >= len(expected.emitted)
        ),
        idle=2.0,
        timeout=90,
    )
    assert_attributions_exact(records, expected)
    want = expected_vendor_state(expected)
    await wait_for_vendors(emulators, want)
    got = vendor_state(emulators)
    for vendor in want:
        assert got[vendor] == want[vendor], vendor


async def refstream(pipeline, *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streams", *args, env={**os.environ, **pipeline.env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode()
    return output.decode()


async def test_gateway_dead_letters_are_listed_and_replayed(pipeline):
    """A dead letter left by an earlier mapping is published once replayed; one that still
    cannot be mapped is counted and stays; --reason picks."""
    pipeline.env |= {**VECTOR_SECRETS, "REFSTREAM_GATEWAY_IDENTITY": "platform"}  # replay too
    gateway = await start_gateway(pipeline)
    signer = Signer(VECTOR_SECRETS, shop=v.SHOP)
    async with aiohttp.ClientSession() as session:
        status, answer = await send(session, gateway, signer.shopify("orders/paid", b"[1"))
    assert (status, answer["outcome"]) == (200, "dead_lettered")
    earlier = signer.shopify("orders/paid", v.SHOPIFY_ORDER)
    await produce_letter(pipeline, earlier)

    listing = await refstream(pipeline, "gateway-dlq-list")
    assert "2 records {'invalid_json': 1, 'schema_invalid': 1}" in listing
    assert "source=shopify event=orders/paid" in listing
    replay = await refstream(pipeline, "gateway-dlq-replay", "--reason", "schema_invalid")
    assert "replayed 1 records" in replay and "{'published': 1}" in replay
    replay = await refstream(pipeline, "gateway-dlq-replay")
    assert "{'unmappable:invalid_json': 1, 'published': 1}" in replay
    (record, again) = await published(pipeline, "orders", 2)
    assert orjson.loads(record.value) == orjson.loads(again.value) == v.SHOPIFY_MAPPED[1]
    assert "2 records" in await refstream(pipeline, "gateway-dlq-list")


async def produce_letter(pipeline, request) -> None:
    """A dead letter as an earlier gateway version wrote it (reason schema_invalid)."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=pipeline.servers)
    await producer.start()
    try:
        headers = [("error.reason", b"schema_invalid"), ("error.message", b"earlier version"),
                   ("gateway.source", b"shopify"), ("gateway.path", request.path.encode()),
                   ("gateway.vendor_event", b"orders/paid"), ("gateway.delivery_id", b"old-1"),
                   ("gateway.received_at", b"2026-12-01T00:00:00.000Z"),
                   ("http.content_type", b"application/json")]  # fmt: skip
        headers += [(f"vendor.{name.lower()}", value.encode())
                    for name, value in request.headers.items() if name.startswith("X-Shopify-")
                    and name != "X-Shopify-Hmac-Sha256"]  # fmt: skip
        await producer.send_and_wait(pipeline.topics["dlq_gateway"], request.body,
                                     key=b"shopify", headers=headers)  # fmt: skip
    finally:
        await producer.stop()

"""Mappings per source (gateway.md §8): the examples map exactly to the events shown there,
each condition ignores with its reason, and bad bodies are unmappable with theirs."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
from multidict import CIMultiDict

from gateway.ids import email_id, gateway_event_id, minor_to_decimal
from gateway.sources import Ignored, Mapped, Unmappable, WebhookRequest
from gateway.sources.canonical import CanonicalOrders, CanonicalSignups
from gateway.sources.referralcandy import ReferralCandy
from gateway.sources.rewardful import Rewardful
from gateway.sources.shopify import Shopify
from gateway.sources.stripe import Stripe

from . import vectors as v


def shopify_request(topic: str, body: bytes | dict, **headers: str) -> WebhookRequest:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    h = CIMultiDict({"X-Shopify-Topic": topic, "X-Shopify-Shop-Domain": v.SHOP.upper(), **headers})
    return WebhookRequest("/v1/webhooks/shopify", h, raw)


def stripe_event(kind: str, obj: dict[str, Any], **extra: Any) -> WebhookRequest:
    event = {
        "id": "evt_1",
        "object": "event",
        "created": 1767225590,
        "type": kind,
        "data": {"object": obj},
        **extra,
    }
    return WebhookRequest("/v1/webhooks/stripe", CIMultiDict(), orjson.dumps(event))


def request(path: str, body: bytes) -> WebhookRequest:
    return WebhookRequest(path, CIMultiDict(), body)


def events(result) -> list[dict]:
    assert isinstance(result, Mapped), result
    return result.events


def test_event_ids_are_the_documented_function():
    material = ["shopify", v.SHOP, "signup.completed", "207119551"]
    assert gateway_event_id(*material) == "gw_d08710f9cbde00797027c6494ce62772"


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [
        (4990, "eur", "49.90"),
        (500, "jpy", "500"),
        (5120, "kwd", "5.120"),
        (5, "usd", "0.05"),
        (0, "usd", "0.00"),
        (7, "bhd", "0.007"),
        (100, "ISK", "1.00"),
    ],
)
def test_minor_units(amount, currency, text):
    assert minor_to_decimal(amount, currency) == text


# --- Shopify ---------------------------------------------------------------------------


def test_shopify_examples_map_as_documented(platform_settings):
    shopify = Shopify(platform_settings)
    got = [
        *events(shopify.map(shopify_request("customers/create", v.SHOPIFY_CUSTOMER))),
        *events(shopify.map(shopify_request("orders/paid", v.SHOPIFY_ORDER))),
        *events(shopify.map(shopify_request("refunds/create", v.SHOPIFY_REFUND))),
    ]
    assert got == v.SHOPIFY_MAPPED


def test_shopify_orders_create_and_paid_are_one_fact(platform_settings):
    shopify = Shopify(platform_settings)
    paid = events(shopify.map(shopify_request("orders/paid", v.SHOPIFY_ORDER)))
    created = events(shopify.map(shopify_request("orders/create", v.SHOPIFY_ORDER)))
    assert paid == created


def test_shopify_with_email_identity(email_settings):
    shopify = Shopify(email_settings)
    (signup,) = events(shopify.map(shopify_request("customers/create", v.SHOPIFY_CUSTOMER)))
    (order,) = events(shopify.map(shopify_request("orders/paid", v.SHOPIFY_ORDER)))
    person = {
        "id": email_id("bob.norman@mail.example.com"),
        "platform_id": "gid://shopify/Customer/207119551",
    }
    assert signup["customer"] | person == signup["customer"]
    assert order["customer"] | person == order["customer"]
    assert signup["event_id"] == v.SHOPIFY_MAPPED[0]["event_id"]


def test_shopify_delivery_id_and_vendor_event(platform_settings):
    result = Shopify(platform_settings).map(
        shopify_request("orders/paid", v.SHOPIFY_ORDER, **{"X-Shopify-Webhook-Id": "wh-1"})
    )
    assert (result.vendor_event, result.delivery_id) == ("orders/paid", "wh-1")
    result = Shopify(platform_settings).map(
        shopify_request(
            "orders/paid",
            v.SHOPIFY_ORDER,
            **{"X-Shopify-Webhook-Id": "wh-1", "X-Shopify-Event-Id": "ev-1"},
        )
    )
    assert result.delivery_id == "ev-1"


def _order(**changes) -> dict:
    order = orjson.loads(v.SHOPIFY_ORDER)
    order.update(changes)
    return {k: val for k, val in order.items() if val is not None}


@pytest.mark.parametrize(
    ("topic", "body", "reason"),
    [
        (
            "customers/create",
            {"id": 1, "email": "", "created_at": "2025-01-01T00:00:00Z"},
            "no_email",
        ),
        ("orders/create", _order(financial_status="pending"), "not_paid"),
        ("orders/paid", _order(test=True), "test_order"),
        ("orders/paid", _order(customer=None, email=None), "no_customer"),
        (
            "refunds/create",
            {
                "id": 1,
                "order_id": 2,
                "transactions": [
                    {"kind": "refund", "status": "failure", "amount": "1", "currency": "USD"}
                ],
            },
            "no_refund_transaction",
        ),
        ("orders/updated", _order(), "event_type_ignored"),
    ],
)
def test_shopify_conditions_ignore_with_their_reason(platform_settings, topic, body, reason):
    result = Shopify(platform_settings).map(shopify_request(topic, body))
    assert isinstance(result, Ignored) and result.reason == reason


def test_shopify_guest_order_uses_the_order_email(platform_settings):
    (order,) = events(
        Shopify(platform_settings).map(
            shopify_request(
                "orders/paid", _order(customer=None, contact_email="g@example.com", email=None)
            )
        )
    )
    assert order["customer"] == {"id": email_id("g@example.com"), "email": "g@example.com"}


def test_shopify_refund_sums_exactly_and_refuses_mixed_currency(platform_settings):
    refund = orjson.loads(v.SHOPIFY_REFUND)
    t = refund["transactions"][0]
    refund["transactions"] = [
        t | {"amount": "0.10"},
        t | {"amount": "0.20"},
        t | {"amount": "5", "kind": "sale"},
    ]
    (event,) = events(Shopify(platform_settings).map(shopify_request("refunds/create", refund)))
    assert event["amount"] == "0.30"
    refund["transactions"][1]["currency"] = "EUR"
    with pytest.raises(Unmappable) as exc:
        Shopify(platform_settings).map(shopify_request("refunds/create", refund))
    assert exc.value.reason == "mixed_currency"


@pytest.mark.parametrize(
    ("headers", "body", "reason"),
    [
        ({"X-Shopify-Topic": ""}, v.SHOPIFY_ORDER, "missing_header"),
        ({"X-Shopify-Shop-Domain": ""}, v.SHOPIFY_ORDER, "missing_header"),
        ({}, b"{not json", "invalid_json"),
        ({}, b"[1,2]", "invalid_json"),
        ({}, orjson.dumps(_order(id=None)), "missing_field"),
        ({}, orjson.dumps(_order(note_attributes="x")), "invalid_field"),
    ],
)
def test_shopify_unmappable_bodies(platform_settings, headers, body, reason):
    with pytest.raises(Unmappable) as exc:
        Shopify(platform_settings).map(shopify_request("orders/paid", body, **headers))
    assert exc.value.reason == reason


# --- Stripe ----------------------------------------------------------------------------


def test_stripe_session_and_refund_map_as_documented(platform_settings):
    stripe = Stripe(platform_settings)
    session = stripe.map(WebhookRequest("/v1/webhooks/stripe", CIMultiDict(), v.STRIPE_SESSION))
    assert events(session) == [v.STRIPE_ORDER]
    assert (session.vendor_event, session.delivery_id) == (
        "checkout.session.completed",
        "evt_1Pgc76B7WZ01zgkWwyRHS12y",
    )
    assert events(stripe.map(stripe_event("refund.created", v.STRIPE_REFUND_OBJECT))) == [
        v.STRIPE_REFUND
    ]


def charge(**changes) -> dict:
    return {
        "id": "ch_1",
        "object": "charge",
        "amount_captured": 4990,
        "currency": "eur",
        "captured": True,
        "created": 1767225590,
        "customer": "cus_bob",
        "payment_intent": "pi_1PgafyB7WZ01zgkWSjxsAJo3",
        "billing_details": {"email": "bob@example.com"},
        "metadata": {"referral_id": "ref_1"},
    } | changes


def test_stripe_session_and_charge_are_one_fact(platform_settings):
    stripe = Stripe(platform_settings)
    session = events(stripe.map(WebhookRequest("/x", CIMultiDict(), v.STRIPE_SESSION)))
    (from_charge,) = events(stripe.map(stripe_event("charge.succeeded", charge())))
    assert from_charge["event_id"] == session[0]["event_id"]
    assert from_charge["order_id"] == session[0]["order_id"]


def test_stripe_charge_refunded_with_embedded_refunds(platform_settings):
    refunds = {
        "data": [
            v.STRIPE_REFUND_OBJECT,
            v.STRIPE_REFUND_OBJECT | {"id": "re_2", "status": "failed"},
        ]
    }
    got = events(
        Stripe(platform_settings).map(stripe_event("charge.refunded", charge(refunds=refunds)))
    )
    assert got == [v.STRIPE_REFUND]


def test_stripe_connect_account_scopes_the_ids(platform_settings):
    stripe = Stripe(platform_settings)
    (own,) = events(stripe.map(stripe_event("charge.captured", charge())))
    (other,) = events(stripe.map(stripe_event("charge.captured", charge(), account="acct_9")))
    assert own["event_id"] != other["event_id"]


def test_stripe_guest_checkout_email_identity(email_settings):
    session = orjson.loads(v.STRIPE_SESSION)
    session["data"]["object"]["customer"] = None
    (order,) = events(
        Stripe(email_settings).map(WebhookRequest("/x", CIMultiDict(), orjson.dumps(session)))
    )
    assert order["customer"] == {"id": email_id("bob@example.com"), "email": "bob@example.com"}


@pytest.mark.parametrize(
    ("kind", "obj", "reason"),
    [
        ("checkout.session.completed", {"mode": "subscription"}, "not_payment_mode"),
        ("checkout.session.completed", {"mode": "payment", "payment_status": "unpaid"}, "not_paid"),
        ("checkout.session.async_payment_succeeded", {"mode": "setup"}, "not_payment_mode"),
        ("charge.succeeded", charge(captured=False), "not_captured"),
        ("refund.updated", v.STRIPE_REFUND_OBJECT | {"status": "pending"}, "refund_not_succeeded"),
        ("charge.refunded", charge(), "refunds_not_expanded"),
        ("customer.created", {}, "event_type_ignored"),
    ],
)
def test_stripe_conditions_ignore_with_their_reason(platform_settings, kind, obj, reason):
    result = Stripe(platform_settings).map(stripe_event(kind, obj))
    assert isinstance(result, Ignored) and result.reason == reason


def test_stripe_thin_events_are_ignored(platform_settings):
    body = orjson.dumps({"id": "evt_1", "object": "v2.core.event", "type": "v1.billing.meter"})
    result = Stripe(platform_settings).map(WebhookRequest("/x", CIMultiDict(), body))
    assert isinstance(result, Ignored) and result.reason == "thin_event"


@pytest.mark.parametrize(
    ("obj", "reason"),
    [
        (charge(amount_captured="49.90"), "invalid_field"),
        (charge(created=None), "missing_field"),
        (charge(currency=None), "missing_field"),
    ],
)
def test_stripe_unmappable(platform_settings, obj, reason):
    with pytest.raises(Unmappable) as exc:
        Stripe(platform_settings).map(stripe_event("charge.captured", obj))
    assert (exc.value.reason, exc.value.vendor_event, exc.value.delivery_id) == (
        reason,
        "charge.captured",
        "evt_1",
    )


# --- ReferralCandy ---------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["platform_settings", "email_settings"])
def test_referralcandy_vector(fixture, request):
    """§10.3's events, with the email-derived ids that §11.2 puts in place of rc_adv_/rc_cus_
    in both identity modes."""
    result = ReferralCandy(request.getfixturevalue(fixture)).map(
        WebhookRequest("/x", CIMultiDict(), v.REFERRALCANDY)
    )
    rid = v.REFERRALCANDY_REFERRAL_ID
    assert events(result) == [
        {
            "event_id": "gw_19613f1a47daab9eac9a6aa7d6a13fd5",
            "type": "referral.created",
            "referral_id": rid,
            "occurred_at": "2015-06-16T07:23:02Z",
            "advocate": {"id": email_id("advocate@example.com"), "email": "advocate@example.com"},
            "friend_email": "friend@example.com",
        },
        {
            "event_id": "gw_12ffe6557b0e3e301a8ad014b178c35b",
            "type": "signup.completed",
            "referral_id": rid,
            "occurred_at": "2015-06-16T07:23:02Z",
            "customer": {"id": email_id("friend@example.com"), "email": "friend@example.com"},
        },
    ]
    assert result.vendor_event == "referral_purchase"


def test_referralcandy_same_pair_same_ids_whatever_the_case(platform_settings):
    body = orjson.loads(v.REFERRALCANDY)
    body |= {"referral_email": " Friend@Example.COM", "referral_timestamp": 1434439999}
    again = events(ReferralCandy(platform_settings).map(request("/x", orjson.dumps(body))))
    assert again[0]["referral_id"] == v.REFERRALCANDY_REFERRAL_ID
    assert again[0]["event_id"] == "gw_19613f1a47daab9eac9a6aa7d6a13fd5"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"referral_email": None}, "missing_field"),
        ({"referral_timestamp": "yesterday"}, "invalid_field"),
    ],
)
def test_referralcandy_unmappable(platform_settings, change, reason):
    body = {
        k: val for k, val in (orjson.loads(v.REFERRALCANDY) | change).items() if val is not None
    }
    with pytest.raises(Unmappable) as exc:
        ReferralCandy(platform_settings).map(request("/x", orjson.dumps(body)))
    assert exc.value.reason == reason


# --- Rewardful -------------------------------------------------------------------------


def test_rewardful_maps_as_documented(platform_settings):
    result = Rewardful(platform_settings).map(request("/x", v.REWARDFUL))
    assert events(result) == v.REWARDFUL_MAPPED
    assert (result.vendor_event, result.delivery_id) == (
        "referral.converted",
        "7fcdc81d-996a-4b7b-8faf-1db98b9d5507",
    )


def test_rewardful_lead_and_conversion_are_one_fact(platform_settings):
    body = orjson.loads(v.REWARDFUL)
    body["event"]["type"] = "referral.lead"
    lead = events(Rewardful(platform_settings).map(request("/x", orjson.dumps(body))))
    assert [e["event_id"] for e in lead] == [e["event_id"] for e in v.REWARDFUL_MAPPED]


def test_rewardful_email_identity(email_settings):
    referral, signup = events(Rewardful(email_settings).map(request("/x", v.REWARDFUL)))
    assert referral["advocate"]["id"] == email_id("james.bond@mi6.co.uk")
    assert referral["advocate"]["platform_id"] == "dc939584-a94a-4bdf-b8f4-8d255aae729c"
    assert signup["customer"] == {
        "id": email_id("fred@example.com"),
        "platform_id": "cus_ABC123",
        "email": "fred@example.com",
    }


@pytest.mark.parametrize(
    ("kind", "customer", "reason"),
    [
        ("referral.created", None, "no_customer"),
        ("referral.lead", {"id": "cus_1"}, "no_customer"),
        ("sale.created", None, "event_type_ignored"),
        ("referral.deleted", None, "event_type_ignored"),
    ],
)
def test_rewardful_conditions(platform_settings, kind, customer, reason):
    body = orjson.loads(v.REWARDFUL)
    body["event"]["type"] = kind
    body["object"]["customer"] = customer
    result = Rewardful(platform_settings).map(request("/x", orjson.dumps(body)))
    assert isinstance(result, Ignored) and result.reason == reason


def test_rewardful_affiliate_without_email_is_unmappable(platform_settings):
    body = orjson.loads(v.REWARDFUL)
    del body["object"]["affiliate"]["email"]
    with pytest.raises(Unmappable) as exc:
        Rewardful(platform_settings).map(request("/x", orjson.dumps(body)))
    assert exc.value.reason == "missing_field"


# --- canonical -------------------------------------------------------------------------


def test_canonical_single_event_is_kept_byte_for_byte(platform_settings):
    result = CanonicalSignups(platform_settings).map(request("/v1/events/signups", v.INTERNAL))
    assert result.raw == [v.INTERNAL]


def order(event_id: str, amount: Any = "49.90") -> dict:
    return {
        "event_id": event_id,
        "type": "order.completed",
        "order_id": "o1",
        "occurred_at": "2026-11-22T12:00:00Z",
        "customer": {"id": "c1"},
        "amount": amount,
        "currency": "EUR",
    }


def test_canonical_array_keeps_each_element_as_sent(platform_settings):
    body = (
        b' [ {"event_id":"a","type":"order.completed","order_id":"o1",'
        b'"occurred_at":"2026-11-22T12:00:00Z","customer":{"id":"c1"},"amount":49.90,'
        b'"currency":"EUR"} ,\n' + orjson.dumps(order("b")) + b"]"
    )
    result = CanonicalOrders(platform_settings).map(request("/v1/events/orders", body))
    assert result.raw[0].endswith(b'"amount":49.90,"currency":"EUR"}')  # the number, unchanged
    assert result.raw[1] == orjson.dumps(order("b"))


def test_canonical_failures_name_their_indexes(platform_settings):
    bad = [
        order("ok"),
        order("gw_x"),
        {**order("c"), "type": "signup.completed"},
        order("d", amount="-1"),
        order("e", amount=None),
        {**order("f"), "type": "nope"},
    ]
    with pytest.raises(Unmappable) as exc:
        CanonicalOrders(platform_settings).map(request("/v1/events/orders", orjson.dumps(bad)))
    assert exc.value.failures == [
        (1, "reserved_event_id"),
        (2, "type_mismatch"),
        (3, "schema_invalid"),
        (4, "schema_invalid"),
        (5, "type_mismatch"),
    ]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"[]", "empty_batch"),
        (orjson.dumps([order(str(i)) for i in range(501)]), "too_many_events"),
        (b"{", "invalid_json"),
        (b"[{}] x", "invalid_json"),
        (b"\xff", "invalid_json"),
    ],
)
def test_canonical_batch_rules(platform_settings, body, reason):
    with pytest.raises(Unmappable) as exc:
        CanonicalOrders(platform_settings).map(request("/v1/events/orders", body))
    assert exc.value.reason == reason


def test_canonical_500_events_pass(platform_settings):
    body = orjson.dumps([order(str(i)) for i in range(500)])
    assert (
        len(CanonicalOrders(platform_settings).map(request("/v1/events/orders", body)).raw) == 500
    )


def test_mappings_do_not_touch_their_input(platform_settings):
    body = copy.copy(v.SHOPIFY_ORDER)
    Shopify(platform_settings).map(shopify_request("orders/paid", body))
    assert body == v.SHOPIFY_ORDER

"""Shopify HTTPS webhooks (gateway.md §8.1): customers, paid orders and refunds."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from gateway.ids import gateway_event_id
from gateway.signatures import shopify_valid
from gateway.sources.base import (
    Ignored,
    Mapped,
    Source,
    Unmappable,
    WebhookRequest,
    compact,
    first,
    labelled,
    load_json_object,
    need,
    obj,
    outcome,
    text,
)
from schemas.events import MONEY, decimal_text

__all__ = ["Shopify"]

CUSTOMER_GID = "gid://shopify/Customer/"
ORDER_GID = "gid://shopify/Order/"


class Shopify(Source):
    name = "shopify"
    path = "/v1/webhooks/shopify"
    secret_setting = "shopify_secret"
    mapped_headers = (
        "X-Shopify-Topic", "X-Shopify-Shop-Domain", "X-Shopify-Event-Id", "X-Shopify-Webhook-Id",
    )  # fmt: skip

    def verify(self, headers: Mapping[str, str], body: bytes, now: float) -> bool:
        return shopify_valid(self.secret, body, headers.get("X-Shopify-Hmac-Sha256"))

    def map(self, request: WebhookRequest) -> Mapped | Ignored:
        h = request.headers
        topic = h.get("X-Shopify-Topic", "")
        delivery = first(h.get("X-Shopify-Event-Id"), h.get("X-Shopify-Webhook-Id")) or ""
        with labelled(topic, delivery):
            shop = h.get("X-Shopify-Shop-Domain", "").strip().lower()
            if not topic or not shop:
                missing = "X-Shopify-Topic" if not topic else "X-Shopify-Shop-Domain"
                raise Unmappable("missing_header", f"{missing} header is missing")
            body = load_json_object(request.body)
            if topic == "customers/create":
                result = self._signup(shop, body)
            elif topic in ("orders/paid", "orders/create"):
                result = self._order(shop, topic, body)
            elif topic == "refunds/create":
                result = self._refund(shop, body)
            else:
                result = "event_type_ignored"
        return outcome(result, topic, delivery)

    def _signup(self, shop: str, c: dict[str, Any]) -> dict[str, Any] | str:
        if not c.get("email"):
            return "no_email"
        cid = text(need(c, "id", "customer"), "customer.id")
        return compact({
            "event_id": gateway_event_id(self.name, shop, "signup.completed", cid),
            "type": "signup.completed",
            "occurred_at": need(c, "created_at", "customer"),
            "customer": {
                **self.person(CUSTOMER_GID + cid, c["email"]),
                "email": c["email"],
                "first_name": c.get("first_name"),
                "last_name": c.get("last_name"),
            },
        })  # fmt: skip

    def _order(self, shop: str, topic: str, o: dict[str, Any]) -> dict[str, Any] | str:
        if topic == "orders/create" and o.get("financial_status") != "paid":
            return "not_paid"
        if o.get("test") is True:
            return "test_order"
        customer = obj(o.get("customer"), "customer")
        email = first(customer.get("email"), o.get("email"), o.get("contact_email"))
        cid = text(customer.get("id"), "customer.id")
        if cid is None and not email:
            return "no_customer"
        oid = text(need(o, "id", "order"), "order.id")
        money = obj(obj(o.get("total_price_set"), "total_price_set").get("presentment_money"),
                    "total_price_set.presentment_money")  # fmt: skip
        return compact({
            "event_id": gateway_event_id(self.name, shop, "order.completed", oid),
            "type": "order.completed",
            "order_id": ORDER_GID + oid,
            "referral_id": self._referral_hint(o),
            "occurred_at": need(o, "created_at", "order"),
            "customer": {
                **self.person(CUSTOMER_GID + cid if cid else None, email),
                "email": email,
                "first_name": customer.get("first_name"),
                "last_name": customer.get("last_name"),
            },
            "amount": first(money.get("amount"), o.get("total_price")),
            "currency": first(
                money.get("currency_code"), o.get("presentment_currency"), o.get("currency")
            ),
        })  # fmt: skip

    def _referral_hint(self, o: dict[str, Any]) -> str | None:
        attributes = o.get("note_attributes") or []
        if not isinstance(attributes, list):
            raise Unmappable("invalid_field", "note_attributes must be an array")
        wanted = self.settings.shopify_referral_attribute
        for attribute in attributes:
            if isinstance(attribute, dict) and attribute.get("name") == wanted:
                value = attribute.get("value")
                return value.strip() or None if isinstance(value, str) else text(value, wanted)
        return None

    def _refund(self, shop: str, r: dict[str, Any]) -> dict[str, Any] | str:
        transactions = r.get("transactions") or []
        if not isinstance(transactions, list):
            raise Unmappable("invalid_field", "transactions must be an array")
        refunds = [
            t for t in transactions
            if isinstance(t, dict) and t.get("kind") == "refund" and t.get("status") == "success"
        ]  # fmt: skip
        if not refunds:
            return "no_refund_transaction"
        currencies = {str(need(t, "currency", "transaction")).upper() for t in refunds}
        if len(currencies) > 1:
            raise Unmappable("mixed_currency", "refund transactions have differing currencies")
        total = Decimal(0)
        for t in refunds:
            try:
                total = MONEY.add(total, Decimal(str(need(t, "amount", "transaction"))))
            except (InvalidOperation, ArithmeticError):
                raise Unmappable("invalid_field", "transaction.amount is not a decimal") from None
        rid = text(need(r, "id", "refund"), "refund.id")
        return compact({
            "event_id": gateway_event_id(self.name, shop, "order.refunded", rid),
            "type": "order.refunded",
            "order_id": ORDER_GID + str(text(need(r, "order_id", "refund"), "refund.order_id")),
            "occurred_at": need(r, "created_at", "refund"),
            "amount": decimal_text(total),
            "currency": currencies.pop(),
        })  # fmt: skip

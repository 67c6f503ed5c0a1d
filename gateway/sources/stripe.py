"""Stripe snapshot events (gateway.md §8.2): payments and refunds.

The order id is the PaymentIntent id (else the Charge id): the one id that the Checkout
Session, the Charge and the Refund all carry, so a refund finds its order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.ids import gateway_event_id, minor_to_decimal, unix_to_rfc3339
from gateway.signatures import timestamped_valid
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
)

__all__ = ["Stripe"]

ORDER_TYPES = (
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "charge.succeeded",
    "charge.captured",
)
REFUND_TYPES = ("refund.created", "refund.updated")


def _id(value: Any) -> str | None:
    """An id field that may be expanded into its object."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def _time(value: Any, where: str) -> str:
    try:
        return unix_to_rfc3339(value)
    except ValueError as exc:
        raise Unmappable("invalid_field", f"{where} {exc}") from None


def _amount(value: Any, currency: str, where: str) -> str:
    try:
        return minor_to_decimal(value, currency)
    except ValueError as exc:
        raise Unmappable("invalid_field", f"{where} {exc}") from None


class Stripe(Source):
    name = "stripe"
    path = "/v1/webhooks/stripe"
    secret_setting = "stripe_secret"

    def verify(self, headers: Mapping[str, str], body: bytes, now: float) -> bool:
        return timestamped_valid(self.secret, body, headers.get("Stripe-Signature"), now,
                                 self.settings.signature_tolerance_seconds)  # fmt: skip

    def map(self, request: WebhookRequest) -> Mapped | Ignored:
        body = load_json_object(request.body)
        kind = body.get("type") if isinstance(body.get("type"), str) else ""
        delivery = body.get("id") if isinstance(body.get("id"), str) else ""
        with labelled(kind, delivery):
            if body.get("object") == "v2.core.event":
                return Ignored("thin_event", kind, delivery)
            if body.get("object") != "event":
                raise Unmappable("invalid_field", 'object must be "event"')
            return outcome(self._map(body, kind), kind, delivery)

    def _map(self, event: dict[str, Any], kind: str) -> list[dict[str, Any]] | str:
        if kind not in ORDER_TYPES and kind not in REFUND_TYPES and kind != "charge.refunded":
            return "event_type_ignored"
        scope = event.get("account") if isinstance(event.get("account"), str) else ""
        o = obj(need(obj(need(event, "data", "event"), "data"), "object", "data"), "data.object")
        if kind.startswith("checkout.session."):
            if o.get("mode") != "payment":
                return "not_payment_mode"
            if kind == "checkout.session.completed" and o.get("payment_status") != "paid":
                return "not_paid"
            return [self._session_order(scope, event, o)]
        if kind in ("charge.succeeded", "charge.captured"):
            if kind == "charge.succeeded" and o.get("captured") is not True:
                return "not_captured"
            return [self._charge_order(scope, o)]
        if kind in REFUND_TYPES:
            if o.get("status") != "succeeded":
                return "refund_not_succeeded"
            return [self._refund(scope, o)]
        refunds = obj(o.get("refunds"), "refunds").get("data")  # charge.refunded
        if not isinstance(refunds, list):
            return "refunds_not_expanded"
        done = [obj(r, "refund") for r in refunds]
        done = [r for r in done if r.get("status") == "succeeded"]
        return [self._refund(scope, r) for r in done] or "refund_not_succeeded"

    def _order(self, scope: str, order_id: str, **fields: Any) -> dict[str, Any]:
        return compact({
            "event_id": gateway_event_id(self.name, scope, "order.completed", order_id),
            "type": "order.completed",
            "order_id": order_id,
            **fields,
        })  # fmt: skip

    def _hint(self, o: dict[str, Any]) -> str | None:
        value = obj(o.get("metadata"), "metadata").get(self.settings.stripe_referral_metadata_key)
        return value if isinstance(value, str) and value else None

    def _session_order(
        self, scope: str, event: dict[str, Any], s: dict[str, Any]
    ) -> dict[str, Any]:
        currency = str(need(s, "currency", "session"))
        order_id = _id(need(s, "payment_intent", "session"))
        if order_id is None:
            raise Unmappable("invalid_field", "session.payment_intent must be an id")
        email = first(obj(s.get("customer_details"), "customer_details").get("email"),
                      s.get("customer_email"))  # fmt: skip
        return self._order(
            scope, order_id,
            referral_id=self._hint(s),
            occurred_at=_time(need(event, "created", "event"), "event.created"),
            customer={**self.person(_id(s.get("customer")), email), "email": email},
            amount=_amount(need(s, "amount_total", "session"), currency, "amount_total"),
            currency=currency.upper(),
        )  # fmt: skip

    def _charge_order(self, scope: str, c: dict[str, Any]) -> dict[str, Any]:
        currency = str(need(c, "currency", "charge"))
        order_id = _id(c.get("payment_intent")) or _id(need(c, "id", "charge"))
        email = first(obj(c.get("billing_details"), "billing_details").get("email"),
                      c.get("receipt_email"))  # fmt: skip
        return self._order(
            scope, str(order_id),
            referral_id=self._hint(c),
            occurred_at=_time(need(c, "created", "charge"), "charge.created"),
            customer={**self.person(_id(c.get("customer")), email), "email": email},
            amount=_amount(need(c, "amount_captured", "charge"), currency, "amount_captured"),
            currency=currency.upper(),
        )  # fmt: skip

    def _refund(self, scope: str, r: dict[str, Any]) -> dict[str, Any]:
        currency = str(need(r, "currency", "refund"))
        refund_id = _id(need(r, "id", "refund"))
        order_id = _id(r.get("payment_intent")) or _id(r.get("charge"))
        if refund_id is None or order_id is None:
            raise Unmappable("missing_field", "refund.payment_intent and refund.charge missing")
        return compact({
            "event_id": gateway_event_id(self.name, scope, "order.refunded", refund_id),
            "type": "order.refunded",
            "order_id": order_id,
            "occurred_at": _time(need(r, "created", "refund"), "refund.created"),
            "amount": _amount(need(r, "amount", "refund"), currency, "refund.amount"),
            "currency": currency.upper(),
        })  # fmt: skip

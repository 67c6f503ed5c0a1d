"""Rewardful webhooks (gateway.md §8.4): a referral that became a lead or a conversion is a
referral and its friend's signup. Sales are not mapped: orders come from the payment or
shop source, and mapping both would count revenue twice."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.ids import gateway_event_id
from gateway.signatures import hex_hmac_sha256_valid
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

__all__ = ["Rewardful"]


class Rewardful(Source):
    name = "rewardful"
    path = "/v1/webhooks/rewardful"
    secret_setting = "rewardful_secret"

    def verify(self, headers: Mapping[str, str], body: bytes, now: float) -> bool:
        return hex_hmac_sha256_valid(self.secret, body, headers.get("X-Rewardful-Signature"))

    def map(self, request: WebhookRequest) -> Mapped | Ignored:
        body = load_json_object(request.body)
        try:
            event = obj(body.get("event"), "event")
        except Unmappable:
            event = {}
        kind = event.get("type") if isinstance(event.get("type"), str) else ""
        delivery = event.get("id") if isinstance(event.get("id"), str) else ""
        with labelled(kind, delivery):
            return outcome(self._map(body, kind), kind, delivery)

    def _map(self, body: dict[str, Any], kind: str) -> list[dict[str, Any]] | str:
        if not kind:
            raise Unmappable("missing_field", "event.type is missing")
        if kind == "referral.created":
            return "no_customer"
        if kind not in ("referral.lead", "referral.converted"):
            return "event_type_ignored"
        o = obj(need(body, "object", "body"), "object")
        customer = obj(o.get("customer"), "object.customer")
        email = customer.get("email")
        if not email:
            return "no_customer"
        oid = text(need(o, "id", "object"), "object.id")
        affiliate = obj(need(o, "affiliate", "object"), "object.affiliate")
        rid = f"rw_{oid}"
        advocate_id = first(affiliate.get("stripe_customer_id"), affiliate.get("id"))
        advocate_email = need(affiliate, "email", "object.affiliate")
        referral = compact({
            "event_id": gateway_event_id(self.name, "", "referral.created", oid),
            "type": "referral.created",
            "referral_id": rid,
            "occurred_at": need(o, "created_at", "object"),
            "advocate": {
                **self.person(text(advocate_id, "affiliate.id"), advocate_email),
                "email": advocate_email,
                "first_name": affiliate.get("first_name"),
                "last_name": affiliate.get("last_name"),
            },
            "friend_email": email,
            "campaign_id": obj(affiliate.get("campaign"), "affiliate.campaign").get("id"),
        })  # fmt: skip
        became = first(o.get("became_lead_at"), o.get("became_conversion_at"))
        if became is None:
            raise Unmappable("missing_field", "object.became_lead_at is missing")
        customer_id = first(customer.get("id"), o.get("stripe_customer_id"))
        signup = compact({
            "event_id": gateway_event_id(self.name, "", "signup.completed", oid),
            "type": "signup.completed",
            "referral_id": rid,
            "occurred_at": became,
            "customer": {**self.person(text(customer_id, "customer.id"), email), "email": email},
        })  # fmt: skip
        return [referral, signup]

"""The attribution event of contract section 5 and its deterministic id."""

from __future__ import annotations

import hashlib
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from schemas.events import Amount, Currency, Timestamp

__all__ = [
    "AttributionEvent",
    "AttributionKind",
    "OrderRef",
    "Party",
    "Totals",
    "attribution_event_id",
]


class AttributionKind(StrEnum):
    FRIEND_SIGNED_UP = "friend_signed_up"
    REFERRAL_CONVERTED = "referral_converted"
    ORDER_ATTRIBUTED = "order_attributed"
    ORDER_REFUNDED = "order_refunded"
    REFERRAL_REJECTED = "referral_rejected"
    SIGNUP_UNATTRIBUTED = "signup_unattributed"
    ORDER_UNATTRIBUTED = "order_unattributed"


ORDER_KINDS = frozenset(
    {
        AttributionKind.REFERRAL_CONVERTED,
        AttributionKind.ORDER_ATTRIBUTED,
        AttributionKind.ORDER_REFUNDED,
        AttributionKind.ORDER_UNATTRIBUTED,
    }
)


class Party(BaseModel):
    """An advocate or a friend as carried on attribution events."""

    model_config = ConfigDict(frozen=True)

    id: str | None = None
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None


class OrderRef(BaseModel):
    model_config = ConfigDict(frozen=True)

    order_id: str
    amount: Amount
    currency: Currency


class Totals(BaseModel):
    model_config = ConfigDict(frozen=True)

    orders: int = 0
    revenue: dict[str, str] = {}


class AttributionEvent(BaseModel):
    model_config = ConfigDict(frozen=True)

    attribution_event_id: str
    kind: AttributionKind
    referral_id: str | None
    campaign_id: str | None = None
    advocate: Party | None = None
    friend: Party | None = None
    order: OrderRef | None = None
    totals: Totals = Totals()
    reason: str | None = None
    source_event_id: str
    occurred_at: Timestamp
    emitted_at: Timestamp | None = None

    def content_key(self) -> dict:
        """Everything but ``emitted_at``: a re-emission after a crash must match this."""
        return self.model_dump(mode="json", exclude={"emitted_at"})


def attribution_event_id(referral_id: str | None, kind: str, source_event_id: str) -> str:
    """Rule 12: a pure function of (referral_id, kind, source_event_id); 32 hex chars.

    32 characters fit Mixpanel's 36-character ``$insert_id`` and Klaviyo's ``unique_id``.
    """
    text = f"{referral_id or ''}\x1f{kind}\x1f{source_event_id}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]

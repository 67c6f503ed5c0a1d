"""What analytics destinations (Mixpanel, Segment) are told of an attribution: ids, kinds,
amounts as exact decimal strings and currencies; never emails or names."""

from __future__ import annotations

from typing import Any

from schemas.attribution import AttributionEvent
from schemas.events import decimal_text

__all__ = ["event_name", "properties"]


def event_name(event: AttributionEvent) -> str:
    """``friend_signed_up`` -> ``Referral Friend Signed Up``."""
    return "Referral " + event.kind.value.replace("_", " ").title()


def properties(event: AttributionEvent, amount: str = "amount") -> dict[str, Any]:
    """The event's properties without the empty ones; the order's amount under ``amount``."""
    facts = {
        "kind": event.kind.value,
        "referral_id": event.referral_id,
        "campaign_id": event.campaign_id,
        "reason": event.reason,
        "advocate_id": event.advocate.id if event.advocate else None,
        "referral_orders": event.totals.orders,
    }
    if event.order is not None:
        facts |= {
            "order_id": event.order.order_id,
            amount: decimal_text(event.order.amount),
            "currency": event.order.currency,
        }
    return {key: value for key, value in facts.items() if value is not None}

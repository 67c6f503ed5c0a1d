"""Builders for input events in the contract's shape (section 4)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schemas.events import parse_event

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
SECOND = 1 / 86400
"""In days, the unit of the builders' ``at``."""


def ts(days: float = 0, hours: float = 0) -> str:
    return (T0 + timedelta(days=days, hours=hours)).isoformat().replace("+00:00", "Z")


def _parse(data: dict):
    import orjson

    return parse_event(orjson.dumps(data))


def referral(ref="ref_1", event_id=None, *, at=0, adv="cus_adv", adv_email="ann@example.com",
             friend_email="bob@example.com", campaign="spring"):  # fmt: skip
    data = {
        "event_id": event_id or f"evt_r_{ref}", "type": "referral.created", "referral_id": ref,
        "occurred_at": ts(at), "campaign_id": campaign,
        "advocate": {"id": adv, "email": adv_email, "first_name": "Ann", "last_name": "Lee"},
    }  # fmt: skip
    if friend_email:
        data["friend_email"] = friend_email
    return _parse(data)


def signup(ref="ref_1", event_id=None, *, at=1, cus="cus_bob", email="Bob@Example.com"):
    data = {
        "event_id": event_id or f"evt_s_{cus}_{ref}", "type": "signup.completed",
        "occurred_at": ts(at), "customer": {"id": cus, "email": email, "first_name": "Bob"},
    }  # fmt: skip
    if ref:
        data["referral_id"] = ref
    return _parse(data)


def order(order_id="ord_1", event_id=None, *, at=2, cus="cus_bob", amount="49.90",
          currency="EUR", ref=None):  # fmt: skip
    data = {
        "event_id": event_id or f"evt_o_{order_id}", "type": "order.completed",
        "order_id": order_id, "occurred_at": ts(at), "customer": {"id": cus},
        "amount": amount, "currency": currency,
    }  # fmt: skip
    if ref:
        data["referral_id"] = ref
    return _parse(data)


def refund(order_id="ord_1", event_id=None, *, at=5, cus="cus_bob", amount="49.90",
           currency="EUR"):  # fmt: skip
    """``cus=None``: a refund by order only (rule 9), as shops and payment providers send."""
    data = {
        "event_id": event_id or f"evt_f_{order_id}_{amount}", "type": "order.refunded",
        "order_id": order_id, "occurred_at": ts(at), "amount": amount, "currency": currency,
    }  # fmt: skip
    if cus:
        data["customer"] = {"id": cus}
    return _parse(data)

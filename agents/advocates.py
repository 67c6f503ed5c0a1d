"""What the advocate API and the ROI page answer, from the advocate stage's state (pure:
no Faust). Money stays :class:`~decimal.Decimal` in the 100-digit context and goes out as
exact decimal strings.

A worker answers for its own partitions with a :func:`summary`; the worker asked merges the
summaries of all workers (:func:`merge`): every count and sum adds up, and each worker's
top ``limit`` per currency holds the overall top ``limit`` because no advocate is in two
workers' partitions.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import msgspec

from agents.state import AdvocateState, OrderActivity, ReferralActivity
from schemas.events import MONEY, decimal_text

__all__ = ["advocate_view", "leaderboard", "merge", "summary"]

ZERO = Decimal(0)


def _add(into: dict[str, Decimal], currency: str, amount: Decimal) -> None:
    into[currency] = MONEY.add(into.get(currency, ZERO), amount)


def _texts(amounts: dict[str, Decimal]) -> dict[str, str]:
    return {currency: decimal_text(amounts[currency]) for currency in sorted(amounts)}


def _net(order: OrderActivity) -> Decimal:
    amount = Decimal(order.amount or 0)
    return Decimal(order.net) if order.net is not None else amount


def _orders(referrals: list[ReferralActivity]) -> Iterable[OrderActivity]:
    """Attributed orders whose own fact has arrived (a refund alone is not an order)."""
    for referral in referrals:
        for order in referral.orders.values():
            if order.amount is not None:
                yield order


def advocate_view(state: AdvocateState) -> dict[str, Any]:
    """``GET /advocates/{id}``: referrals made, friends signed up, referrals converted,
    attributed orders, revenue (gross), refunds and net revenue per currency, and the first
    and last conversion (a referral converts at its earliest attributed order)."""
    revenue: dict[str, Decimal] = {}
    refunds: dict[str, Decimal] = {}
    net: dict[str, Decimal] = {}
    orders = 0
    referrals = list(state.activities())
    for order in _orders(referrals):
        orders += 1
        _add(revenue, order.currency, Decimal(order.amount))
        _add(refunds, order.currency, MONEY.subtract(Decimal(order.amount), _net(order)))
        _add(net, order.currency, _net(order))
    conversions = [
        min(o.occurred_at for o in referral.orders.values() if o.occurred_at is not None)
        for referral in referrals
        if any(o.occurred_at is not None for o in referral.orders.values())
    ]
    advocate = state.advocate
    return {
        "advocate_id": state.advocate_id,
        "advocate": msgspec.structs.asdict(advocate) if advocate else None,
        "referrals": sum(1 for r in referrals if r.made_at is not None),
        "signed_up": sum(1 for r in referrals if r.signed_up),
        "converted": len(conversions),
        "orders": orders,
        "revenue": _texts(revenue),
        "refunds": _texts(refunds),
        "net_revenue": _texts(net),
        "first_conversion": _time(min(conversions)) if conversions else None,
        "last_conversion": _time(max(conversions)) if conversions else None,
    }


def _time(value) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _rank_key(entry: dict[str, Any]) -> tuple:
    return (-Decimal(entry["net_revenue"]), entry["advocate_id"])


def summary(states: Iterable[AdvocateState], limit: int) -> dict[str, Any]:
    """One worker's part of the program: counts, money per currency, net revenue per order
    day and currency, and its top ``limit`` advocates per currency by net revenue."""
    counts = {"advocates": 0, "referrals": 0, "signed_up": 0, "converted": 0, "orders": 0}
    money: dict[str, dict[str, Decimal]] = {"revenue": {}, "refunds": {}, "net_revenue": {}}
    per_day: dict[str, dict[str, Decimal]] = {}
    leaders: dict[str, list[dict[str, Any]]] = {}
    for state in states:
        view = advocate_view(state)
        counts["advocates"] += 1
        for name in ("referrals", "signed_up", "converted", "orders"):
            counts[name] += view[name]
        for name, amounts in money.items():
            for currency, amount in view[name].items():
                _add(amounts, currency, Decimal(amount))
        for order in _orders(list(state.activities())):
            _add(per_day.setdefault(order.occurred_at.date().isoformat(), {}),
                 order.currency, _net(order))  # fmt: skip
        name = state.advocate.first_name if state.advocate else None
        for currency, net in view["net_revenue"].items():
            leaders.setdefault(currency, []).append({
                "advocate_id": state.advocate_id, "first_name": name, "net_revenue": net,
                "revenue": view["revenue"][currency], "refunds": view["refunds"][currency],
                "converted": view["converted"],
            })  # fmt: skip
    return {
        **counts,
        **{name: _texts(amounts) for name, amounts in money.items()},
        "per_day": {day: _texts(amounts) for day, amounts in sorted(per_day.items())},
        "leaders": {c: sorted(e, key=_rank_key)[:limit] for c, e in sorted(leaders.items())},
    }


def merge(parts: Iterable[dict[str, Any]], limit: int) -> dict[str, Any]:
    """The program's summary from the workers' (each for its own partitions)."""
    parts = list(parts)
    merged: dict[str, Any] = {
        name: sum(part[name] for part in parts)
        for name in ("advocates", "referrals", "signed_up", "converted", "orders")
    }
    for name in ("revenue", "refunds", "net_revenue"):
        amounts: dict[str, Decimal] = {}
        for part in parts:
            for currency, amount in part[name].items():
                _add(amounts, currency, Decimal(amount))
        merged[name] = _texts(amounts)
    per_day: dict[str, dict[str, Decimal]] = {}
    for part in parts:
        for day, amounts in part["per_day"].items():
            for currency, amount in amounts.items():
                _add(per_day.setdefault(day, {}), currency, Decimal(amount))
    merged["per_day"] = {day: _texts(amounts) for day, amounts in sorted(per_day.items())}
    leaders: dict[str, dict[str, dict[str, Any]]] = {}
    for part in parts:
        for currency, entries in part["leaders"].items():
            for entry in entries:  # by id: a partition seen twice mid-rebalance counts once
                leaders.setdefault(currency, {})[entry["advocate_id"]] = entry
    merged["leaders"] = {
        currency: sorted(entries.values(), key=_rank_key)[:limit]
        for currency, entries in sorted(leaders.items())
    }
    return merged


def leaderboard(program: dict[str, Any], currency: str, limit: int) -> list[dict[str, Any]]:
    """The top ``limit`` advocates by net revenue in ``currency``, ranked from 1."""
    entries = program["leaders"].get(currency, [])[:limit]
    return [{"rank": rank, **entry} for rank, entry in enumerate(entries, start=1)]

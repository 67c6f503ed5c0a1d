"""What each vendor must hold once every attribution is delivered once (tests and demo).

Each emulator says it (``expect``: the vendor's view of sinks.md's mapping) and reports it
(``held``), in the same shape, keyed by emulator name.
"""

from __future__ import annotations

from collections.abc import Iterable

from dev.emulators import RunningEmulators
from schemas.attribution import AdvocateTotals, AttributionEvent
from sinks.registry import load, sink_classes

__all__ = ["expected_advocates", "expected_vendor_state", "vendor_state"]


def expected_vendor_state(
    emitted: Iterable[AttributionEvent], advocates: Iterable[AdvocateTotals] = ()
) -> dict:
    """For every registered sink's vendor. :param advocates: each advocate's final total
    (``JoinSim.advocate_totals``)."""
    emitted, advocates = list(emitted), list(advocates)
    emulators = [load(cls.emulator) for cls in sink_classes().values()]
    return {emulator.name: emulator.expect(emitted, advocates) for emulator in emulators}


def vendor_state(emulators: RunningEmulators) -> dict:
    """What each running emulator holds, by emulator name."""
    return {emulator.name: emulator.held() for emulator in emulators.by_sink.values()}


def expected_advocates(sim) -> dict[str, dict]:
    """Each advocate's ``GET /advocates/{id}`` answer, computed from what the pure rules
    produce (``Workload.expected()``): the referrals they accepted and the attribution
    events they emitted; independent of the advocate stage's own bookkeeping."""
    from decimal import Decimal

    import msgspec

    from agents.rules import Stage
    from schemas.events import MONEY, decimal_text

    made: dict[str, int] = {}
    parties: dict[str, dict] = {}
    for state in sim.tables[Stage.REFERRAL].values():
        if state.referral is not None:
            advocate = state.referral.advocate
            made[advocate.id] = made.get(advocate.id, 0) + 1
            parties[advocate.id] = msgspec.to_builtins(advocate)
    signed: dict[str, set[str]] = {}
    orders: dict[str, dict[str, list]] = {}  # advocate -> order id -> [amount, cur, refunded]
    converted_at: dict[str, dict[str, object]] = {}  # advocate -> referral -> earliest order
    for event in sim.emitted:
        advocate = event.advocate.id if event.advocate else None
        if advocate is None or event.referral_id is None:
            continue
        if event.kind == "friend_signed_up":
            signed.setdefault(advocate, set()).add(event.referral_id)
        elif event.kind in ("referral_converted", "order_attributed"):
            order = event.order
            orders.setdefault(advocate, {})[order.order_id] = [order.amount, order.currency, 0]
            times = converted_at.setdefault(advocate, {})
            earliest = times.get(event.referral_id)
            times[event.referral_id] = min(earliest or event.occurred_at, event.occurred_at)
        elif event.kind == "order_refunded":
            entry = orders[advocate][event.order.order_id]
            entry[2] = MONEY.add(Decimal(entry[2]), event.order.amount)

    def money(advocate: str, of) -> dict[str, str]:
        sums: dict[str, Decimal] = {}
        for amount, currency, refunded in orders.get(advocate, {}).values():
            sums[currency] = MONEY.add(sums.get(currency, Decimal(0)), of(amount, refunded))
        return {c: decimal_text(sums[c]) for c in sorted(sums)}

    def net(amount: Decimal, refunded) -> Decimal:
        return MONEY.subtract(amount, Decimal(refunded))

    def when(value) -> str:
        return value.isoformat().replace("+00:00", "Z")

    views = {}
    for advocate, count in made.items():
        times = list(converted_at.get(advocate, {}).values())
        views[advocate] = {
            "advocate_id": advocate, "advocate": parties[advocate], "referrals": count,
            "signed_up": len(signed.get(advocate, ())), "converted": len(times),
            "orders": len(orders.get(advocate, {})),
            "revenue": money(advocate, lambda amount, refunded: amount),
            # gross - net, as the API subtracts (the zero keeps the amounts' scale: "0.00")
            "refunds": money(advocate, lambda a, r: MONEY.subtract(a, net(a, r))),
            "net_revenue": money(advocate, net),
            "first_conversion": when(min(times)) if times else None,
            "last_conversion": when(max(times)) if times else None,
        }  # fmt: skip
    return views

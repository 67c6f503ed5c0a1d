"""Valid input at the contract's edges through the join's rules (issue 17, item 3): years 1
and 9999, offsets of ±23:59, amounts of 40 digits and 20 decimals, windows opened the clock
skew early, refunds by order only. The stages never raise, and totals stay exact (contract
section 4: amounts are kept exact)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Context, Decimal

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.rules import JoinRules
from dev.join_sim import JoinSim
from schemas.attribution import AttributionEvent
from schemas.events import parse_event
from tests.strategies import FUZZ, amounts, moments, offsets

TTL = 3600.0
EXACT = Context(prec=1000)


def _at(moment: datetime) -> str:
    offset = moment.utcoffset()
    minutes = int(offset.total_seconds()) // 60
    zone = f"{'-' if minutes < 0 else '+'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    return f"{moment.replace(tzinfo=None).isoformat(timespec='microseconds')}{zone}"


SKEW = JoinRules().clock_skew


@st.composite
def journeys(draw) -> tuple[list[dict], dict[str, Decimal], int]:
    """A referral, its signup and orders (some refunded, some refunds by order only) of one
    friend, all in their windows, each window's start as much as the clock skew early (rule
    14); and the totals they must come to."""
    start, tz = draw(moments), draw(offsets)
    to_signup = draw(st.timedeltas(-SKEW, timedelta(days=30)))
    to_orders = draw(st.lists(st.timedeltas(-SKEW, timedelta(days=90)), min_size=1,
                              max_size=4))  # fmt: skip
    earliest = min(timedelta(0), to_signup, to_signup + min(to_orders))
    latest = max(timedelta(0), to_signup) + max(to_orders) + timedelta(days=1)
    for reach in (earliest, latest):
        try:
            start + reach
        except OverflowError:  # near year 1 or 9999: the journey moves away from the edge
            start -= reach
    referral_at = start.replace(tzinfo=tz)
    signup_at = referral_at + to_signup
    events = [
        {"event_id": "e_r", "type": "referral.created", "referral_id": "ref_1",
         "occurred_at": _at(referral_at), "advocate": {"id": "adv", "email": "a@example.com"}},
        {"event_id": "e_s", "type": "signup.completed", "referral_id": "ref_1",
         "occurred_at": _at(signup_at), "customer": {"id": "cus", "email": "f@example.com"}},
    ]  # fmt: skip
    revenue: dict[str, Decimal] = {}
    count = 0
    for i, delta in enumerate(to_orders):
        amount_text, amount = draw(amounts())
        currency = draw(st.sampled_from(["EUR", "usd"]))
        order_at = _at(signup_at + delta)
        events.append(
            {"event_id": f"e_o{i}", "type": "order.completed", "order_id": f"o{i}",
             "occurred_at": order_at, "customer": {"id": "cus"}, "amount": amount_text,
             "currency": currency}
        )  # fmt: skip
        refunded = Decimal(0)
        for j, (refund_text, refund) in enumerate(draw(st.lists(amounts(), max_size=2))):
            refund_event = {
                "event_id": f"e_f{i}_{j}", "type": "order.refunded", "order_id": f"o{i}",
                "occurred_at": order_at, "customer": {"id": "cus"}, "amount": refund_text,
                "currency": currency,
            }  # fmt: skip
            if draw(st.booleans()):
                del refund_event["customer"]  # by order only (rule 9)
            events.append(refund_event)
            refunded = EXACT.add(refunded, refund)
        net = EXACT.subtract(amount, min(amount, refunded))
        revenue[currency.upper()] = EXACT.add(revenue.get(currency.upper(), Decimal(0)), net)
        count += net > 0
    return draw(st.permutations(events)), revenue, count


@settings(FUZZ, max_examples=150)
@given(journey=journeys())
def test_journeys_at_the_edges_come_to_exact_totals(journey):
    events, revenue, count = journey
    sim = JoinSim(rules=JoinRules(pending_ttl=TTL))
    sim.feed(*(parse_event(orjson.dumps(event)) for event in events))
    sim.expire(TTL)
    totals = sim.view("ref_1")["totals"]
    assert totals["orders"] == count
    assert {c: Decimal(v) for c, v in totals["revenue"].items()} == revenue
    advocate = sim.advocate_totals["adv"].referral_revenue_generated
    assert {c: Decimal(v) for c, v in advocate.items()} == revenue
    kinds = [event.kind.value for event in sim.emitted]
    assert kinds.count("friend_signed_up") == 1 and kinds.count("referral_converted") == 1
    for event in sim.emitted:
        again = AttributionEvent.model_validate_json(event.model_dump_json())
        assert again.content_key() == event.content_key()


def test_a_signup_in_year_9999_is_judged_without_overflow():
    """``opens + window`` does not exist near the end of year 9999 (OverflowError stopped
    the referral stage); the window is measured as a difference instead."""
    sim = JoinSim()
    sim.feed(
        parse_event(orjson.dumps({
            "event_id": "e1", "type": "referral.created", "referral_id": "r",
            "occurred_at": "9999-12-31T00:00:00Z", "advocate": {"id": "a", "email": "a@x.io"},
        })),
        parse_event(orjson.dumps({
            "event_id": "e2", "type": "signup.completed", "referral_id": "r",
            "occurred_at": "9999-12-31T01:00:00-23:59",
            "customer": {"id": "c", "email": "c@x.io"},
        })),
    )  # fmt: skip
    assert sim.kinds() == [("friend_signed_up", "r", None)]


def test_totals_beyond_28_digits_stay_exact():
    """The default decimal context rounds to 28 digits: 12345678901234567890.123456789
    came out as ...890.12345679."""
    from tests.agents.journeys import order, referral, refund, signup

    amount = "12345678901234567890.123456789"
    sim = JoinSim()
    sim.feed(referral(), signup(), order(amount=amount), refund(amount="0.000000001"))
    assert sim.emitted[1].totals.revenue == {"EUR": amount}
    assert sim.emitted[2].totals.revenue == {"EUR": "12345678901234567890.123456788"}
    assert sim.advocate_totals["cus_adv"].referral_revenue_generated == {
        "EUR": "12345678901234567890.123456788"
    }

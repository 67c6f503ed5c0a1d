"""The advocate stage's activity and the API's views, through the pure rules: the answers
equal totals computed independently from the referrals and attribution events, whatever
order the workload arrives in and however often an activity is applied."""

from __future__ import annotations

import copy
from decimal import Decimal

from agents.advocates import advocate_view, leaderboard, merge, summary
from agents.rules import Stage, advocate_step, referral_step
from dev.expectations import expected_advocates
from dev.generator import Workload
from dev.join_sim import as_read


def advocate_states(sim) -> list:
    return list(sim.tables[Stage.ADVOCATE].values())


def test_every_advocate_view_equals_the_totals_from_the_attribution_events():
    sim = Workload.build(journeys=300, seed=11, invalid=0).expected()
    want = expected_advocates(sim)
    got = {s.advocate_id: advocate_view(s) for s in advocate_states(sim) if s.referrals}
    assert got == want
    assert sum(v["converted"] for v in want.values()) > 20
    assert any(v["refunds"] for v in want.values()), "the workload refunds something"


def test_attributions_folded_again_change_no_advocate():
    """A redelivered attribution reaches the referral stage again and forwards its activity
    again: every advocate's answer stays the same."""
    sim = Workload.build(journeys=120, seed=12, invalid=0).expected()
    advocates = sim.tables[Stage.ADVOCATE]
    before = {key: advocate_view(state) for key, state in advocates.items()}
    for event in sim.emitted:
        if event.referral_id is None:
            continue
        referral = copy.deepcopy(sim.tables[Stage.REFERRAL][event.referral_id])
        _, result = referral_step(referral, as_read(event), event.referral_id, sim.now, sim.rules)
        for forward in result.forwards:
            if forward.stage == Stage.ADVOCATE:
                state = advocates[forward.key]
                advocates[forward.key], _ = advocate_step(
                    state, forward.message, forward.key, sim.now, sim.rules
                )
    assert {key: advocate_view(state) for key, state in advocates.items()} == before


def test_summaries_merge_into_the_programme_and_the_leaderboard_ranks_by_net():
    sim = Workload.build(journeys=300, seed=13, invalid=0).expected()
    states = advocate_states(sim)
    whole = summary(states, 1000)
    halves = merge([summary(states[::2], 5), summary(states[1::2], 5)], 5)
    assert {k: v for k, v in halves.items() if k != "leaders"} == {
        k: v for k, v in whole.items() if k != "leaders"
    }
    for currency, entries in whole["leaders"].items():
        assert halves["leaders"][currency] == entries[:5]
        nets = [Decimal(e["net_revenue"]) for e in entries]
        assert nets == sorted(nets, reverse=True)
    views = expected_advocates(sim)
    eur = leaderboard(whole, "EUR", 3)
    assert [e["rank"] for e in eur] == [1, 2, 3]
    best = max(views.values(), key=lambda v: Decimal(v["net_revenue"].get("EUR", "-1")))
    assert eur[0]["net_revenue"] == best["net_revenue"]["EUR"]
    assert whole["referrals"] == sum(v["referrals"] for v in views.values())
    total_net = sum(Decimal(v["net_revenue"].get("EUR", "0")) for v in views.values())
    assert Decimal(whole["net_revenue"]["EUR"]) == total_net
    assert sum(Decimal(d.get("EUR", "0")) for d in whole["per_day"].values()) == total_net


def test_a_refund_never_raises_an_orders_net_again():
    sim = Workload.build(journeys=200, seed=14, invalid=0).expected()
    refunded = [
        (s, r, o) for s in advocate_states(sim) for r in s.referrals
        for o, order in s.activity(r).orders.items() if order.net is not None
    ]  # fmt: skip
    assert refunded
    state, referral_id, order_id = refunded[0]
    net = state.activity(referral_id).orders[order_id].net
    from datetime import UTC, datetime

    from agents.state import AdvocateActivity, OrderFact

    order = state.activity(referral_id).orders[order_id]
    stale = AdvocateActivity(
        advocate=state.advocate, referral_id=referral_id, kind="order_refunded",
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
        order=OrderFact(order_id=order_id, amount="1", currency=order.currency,
                        net_amount=order.amount),
    )  # fmt: skip
    state, _ = advocate_step(state, stale, state.advocate_id, 0.0, sim.rules)
    assert state.activity(referral_id).orders[order_id].net == net


# Written by the pydantic models before the advocate stage moved to msgspec (commit 295bedd):
# a worker upgraded in place must read the states in its tables and the messages in flight.
OLD_STATE = (
    b'{"seen":{},"advocate_id":"adv_1","advocate":{"id":"adv_1","email":"a@example.com",'
    b'"first_name":"Ana","last_name":null},"revenue":{"ref_1":{"EUR":"121.34"}},'
    b'"referrals":{"ref_1":{"made_at":"2026-09-24T13:45:00Z","signed_up":true,"orders":'
    b'{"ord_1":{"currency":"EUR","amount":"150.00","net":"121.34",'
    b'"occurred_at":"2026-09-25T08:00:00.250000Z"}}}},"held":[]}'
)
OLD_ACTIVITY = (
    '{"type":"advocate.activity","advocate":{"id":"adv_1","email":"a@example.com",'
    '"first_name":"Ana","last_name":null},"referral_id":"ref_1","kind":"order_refunded",'
    '"occurred_at":"2026-09-26T08:00:00+02:00","order":{"order_id":"ord_1","amount":"150.00",'
    '"currency":"EUR","net_amount":"100"}}'
)


def test_states_and_messages_of_the_pydantic_form_are_read_and_written_alike():
    from datetime import UTC, datetime

    import orjson

    from agents import envelopes
    from agents.codec import decoder, to_json
    from agents.join import decode_message
    from agents.rules import JoinRules
    from agents.state import AdvocateActivity, AdvocateState

    state = decoder(AdvocateState)(OLD_STATE)
    order = state.activity("ref_1").orders["ord_1"]
    assert order.occurred_at == datetime(2026, 9, 25, 8, 0, 0, 250000, tzinfo=UTC)
    assert advocate_view(state)["net_revenue"] == {"EUR": "121.34"}
    old = orjson.loads(OLD_STATE)
    new = orjson.loads(to_json(state))
    assert new == {k: v for k, v in old.items() if k not in ("seen", "held")}

    entries = [
        {"k": "adv_1", "t": "advocate.activity", "m": OLD_ACTIVITY},
        {"k": "adv_1", "m": orjson.loads(OLD_ACTIVITY)},
    ]
    message, older = (decode_message(e) for e in envelopes.unpack(orjson.dumps(entries)))
    assert isinstance(message, AdvocateActivity)
    assert message == older
    state, _ = advocate_step(state, message, "adv_1", 0.0, JoinRules())
    assert state.activity("ref_1").orders["ord_1"].net == "100"
    assert orjson.loads(to_json(message)) == orjson.loads(OLD_ACTIVITY)  # the offset kept


def test_an_order_s_revenue_and_its_fact_are_one_message_or_two_and_read_alike():
    """An attribution that moves revenue reaches the advocate stage as one message carrying
    the fact too; with ``advocate_facts_apart`` (a rolling upgrade from a version that
    sends and reads them apart) as two, and both forms leave the same state and total."""
    from dataclasses import replace

    from agents.codec import to_json
    from agents.state import AdvocateActivity, AdvocateRevenue

    sim = Workload.build(journeys=120, seed=13, invalid=0).expected()
    apart_rules = replace(sim.rules, advocate_facts_apart=True)
    merged = 0
    for event in sim.emitted:
        if event.referral_id is None:
            continue
        forwards = {}
        for rules in (sim.rules, apart_rules):
            referral = copy.deepcopy(sim.tables[Stage.REFERRAL][event.referral_id])
            _, result = referral_step(referral, as_read(event), event.referral_id, 0.0, rules)
            forwards[rules] = [f for f in result.forwards if f.stage == Stage.ADVOCATE]
        together, apart = forwards[sim.rules], forwards[apart_rules]
        if not any(isinstance(f.message, AdvocateRevenue) for f in together):
            assert together == apart
            continue
        merged += 1
        assert len(together) == 1  # the revenue alone: it carries the fact
        assert together[0].message.kind == event.kind.value
        assert [type(f.message) for f in apart] == [AdvocateRevenue, AdvocateActivity]
        assert apart[0].message.kind is None  # as a worker of the earlier version sends it
        key = together[0].key
        for start in (None, sim.tables[Stage.ADVOCATE].get(key)):
            states, totals = [], []
            for messages in (together, apart):
                state, sent = copy.deepcopy(start), []
                for forward in messages:
                    state, result = advocate_step(state, forward.message, key, 0.0, sim.rules)
                    sent += result.advocate_totals
                states.append(to_json(state))
                totals.append(sent)
            assert states[0] == states[1]
            assert totals[0] == totals[1]
    assert merged > 20

"""States written before the join's states moved to msgspec structs (the pydantic models of
commit 4a26263) read alike after an upgrade in place, and the join goes on from them as if
it had never stopped.

``data/states_pydantic_4a26263.json``: the referral, customer, email and order tables after
phase 1 of ``Workload.build(journeys=24, seed=5)`` (held signups and orders included), as
that commit's models wrote them.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from agents.codec import decoder, to_json
from agents.rules import JoinRules, Stage
from agents.state import CustomerState, EmailState, OrderIndexState, ReferralState
from dev.generator import Workload
from dev.join_sim import JoinSim
from schemas.events import parse_event

OLD = orjson.loads((Path(__file__).parent / "data" / "states_pydantic_4a26263.json").read_bytes())
TYPES = {
    Stage.REFERRAL: ReferralState,
    Stage.CUSTOMER: CustomerState,
    Stage.EMAIL: EmailState,
    Stage.ORDER: OrderIndexState,
}


def _workload() -> Workload:
    return Workload.build(journeys=24, seed=5, invalid=0)


def test_old_states_decode_to_the_same_json():
    held = 0
    for stage, state_type in TYPES.items():
        read = decoder(state_type)
        for key, old in OLD[stage.value].items():
            state = read(orjson.dumps(old))
            assert orjson.loads(to_json(state)) == old, (stage, key)
            held += len(state.held)
    assert held, "the fixture holds events"


def test_the_join_goes_on_from_old_states_as_if_it_had_never_stopped():
    workload = _workload()
    rules = JoinRules(pending_ttl=1.0)  # as Workload.expected() runs it
    before = workload.expected(rules, phases=1)
    whole = workload.expected(rules, phases=2)
    upgraded = JoinSim(rules=rules, now=OLD["now"])
    for stage, state_type in TYPES.items():
        read = decoder(state_type)
        upgraded.tables[stage] = {k: read(orjson.dumps(v)) for k, v in OLD[stage.value].items()}
    upgraded.tables[Stage.ADVOCATE] = before.tables[Stage.ADVOCATE]  # msgspec already
    events = [parse_event(r.value) for r in workload.phase2 if r.valid]
    upgraded.feed(*sorted(events, key=lambda e: (e.occurred_at, e.event_id)))
    upgraded.expire(rules.pending_ttl)

    def by_id(events: list) -> list:  # expire ticks go through the keys in table order
        return sorted(events, key=lambda e: e.attribution_event_id)

    assert by_id(upgraded.emitted) == by_id(whole.emitted[len(before.emitted) :])
    assert len(upgraded.emitted) > 10
    for referral_id in OLD[Stage.REFERRAL.value]:
        assert upgraded.view(referral_id) == whole.view(referral_id)

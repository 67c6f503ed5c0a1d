"""The join's stages wired in memory, in the same way the Faust agents wire them.

Used by the rule tests to drive whole journeys through the pure step functions: ingest
routing, forwards between stages, and attribution events fed back to the referral stage.
Every message reaches its step as the stage reads it off its topic: its JSON, parsed as the
join's struct for its kind.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import msgspec
from pydantic import BaseModel

from agents import envelopes
from agents.codec import decoder, to_json
from agents.messages import Attribution
from agents.rules import (
    Expire,
    JoinRules,
    Stage,
    advocate_step,
    customer_step,
    email_step,
    order_step,
    referral_step,
    route,
)
from agents.state import MESSAGES
from schemas.attribution import AdvocateTotals, AttributionEvent

STEPS = {
    Stage.REFERRAL: referral_step,
    Stage.CUSTOMER: customer_step,
    Stage.EMAIL: email_step,
    Stage.ADVOCATE: advocate_step,
    Stage.ORDER: order_step,
}

_DECODERS = {kind: decoder(struct) for kind, struct in MESSAGES.items()}


def as_read(message: Any) -> Any:
    """``message`` as a stage reads it: through its JSON (a validated input event from
    ingest, an attribution event folded back, or another stage's struct)."""
    if isinstance(message, Expire):
        return message
    if isinstance(message, AttributionEvent | Attribution):
        text = message.model_dump_json() if isinstance(message, BaseModel) else to_json(message)
        return _DECODERS[envelopes.ATTRIBUTION](text)
    text = message.model_dump_json() if isinstance(message, BaseModel) else to_json(message)
    return _DECODERS[message.type](text)


@dataclass
class JoinSim:
    rules: JoinRules = field(default_factory=JoinRules)
    now: float = 0.0
    tables: dict[Stage, dict[str, object]] = field(
        default_factory=lambda: {stage: {} for stage in Stage}
    )
    emitted: list[AttributionEvent] = field(default_factory=list)
    advocate_totals: dict[str, AdvocateTotals] = field(default_factory=dict)
    """The latest total of each advocate."""
    duplicates: int = 0
    dropped: list[str] = field(default_factory=list)

    def feed(self, *events) -> None:
        for event in events:
            self._run(deque((f.stage, f.key, f.message) for f in route(event)))

    def expire(self, after: float) -> None:
        """Advance processing time and tick every key that holds events."""
        self.now += after
        queue = deque()
        for stage, table in self.tables.items():
            for key, state in table.items():
                if state.oldest_hold() is not None:
                    queue.append((stage, key, Expire()))
        self._run(queue)

    def _run(self, queue: deque) -> None:
        while queue:
            stage, key, message = queue.popleft()
            table = self.tables[stage]
            state, result = STEPS[stage](
                table.get(key), as_read(message), key, self.now, self.rules
            )
            table[key] = state
            self.duplicates += result.duplicates
            self.dropped.extend(result.dropped)
            for totals in result.advocate_totals:  # as the CRM sink reads them
                total = AdvocateTotals.model_validate_json(to_json(totals))
                self.advocate_totals[total.advocate.id] = total
            for forward in result.forwards:
                queue.append((forward.stage, forward.key, forward.message))
            for attribution in result.attributions:  # as the sinks read them
                self.emitted.append(AttributionEvent.model_validate_json(to_json(attribution)))
                if attribution.referral_id is not None:
                    queue.append((Stage.REFERRAL, attribution.referral_id, attribution))

    def kinds(self) -> list[tuple[str, str | None, str | None]]:
        return [(a.kind.value, a.referral_id, a.reason) for a in self.emitted]

    def view(self, referral_id: str) -> dict:
        state = self.tables[Stage.REFERRAL][referral_id]
        fields = ("status", "friend", "totals", "signed_up_at", "converted_at")
        return msgspec.to_builtins({name: getattr(state, name) for name in fields})

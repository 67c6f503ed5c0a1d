"""Realistic referral journeys for the demo, tests and benchmarks.

A :class:`Workload` is two phases of records, shuffled across topics and keyed at random
(producers owe us no keying). Phase 1 holds each journey's referral, signup and first order
in any order, early partners, duplicates, self-referrals, late signups, signups a few
minutes before their referral and orders a minute before their signup (clocks that differ:
rule 14), orders and signups of strangers (a shop's customers never referred) and invalid
records. Phase 2 holds what the rules decide by arrival order (a second order:
``referral_converted`` vs ``order_attributed``; a second claim on a friend: first touch), so
it is produced only once phase 1 is processed; and refunds, half of them by order only
(rule 9), some before their order. :meth:`Workload.expected` runs the same
events through the pure rules (:mod:`dev.join_sim`) to give the exact expected outcome.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import orjson

from agents.rules import JoinRules
from dev.join_sim import JoinSim
from schemas.attribution import AttributionEvent
from schemas.events import parse_event

__all__ = ["Record", "Workload", "attribution_records"]

EPOCH = datetime(2026, 9, 1, tzinfo=UTC)
FIRST = ["Ann", "Bob", "Cleo", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jun", "Kai", "Lea"]
LAST = ["Lee", "Ng", "Okafor", "Silva", "Berg", "Rossi", "Khan", "Novak", "Dubois", "Sato"]
CURRENCIES = ["EUR", "EUR", "EUR", "USD", "GBP"]
_CET = timezone(timedelta(hours=1))
SKEW = timedelta(seconds=290)
"""Less than the default ``ATTRIBUTION_CLOCK_SKEW_SECONDS`` (300): journeys whose clocks
differ this much still attribute."""


@dataclass(frozen=True, slots=True)
class Record:
    topic: str
    key: bytes | None
    value: bytes
    valid: bool = True


def attribution_records(events: Iterable[AttributionEvent]) -> list[Record]:
    """Attribution events as the join publishes them (keyed by referral id), emitted now:
    input for the sinks alone."""
    now = datetime.now(UTC)
    return [
        Record("attributions", (e.referral_id or "").encode() or None,
               e.model_copy(update={"emitted_at": now}).model_dump_json().encode())
        for e in events
    ]  # fmt: skip


def _ts(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@dataclass
class Workload:
    phase1: list[Record] = field(default_factory=list)
    phase2: list[Record] = field(default_factory=list)
    invalid: list[Record] = field(default_factory=list)

    @property
    def records(self) -> list[Record]:
        return self.phase1 + self.phase2

    @classmethod
    def build(
        cls, journeys: int = 200, seed: int = 7, invalid: int = 5, run: str = "",
        open_days: int = 30,
    ) -> Workload:  # fmt: skip
        """The same ``seed`` gives the same journeys; ``run`` goes into every id (event,
        referral, order and person ids), so runs with different ``run`` never share an id.
        Referrals open over ``open_days``: a campaign of a month by default; over a year,
        a shop whose stream, once its first journeys have ordered, mixes every kind of
        event in steady proportions."""
        return _Builder(random.Random(seed), run).build(journeys, invalid, open_days)

    def expected(
        self, rules: JoinRules | None = None, phases: int = 2, extra: Iterable = ()
    ) -> JoinSim:
        """The outcome the pipeline must reach once every pending TTL has passed.

        :param phases: 1 gives what phase 1 alone yields before any held event expires.
        :param extra: parsed events that arrive with phase 1 from elsewhere (the demo's
            webhooks, as the gateway published them).
        """
        sim = JoinSim(rules=rules or JoinRules(pending_ttl=1.0))
        for number, phase in enumerate((self.phase1, self.phase2)[:phases]):
            events = [parse_event(r.value) for r in phase if r.valid]
            events += list(extra) if number == 0 else []
            sim.feed(*sorted(events, key=lambda e: (e.occurred_at, e.event_id)))
        if phases == 2:
            sim.expire(sim.rules.pending_ttl)
        return sim


class _Builder:
    def __init__(self, rng: random.Random, run: str = "") -> None:
        self.rng = rng
        self.run = f"{run}_" if run else ""
        self.workload = Workload()
        self.n = 0

    def _id(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}_{self.run}{self.n:06d}"

    def _person(self, prefix: str) -> dict:
        first, last = self.rng.choice(FIRST), self.rng.choice(LAST)
        pid = self._id(prefix)
        return {"id": pid, "email": f"{first}.{last}.{pid}@example.com".lower(),
                "first_name": first, "last_name": last}  # fmt: skip

    def _emit(self, phase: list[Record], topic: str, event: dict, dup: float = 0.04) -> None:
        key = self.rng.choice([None, event["event_id"].encode(), self._id("k").encode()])
        record = Record(topic, key, orjson.dumps(event))
        phase.append(record)
        if self.rng.random() < dup:
            phase.append(record)  # an at-least-once producer re-sent it

    def build(self, journeys: int, invalid: int, open_days: int = 30) -> Workload:
        rng = self.rng
        advocates = [self._person("adv") for _ in range(max(3, journeys // 8))]
        friends_signed: list[tuple[dict, str, datetime]] = []
        for _ in range(journeys):
            advocate = rng.choice(advocates)
            friend = self._person("cus")
            referral_id = self._id("ref")
            opened = EPOCH + timedelta(minutes=rng.randrange(0, 60 * 24 * open_days))
            referral = {
                "event_id": self._id("evt"), "type": "referral.created",
                "referral_id": referral_id, "occurred_at": _ts(opened), "advocate": advocate,
                "friend_email": friend["email"].upper() if rng.random() < 0.2 else friend["email"],
                "campaign_id": rng.choice(["spring", "summer", "vip", None]),
                "utm_source": "newsletter",
            }  # fmt: skip
            roll = rng.random()
            if roll < 0.04:  # the referral is never seen: signup stays unattributed
                pass
            else:
                self._emit(self.workload.phase1, "referrals", referral)
            if roll > 0.9:
                continue  # invited friend never signs up
            if 0.04 <= roll < 0.08:
                friend = {**advocate}  # self-referral
            late = 0.08 <= roll < 0.11
            signed = opened + timedelta(days=rng.choice([31, 45]) if late else rng.uniform(0, 29))
            if not late and rng.random() < 0.05:  # the referral platform's clock is ahead
                signed = opened - rng.uniform(0, 1) * SKEW
            signup = {
                "event_id": self._id("evt"), "type": "signup.completed",
                "occurred_at": _ts(signed.astimezone(rng.choice([UTC, _CET]))),
                "customer": {k: v for k, v in friend.items() if k != "last_name"},
            }  # fmt: skip
            if rng.random() < 0.85 or roll < 0.04:
                signup["referral_id"] = referral_id
            self._emit(self.workload.phase1, "signups", signup)
            if roll < 0.11:
                continue
            friends_signed.append((friend, referral_id, signed))
            if rng.random() < 0.7:
                self._orders(friend, referral_id, signed)
        self._second_claims(friends_signed, advocates)
        self._strangers(journeys // 5)
        self._invalid(invalid)
        rng.shuffle(self.workload.phase1)
        rng.shuffle(self.workload.phase2)
        return self.workload

    def _order(self, friend: dict, at: datetime, referral_id: str | None) -> dict:
        amount = Decimal(self.rng.randrange(500, 25000)) / 100
        order = {
            "event_id": self._id("evt"), "type": "order.completed", "order_id": self._id("ord"),
            "occurred_at": _ts(at), "customer": {"id": friend["id"]},
            "amount": str(amount) if self.rng.random() < 0.8 else float(amount),
            "currency": self.rng.choice(CURRENCIES),
        }  # fmt: skip
        if referral_id:
            order["referral_id"] = referral_id
        return order

    def _orders(self, friend: dict, referral_id: str, signed: datetime) -> None:
        rng, w = self.rng, self.workload
        first_at = signed + timedelta(days=rng.uniform(0.01, 60))
        roll = rng.random()
        if roll < 0.05:
            first_at = signed + timedelta(days=rng.uniform(91, 120))  # outside the window
        elif roll < 0.1:
            first_at = signed - rng.uniform(0, 1) * SKEW  # the shop's clock is behind
        first = self._order(friend, first_at, referral_id if rng.random() < 0.5 else None)
        self._emit(w.phase1, "orders", first)
        # Phase 2 carries one thread per customer (a second order and its refund, or a refund
        # of the first): each attribution's totals snapshot must not depend on arrival order.
        order = first
        if rng.random() < 0.4:
            order = self._order(friend, first_at + timedelta(days=rng.uniform(1, 25)), None)
            self._emit(w.phase2, "orders", order)
        if rng.random() < 0.2:
            amount = Decimal(str(order["amount"]))
            part = amount if rng.random() < 0.5 else (amount / 3).quantize(Decimal("0.01"))
            refund = {
                "event_id": self._id("evt"), "type": "order.refunded",
                "order_id": order["order_id"], "customer": {"id": friend["id"]},
                "occurred_at": _ts(datetime.fromisoformat(order["occurred_at"])
                                   + timedelta(days=2)),
                "amount": str(part), "currency": order["currency"],
            }  # fmt: skip
            if rng.random() < 0.5:
                del refund["customer"]  # a shop or payment provider refunds by order only
            self._emit(w.phase2, "orders", refund)

    def _second_claims(self, signed: list[tuple[dict, str, datetime]], advocates: list) -> None:
        """First touch: a friend claimed again through another referral; a second friend
        trying an already-claimed referral."""
        for friend, referral_id, at in self.rng.sample(signed, k=min(len(signed), 6)):
            other = self._id("ref")
            advocate = self.rng.choice([a for a in advocates if a["id"] != friend["id"]])
            self._emit(self.workload.phase1, "referrals", {
                "event_id": self._id("evt"), "type": "referral.created", "referral_id": other,
                "occurred_at": _ts(at - timedelta(days=1)), "advocate": advocate,
            })  # fmt: skip
            self._emit(self.workload.phase2, "signups", {
                "event_id": self._id("evt"), "type": "signup.completed", "referral_id": other,
                "occurred_at": _ts(at), "customer": {"id": friend["id"], "email": friend["email"]},
            })  # fmt: skip
            intruder = self._person("cus")
            self._emit(self.workload.phase2, "signups", {
                "event_id": self._id("evt"), "type": "signup.completed",
                "referral_id": referral_id, "occurred_at": _ts(at + timedelta(hours=1)),
                "customer": {"id": intruder["id"], "email": intruder["email"]},
            })  # fmt: skip

    def _strangers(self, count: int) -> None:
        """Customers never referred: they order, and half of them sign up first (a shop's
        every new customer is a signup); some orders name a referral nobody knows."""
        for _ in range(count):
            stranger = self._person("cus")
            at = EPOCH + timedelta(days=self.rng.uniform(0, 60))
            if self.rng.random() < 0.5:
                self._emit(self.workload.phase1, "signups", {
                    "event_id": self._id("evt"), "type": "signup.completed",
                    "occurred_at": _ts(at - timedelta(hours=1)),
                    "customer": {k: v for k, v in stranger.items() if k != "last_name"},
                })  # fmt: skip
            ghost = self._id("ref") if self.rng.random() < 0.3 else None
            self._emit(self.workload.phase1, "orders", self._order(stranger, at, ghost))

    def _invalid(self, count: int) -> None:
        samples = [
            (b"signups", b'{"event_id": "evt_bad", "type": "signup.completed", '),
            (b"orders", orjson.dumps({"event_id": "evt_neg", "type": "order.completed",
                "order_id": "o", "occurred_at": "2026-09-01T00:00:00Z", "customer": {"id": "c"},
                "amount": "-5", "currency": "EUR"})),
            (b"referrals", orjson.dumps({"event_id": "evt_naive", "type": "referral.created",
                "referral_id": "r", "occurred_at": "2026-09-01T00:00:00",
                "advocate": {"id": "a", "email": "a@example.com"}})),
            (b"orders", orjson.dumps({"event_id": "evt_x", "type": "order.shipped"})),
            (b"signups", b"\xff\xfe not even utf-8"),
        ]  # fmt: skip
        for i in range(count):
            topic, value = samples[i % len(samples)]
            record = Record(topic.decode(), f"bad-{i}".encode(), value + b" " * (i // 5), False)
            self.workload.invalid.append(record)
            self.workload.phase1.append(record)

"""Join state kept in the changelog-backed tables, one struct per join stage, and the
messages the stages send each other.

All are msgspec structs (README, performance: a state is read and rewritten on every batch
that touches its key). Their JSON is what the pydantic models of earlier versions wrote,
with the same field names: states and messages written before an upgrade read alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import ClassVar

import msgspec
from msgspec import Raw, Struct, field

from agents import envelopes
from agents.messages import (
    Attribution,
    DecimalString,
    Instant,
    OrderCompleted,
    OrderFact,
    OrderRefunded,
    Person,
    ReferralCreated,
    SignupCompleted,
    Tally,
)
from schemas.events import MONEY, decimal_text

__all__ = [
    "MESSAGES",
    "SEEN_LIMIT",
    "AdvocateActivity",
    "AdvocateRevenue",
    "AdvocateState",
    "Claim",
    "ClaimedReferral",
    "CustomerState",
    "EmailState",
    "HeldOrderEvent",
    "HeldSignup",
    "KeyState",
    "OrderFact",
    "OrderIndexState",
    "OrderOwner",
    "OrderState",
    "Person",
    "ReferralActivity",
    "ReferralState",
]

SEEN_LIMIT = 4096
"""Most event ids remembered per key (rule 13: bounded), whatever their age. Keys see few
events each; the cap only keeps a pathological key (thousands of events in the dedup TTL)
from making its state, rewritten on every batch, grow without end."""
_UNSTAMPED = -1.0


class KeyState(Struct, kw_only=True):
    """What every stage's state has: the event ids it applied (rules 1 and 13)."""

    HOLDS_EVENTS: ClassVar[bool] = True
    """Whether a stage must scan its state for held events after a rebalance."""

    seen: dict[str, float] | list[str] = {}
    """Event id → processing time it was first applied, oldest first (rule 13). States
    written before ids carried their time kept a list: those ids count as seen when the key
    is next touched, and are kept for the whole TTL from then."""

    def __post_init__(self) -> None:
        if isinstance(self.seen, list):
            self.seen = dict.fromkeys(self.seen, _UNSTAMPED)

    def oldest_hold(self) -> float | None:
        """When the oldest event the key holds arrived (processing time); None: none."""
        held = self.held  # type: ignore[attr-defined]  # every stage's state holds some
        return min(h.received_at for h in held) if held else None

    def remember(self, event_id: str, now: float, ttl: float) -> bool:
        """Record ``event_id``; False when it was already processed (rule 1). Ids older
        than ``ttl`` seconds of processing time are forgotten (rule 13)."""
        seen = self.seen
        assert isinstance(seen, dict)  # __post_init__
        if event_id in seen:
            return False
        seen[event_id] = now
        oldest = next(iter(seen.values()))
        if oldest == _UNSTAMPED or now - oldest >= ttl or len(seen) > SEEN_LIMIT:
            kept = [
                (seen_id, now if at == _UNSTAMPED else at)
                for seen_id, at in seen.items()
                if at == _UNSTAMPED or now - at < ttl
            ]
            self.seen = dict(kept[-SEEN_LIMIT:])
        return True


class HeldSignup(Struct):
    received_at: float
    signup: SignupCompleted


class HeldOrderEvent(Struct):
    received_at: float
    event: OrderCompleted | OrderRefunded


class ClaimedReferral(Struct, kw_only=True):
    """What the customer stage needs to know of the referral a friend signed up through."""

    referral_id: str
    campaign_id: str | None = None
    advocate: Person
    occurred_at: Instant

    @classmethod
    def of(cls, referral: ReferralCreated) -> ClaimedReferral:
        return cls(
            referral_id=referral.referral_id,
            campaign_id=referral.campaign_id,
            advocate=Person.of(referral.advocate),
            occurred_at=referral.occurred_at,
        )


class Claim(Struct, kw_only=True):
    """Referral stage → customer stage: this signup passed the referral's own checks."""

    type: str = "claim"
    signup: SignupCompleted
    referral: ClaimedReferral


class OrderOwner(Struct, kw_only=True):
    """Customer stage → order stage: the order of a referred friend, and whose it is."""

    type: str = "order.owner"
    order_id: str
    customer_id: str


# --- the advocate stage ----------------------------------------------------------------------
# An advocate's state holds every referral they made and is read and rewritten whenever one
# of them moves; its JSON is what the pydantic models wrote, less the advocate state's unused
# ``seen`` and ``held``.


def _identified(advocate: Person) -> None:
    """The advocate stage keys by, and publishes totals under, the advocate's id."""
    if advocate.id is None:
        raise ValueError("the advocate has no id")


class AdvocateRevenue(Struct, kw_only=True):
    """Referral stage → advocate stage: one referral's revenue as of an attribution event,
    and the fact that event is (its ``kind``, ``occurred_at`` and ``order``, as an
    :class:`AdvocateActivity` would carry them): every attribution that moves revenue is
    also a fact, and one message to the advocate costs half of two (README, performance,
    item 40). Without ``kind`` (messages of earlier versions, which sent the fact alone),
    it is the revenue only."""

    type: str = "advocate.revenue"
    advocate: Person
    referral_id: str
    revenue: dict[str, DecimalString]
    attribution_event_id: str
    kind: str | None = None
    occurred_at: Instant | None = None
    order: OrderFact | None = None

    def __post_init__(self) -> None:
        _identified(self.advocate)


class AdvocateActivity(Struct, kw_only=True):
    """Referral stage → advocate stage: one fact of one of the advocate's referrals (made,
    its friend signed up, an attributed order, a refund). Facts are set, not added, so one
    applied twice (a redelivery) changes nothing."""

    type: str = "advocate.activity"
    advocate: Person
    referral_id: str
    kind: str
    """``referral_created`` or the attribution kind."""
    occurred_at: Instant
    order: OrderFact | None = None

    def __post_init__(self) -> None:
        _identified(self.advocate)


class OrderActivity(Struct):
    """An attributed order of one of the advocate's referrals, net of its refunds."""

    currency: str
    amount: DecimalString | None = None
    """``None`` while only a refund of it has arrived (the order's own fact follows)."""
    net: DecimalString | None = None
    """After its refunds; ``None``: never refunded."""
    occurred_at: Instant | None = None


class ReferralActivity(Struct):
    made_at: Instant | None = None
    signed_up: bool = False
    orders: dict[str, OrderActivity] = {}


class AdvocateState(Struct):
    """Keyed by advocate id: the latest revenue of each of the advocate's referrals, and
    what each referral did (the advocate API and the ROI page read it). Its messages are
    facts, applied twice alike, so it keeps no event ids; it never holds events.

    Each referral's revenue and activity stay as their JSON until a message about that
    referral changes them: the state holds every referral the advocate made and is read and
    rewritten whenever one of them moves, and decoding and encoding all of them every time
    was most of the stage's work (README, performance). The JSON is the same as when they
    were decoded with the state.
    """

    advocate_id: str
    advocate: Person | None = None
    revenue: dict[str, Raw] = {}
    """Referral id → its revenue per currency (``dict[str, DecimalString]``)."""
    referrals: dict[str, Raw] = {}
    """Referral id → its :class:`ReferralActivity`."""

    HOLDS_EVENTS: ClassVar[bool] = False

    def oldest_hold(self) -> float | None:
        return None

    def activity(self, referral_id: str) -> ReferralActivity:
        """What the referral did so far (nothing, for a referral not seen yet)."""
        raw = self.referrals.get(referral_id)
        return ReferralActivity() if raw is None else _ACTIVITY(raw)

    def set_activity(self, referral_id: str, activity: ReferralActivity) -> None:
        self.referrals[referral_id] = Raw(_ENCODER.encode(activity))

    def activities(self) -> Iterator[ReferralActivity]:
        for raw in self.referrals.values():
            yield _ACTIVITY(raw)

    def revenue_of(self, referral_id: str) -> dict[str, str] | None:
        raw = self.revenue.get(referral_id)
        return None if raw is None else _REVENUE(raw)

    def set_revenue(self, referral_id: str, revenue: dict[str, str]) -> None:
        self.revenue[referral_id] = Raw(_ENCODER.encode(revenue))

    def revenues(self) -> Iterator[dict[str, str]]:
        for raw in self.revenue.values():
            yield _REVENUE(raw)


_ACTIVITY = msgspec.json.Decoder(ReferralActivity).decode
_REVENUE = msgspec.json.Decoder(dict[str, DecimalString]).decode
_ENCODER = msgspec.json.Encoder()


class ReferralState(KeyState, kw_only=True):
    """Keyed by referral_id: the referral, signups waiting for it, its friend slot, its view."""

    referral_id: str
    referral: ReferralCreated | None = None
    held: list[HeldSignup] = []
    reserved_for: str | None = None
    friend_confirmed: bool = False
    # The lookup view, folded from the attribution events of this referral.
    status: str = "pending"
    friend: Person | None = None
    totals: Tally = field(default_factory=Tally)
    signed_up_at: Instant | None = None
    converted_at: Instant | None = None
    last_kind: str | None = None


class OrderState(Struct, kw_only=True):
    amount: Decimal
    currency: str
    refunded: Decimal = Decimal(0)
    occurred_at: Instant
    attributed: bool


class CustomerState(KeyState, kw_only=True):
    """Keyed by customer id: the friend's accepted claim, orders, refunds and totals."""

    customer_id: str
    referral: ClaimedReferral | None = None
    friend: Person | None = None
    signed_up_at: Instant | None = None
    orders: dict[str, OrderState] = {}
    converted: bool = False
    converted_at: Instant | None = None
    held: list[HeldOrderEvent] = []

    def totals(self) -> Tally:
        """Rule 10: orders not fully refunded; revenue net of refunds, per currency."""
        count = 0
        revenue: dict[str, Decimal] = {}
        for order in self.orders.values():
            if not order.attributed:
                continue
            net = MONEY.subtract(order.amount, order.refunded)
            if net > 0:
                count += 1
            revenue[order.currency] = MONEY.add(revenue.get(order.currency, Decimal(0)), net)
        revenue_text = {c: decimal_text(v) for c, v in sorted(revenue.items())}
        return Tally(count, revenue_text)


class EmailState(KeyState, kw_only=True):
    """Keyed by normalised friend email: referrals naming it, signups without referral_id."""

    email: str
    candidates: dict[str, Instant] = {}
    held: list[HeldSignup] = []


class OrderIndexState(KeyState, kw_only=True):
    """Keyed by order_id: the customer of a referred friend's order, and refunds without a
    customer waiting to learn it (rule 9)."""

    order_id: str
    customer_id: str | None = None
    held: list[HeldOrderEvent] = []


MESSAGES: dict[str, type] = {
    "referral.created": ReferralCreated,
    "signup.completed": SignupCompleted,
    "order.completed": OrderCompleted,
    "order.refunded": OrderRefunded,
    "claim": Claim,
    "advocate.revenue": AdvocateRevenue,
    "order.owner": OrderOwner,
    "advocate.activity": AdvocateActivity,
    envelopes.ATTRIBUTION: Attribution,
}
"""Each kind of message on the stage topics, and the struct it is read as."""

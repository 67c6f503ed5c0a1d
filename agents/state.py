"""Join state kept in the changelog-backed tables, one model per join stage.

Values are stored as the models' JSON (pydantic's Rust encoder); events inside state keep
their validated form, so re-evaluating a held event needs no second validation path.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, ClassVar

from msgspec import Meta, Struct
from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.attribution import OrderRef, Party, Totals
from schemas.events import (
    MONEY,
    OrderCompleted,
    OrderRefunded,
    ReferralCreated,
    SignupCompleted,
    Timestamp,
    decimal_text,
)

__all__ = [
    "SEEN_LIMIT",
    "AdvocateActivity",
    "AdvocateRevenue",
    "AdvocateState",
    "Claim",
    "ClaimedReferral",
    "CustomerState",
    "DecimalString",
    "EmailState",
    "HeldOrderEvent",
    "HeldSignup",
    "Instant",
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


class KeyState(BaseModel):
    """What every stage's state has: the event ids it applied (rules 1 and 13)."""

    model_config = ConfigDict(extra="ignore")
    HOLDS_EVENTS: ClassVar[bool] = True
    """Whether a stage must scan its state for held events after a rebalance."""

    seen: dict[str, float] = Field(default_factory=dict)
    """Event id → processing time it was first applied, oldest first (rule 13)."""

    @field_validator("seen", mode="before")
    @classmethod
    def _upgrade(cls, value: object) -> object:
        """States written before ids carried their time kept a list: those ids count as
        seen when the key is next touched, and are kept for the whole TTL from then."""
        return dict.fromkeys(value, _UNSTAMPED) if isinstance(value, list) else value

    def remember(self, event_id: str, now: float, ttl: float) -> bool:
        """Record ``event_id``; False when it was already processed (rule 1). Ids older
        than ``ttl`` seconds of processing time are forgotten (rule 13)."""
        if event_id in self.seen:
            return False
        self.seen[event_id] = now
        oldest = next(iter(self.seen.values()))
        if oldest == _UNSTAMPED or now - oldest >= ttl or len(self.seen) > SEEN_LIMIT:
            kept = [
                (seen_id, now if at == _UNSTAMPED else at)
                for seen_id, at in self.seen.items()
                if at == _UNSTAMPED or now - at < ttl
            ]
            self.seen = dict(kept[-SEEN_LIMIT:])
        return True


class HeldSignup(BaseModel):
    received_at: float
    signup: SignupCompleted


class HeldOrderEvent(BaseModel):
    received_at: float
    event: OrderCompleted | OrderRefunded


class ClaimedReferral(BaseModel):
    """What the customer stage needs to know of the referral a friend signed up through."""

    referral_id: str
    campaign_id: str | None = None
    advocate: Party
    occurred_at: Timestamp

    @classmethod
    def of(cls, referral: ReferralCreated) -> ClaimedReferral:
        return cls(
            referral_id=referral.referral_id,
            campaign_id=referral.campaign_id,
            advocate=Party.model_validate(referral.advocate.model_dump()),
            occurred_at=referral.occurred_at,
        )


class Claim(BaseModel):
    """Referral stage → customer stage: this signup passed the referral's own checks."""

    type: str = "claim"
    signup: SignupCompleted
    referral: ClaimedReferral


class OrderOwner(BaseModel):
    """Customer stage → order stage: the order of a referred friend, and whose it is."""

    type: str = "order.owner"
    order_id: str
    customer_id: str


# --- the advocate stage: msgspec ------------------------------------------------------------
# An advocate's state holds every referral they made and is read and rewritten whenever one
# of them moves, so it grows with the advocate and dominated the join's parsing: as msgspec
# structs it decodes about 2.4 and encodes about 5 times faster than as pydantic models
# (README, performance). Their JSON is what the pydantic models wrote, less the advocate
# state's unused ``seen`` and ``held``: states and messages from before read alike.

Instant = Annotated[datetime, Meta(tz=True)]
"""An RFC 3339 timestamp with an offset."""
DecimalString = Annotated[
    str, Meta(pattern=r"^[0-9]{1,100}(\.[0-9]{1,100})?([eE][-+]?[0-9]{1,2})?\Z")
]
r"""``schemas.attribution.DecimalText`` for msgspec, whose patterns are Python's (``re.search``:
``\Z``, as ``$`` would also match before a final newline)."""


class Person(Struct, frozen=True):
    """An advocate as the advocate stage keeps them (the fields of ``Party``)."""

    id: str | None = None
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None

    @classmethod
    def of(cls, party: object) -> Person:
        """From any object with a party's fields (an input event's advocate, a ``Party``)."""
        return cls(party.id, party.email, party.first_name, party.last_name)  # type: ignore[attr-defined]

    def party(self) -> Party:
        return Party(id=self.id, email=self.email, first_name=self.first_name,
                     last_name=self.last_name)  # fmt: skip


class OrderFact(Struct, frozen=True):
    """An attributed order as an activity message carries it (the fields of ``OrderRef``)."""

    order_id: str
    amount: DecimalString
    currency: Annotated[str, Meta(pattern=r"^[A-Z]{3}\Z")]
    net_amount: DecimalString | None = None

    @classmethod
    def of(cls, order: OrderRef) -> OrderFact:
        net = order.net_amount
        return cls(order.order_id, decimal_text(order.amount), order.currency,
                   None if net is None else decimal_text(net))  # fmt: skip


def _identified(advocate: Person) -> None:
    """The advocate stage keys by, and publishes totals under, the advocate's id."""
    if advocate.id is None:
        raise ValueError("the advocate has no id")


class AdvocateRevenue(Struct, kw_only=True):
    """Referral stage → advocate stage: one referral's revenue as of an attribution event."""

    type: str = "advocate.revenue"
    advocate: Person
    referral_id: str
    revenue: dict[str, DecimalString]
    attribution_event_id: str

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
    facts, applied twice alike, so it keeps no event ids; it never holds events."""

    advocate_id: str
    advocate: Person | None = None
    revenue: dict[str, dict[str, DecimalString]] = {}
    referrals: dict[str, ReferralActivity] = {}

    HOLDS_EVENTS: ClassVar[bool] = False

    def oldest_hold(self) -> float | None:
        return None


class ReferralState(KeyState):
    """Keyed by referral_id: the referral, signups waiting for it, its friend slot, its view."""

    referral_id: str
    referral: ReferralCreated | None = None
    held: list[HeldSignup] = Field(default_factory=list)
    reserved_for: str | None = None
    friend_confirmed: bool = False
    # The lookup view, folded from the attribution events of this referral.
    status: str = "pending"
    friend: Party | None = None
    totals: Totals = Field(default_factory=Totals)
    signed_up_at: Timestamp | None = None
    converted_at: Timestamp | None = None
    last_kind: str | None = None

    def oldest_hold(self) -> float | None:
        return min((h.received_at for h in self.held), default=None)


class OrderState(BaseModel):
    amount: Decimal
    currency: str
    refunded: Decimal = Decimal(0)
    occurred_at: Timestamp
    attributed: bool


class CustomerState(KeyState):
    """Keyed by customer id: the friend's accepted claim, orders, refunds and totals."""

    customer_id: str
    referral: ClaimedReferral | None = None
    friend: Party | None = None
    signed_up_at: Timestamp | None = None
    orders: dict[str, OrderState] = Field(default_factory=dict)
    converted: bool = False
    converted_at: Timestamp | None = None
    held: list[HeldOrderEvent] = Field(default_factory=list)

    def oldest_hold(self) -> float | None:
        return min((h.received_at for h in self.held), default=None)

    def totals(self) -> Totals:
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
        return Totals(orders=count, revenue=revenue_text)


class EmailState(KeyState):
    """Keyed by normalised friend email: referrals naming it, signups without referral_id."""

    email: str
    candidates: dict[str, Timestamp] = Field(default_factory=dict)
    held: list[HeldSignup] = Field(default_factory=list)

    def oldest_hold(self) -> float | None:
        return min((h.received_at for h in self.held), default=None)


class OrderIndexState(KeyState):
    """Keyed by order_id: the customer of a referred friend's order, and refunds without a
    customer waiting to learn it (rule 9)."""

    order_id: str
    customer_id: str | None = None
    held: list[HeldOrderEvent] = Field(default_factory=list)

    def oldest_hold(self) -> float | None:
        return min((h.received_at for h in self.held), default=None)

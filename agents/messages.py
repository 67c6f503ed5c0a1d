"""The join's own reading of the messages on its stage topics, as msgspec structs.

Ingest validates every input event once, with the contract's pydantic models
(:mod:`schemas.events`), and forwards it as JSON text. Each stage it reaches reads it back,
and a state that holds it reads it back on every batch that touches the key: there msgspec
decodes about three times faster than pydantic validates (README, performance). These
structs take the JSON that the pydantic models write, with the same field names, so the
rules read them alike; their checks keep what the rules rely on (non-empty ids, an offset
on every timestamp, amounts the money context can add), so a bad entry on a stage topic is
dead-lettered rather than crash a step. The four input events are tagged by their ``type``,
as their JSON is.

:class:`Attribution` is an attribution event as the join writes it and reads it back.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, ClassVar

from msgspec import Meta, Struct

from schemas.attribution import AttributionKind, Party
from schemas.events import decimal_text, parse_amount

__all__ = [
    "Advocate",
    "AdvocateTotal",
    "Attribution",
    "Customer",
    "DecimalString",
    "Instant",
    "OrderCompleted",
    "OrderCustomer",
    "OrderFact",
    "OrderRefunded",
    "Person",
    "ReferralCreated",
    "SignupCompleted",
    "Tally",
]

Instant = Annotated[datetime, Meta(tz=True)]
"""An RFC 3339 timestamp with an offset."""
DecimalString = Annotated[
    str, Meta(pattern=r"^[0-9]{1,100}(\.[0-9]{1,100})?([eE][-+]?[0-9]{1,2})?\Z")
]
r"""``schemas.attribution.DecimalText`` for msgspec, whose patterns are Python's (``re.search``:
``\Z``, as ``$`` would also match before a final newline)."""
NonEmpty = Annotated[str, Meta(min_length=1, max_length=256)]
Text = Annotated[str, Meta(max_length=256)]
Email = str
"""Checked, trimmed and lower-cased by ingest (``agents.inputs``), and not checked again: a
pattern per email on every read of a message or a state that holds one was a tenth of the
stages' time (README, performance), and the rules only compare emails."""
Currency = str
"""Checked and upper-cased by ingest, as emails are; the rules only compare currencies."""


class Person(Struct, frozen=True):
    """An advocate or a friend as the join keeps them (the fields of ``Party``)."""

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


class OrderFact(Struct, frozen=True, omit_defaults=True):
    """An attributed order as messages carry it (the fields and JSON of ``OrderRef``: no
    ``net_amount`` but on refunds)."""

    order_id: str
    amount: DecimalString
    currency: Currency
    net_amount: DecimalString | None = None

    @classmethod
    def of(
        cls, order_id: str, amount: Decimal, currency: str, net_amount: Decimal | None = None
    ) -> OrderFact:
        net = None if net_amount is None else decimal_text(net_amount)
        return cls(order_id, decimal_text(amount), currency, net)


class Tally(Struct, frozen=True):
    """A referral's totals (the fields of ``Totals``)."""

    orders: int = 0
    revenue: dict[str, DecimalString] = {}


class Advocate(Struct, frozen=True, kw_only=True):
    id: NonEmpty
    email: Email
    first_name: Text | None = None
    last_name: Text | None = None


class Customer(Struct, frozen=True, kw_only=True):
    id: NonEmpty
    email: Email
    first_name: Text | None = None
    last_name: Text | None = None


class OrderCustomer(Struct, frozen=True, kw_only=True):
    id: NonEmpty
    email: Email | None = None


class _Event(Struct, frozen=True, kw_only=True, tag_field="type"):
    TYPE: ClassVar[str]

    @property
    def type(self) -> str:
        return self.TYPE


class ReferralCreated(_Event, kw_only=True, tag="referral.created"):
    TYPE = "referral.created"
    event_id: NonEmpty
    referral_id: NonEmpty
    occurred_at: Instant
    advocate: Advocate
    friend_email: Email | None = None
    campaign_id: Text | None = None


class SignupCompleted(_Event, kw_only=True, tag="signup.completed"):
    TYPE = "signup.completed"
    event_id: NonEmpty
    referral_id: NonEmpty | None = None
    occurred_at: Instant
    customer: Customer


class _OrderEvent(_Event, kw_only=True):
    event_id: NonEmpty
    order_id: NonEmpty
    referral_id: NonEmpty | None = None
    occurred_at: Instant
    amount: Decimal
    currency: Currency

    def __post_init__(self) -> None:
        parse_amount(self.amount)  # its ValueError is msgspec's ValidationError


class OrderCompleted(_OrderEvent, kw_only=True, tag="order.completed"):
    TYPE = "order.completed"
    customer: OrderCustomer


class OrderRefunded(_OrderEvent, kw_only=True, tag="order.refunded"):
    TYPE = "order.refunded"
    customer: OrderCustomer | None = None
    """None for a refund by order only: the order stage finds its customer (rule 9)."""


class Attribution(Struct, kw_only=True):
    """An attribution event (contract section 5) as the join builds it, publishes it and
    folds it back into the referral stage: the fields, order and JSON of
    ``schemas.attribution.AttributionEvent``, which the sinks read (a test holds the two
    to the same bytes)."""

    attribution_event_id: str
    kind: AttributionKind
    referral_id: str | None
    campaign_id: str | None = None
    advocate: Person | None = None
    friend: Person | None = None
    order: OrderFact | None = None
    totals: Tally = Tally()
    reason: str | None = None
    source_event_id: str
    occurred_at: Instant
    emitted_at: Instant | None = None


class AdvocateTotal(Struct, kw_only=True):
    """An advocate's revenue over all their referrals as the advocate stage publishes it:
    the fields, order and JSON of ``schemas.attribution.AdvocateTotals`` (the CRM sink
    reads it)."""

    advocate: Person
    referral_revenue_generated: dict[str, DecimalString]
    converted_referrals: int
    source_attribution_event_id: str
    emitted_at: Instant | None = None

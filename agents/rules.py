"""The attribution rules (attribution-rules.md) as pure functions; nothing here imports Faust.

The join runs in keyed stages, because no single key co-locates what a rule compares:

* **referral stage** (key ``referral_id``): the referral, signups waiting for it, the window
  and self-referral checks, and the referral's single friend slot (rule 5, second half);
* **customer stage** (key friend customer id): first-touch claim arbitration (rule 5, first
  half), orders, refunds and totals (rules 7-10);
* **email stage** (key normalised email): signups without ``referral_id`` matched through
  a referral's ``friend_email`` (rule 2);
* **order stage** (key ``order_id``): refunds without a customer wait there until the
  customer stage names the customer of their order (rule 9), then go on to it.

Each ``*_step`` takes the key's state and one message and returns the state (updated in
place: the caller owns it; no copy per event on the hot path) and a :class:`StepResult`.
Stages talk through :class:`Forward` messages (internal topics in the app), and the
referral stage folds the attribution events of its referral back into its state to learn
whether its reserved friend was accepted and to serve the lookup view.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import NamedTuple, TypeVar

from msgspec.structs import replace

from agents.messages import (
    Advocate,
    AdvocateTotal,
    Attribution,
    OrderCompleted,
    OrderCustomer,
    OrderFact,
    OrderRefunded,
    Person,
    ReferralCreated,
    SignupCompleted,
    Tally,
)
from agents.state import (
    AdvocateActivity,
    AdvocateRevenue,
    AdvocateState,
    Claim,
    ClaimedReferral,
    CustomerState,
    EmailState,
    HeldOrderEvent,
    HeldSignup,
    KeyState,
    OrderActivity,
    OrderIndexState,
    OrderOwner,
    OrderState,
    ReferralState,
)
from schemas import events
from schemas.attribution import (
    AttributionKind,
    attribution_event_id,
)
from schemas.events import MONEY, decimal_text

__all__ = [
    "Expire",
    "Forward",
    "JoinRules",
    "Released",
    "Stage",
    "StepResult",
    "advocate_step",
    "customer_step",
    "email_step",
    "order_step",
    "referral_step",
    "route",
]

K = AttributionKind
_Held = TypeVar("_Held", HeldSignup, HeldOrderEvent)


@dataclass(frozen=True, slots=True)
class JoinRules:
    """The tunables of attribution-rules.md. Defaults are the contract's."""

    signup_window: timedelta = timedelta(days=30)
    order_window: timedelta = timedelta(days=90)
    pending_ttl: float = 86400.0
    clock_skew: timedelta = timedelta(seconds=300)
    """Rule 14: every window opens this much before its start."""
    dedup_ttl: float = 72 * 3600.0
    """Rule 13: seconds of processing time an event id is remembered, at least."""
    advocate_facts_apart: bool = False
    """Send an attribution's revenue and its fact to the advocate stage as two messages, as
    workers before this one did (and read them): for a rolling upgrade from such a version
    (``REFSTREAM_ADVOCATE_FACTS_APART``)."""


class Released(StrEnum):
    """Why an event was released without any attribution (the ``reason`` label of
    ``refstream_events_released_total``)."""

    SIGNUP_NOT_REFERRED = "signup_not_referred"
    ORDER_NOT_REFERRED = "order_not_referred"
    REFUND_OF_UNKNOWN_ORDER = "refund_of_unknown_order"
    REFUND_OF_UNATTRIBUTED_ORDER = "refund_of_unattributed_order"
    REFUND_CURRENCY_MISMATCH = "refund_currency_mismatch"


class Stage(StrEnum):
    REFERRAL = "referral"
    CUSTOMER = "customer"
    EMAIL = "email"
    ADVOCATE = "advocate"
    ORDER = "order"


@dataclass(frozen=True, slots=True)
class Expire:
    """Tick: release held events older than the pending TTL (processing time)."""

    type: str = "expire"


class Forward(NamedTuple):
    """A message for another stage's key (a tuple: made for most messages a stage reads)."""

    stage: Stage
    key: str
    message: (
        events.ReferralCreated  # from ingest: the contract's validated events
        | events.SignupCompleted
        | events.OrderCompleted
        | events.OrderRefunded
        | ReferralCreated  # between stages: the join's own structs (agents.messages)
        | SignupCompleted
        | OrderRefunded
        | Claim
        | AdvocateRevenue
        | AdvocateActivity
        | OrderOwner
    )


class StepResult:
    """What one step did: its attribution events, its messages for other stages, the
    advocate totals it moved, the duplicates it dropped and the events it released.

    A plain class, not a dataclass: every message a stage applies makes one, and
    ``default_factory`` lists cost twice the time of list literals."""

    __slots__ = ("advocate_totals", "attributions", "dropped", "duplicates", "forwards")

    def __init__(self) -> None:
        self.attributions: list[Attribution] = []
        self.forwards: list[Forward] = []
        self.advocate_totals: list[AdvocateTotal] = []
        self.duplicates = 0
        self.dropped: list[Released] = []
        """Events released without any output (e.g. orders of never-referred customers)."""

    def extend(self, other: StepResult) -> None:
        self.attributions.extend(other.attributions)
        self.advocate_totals.extend(other.advocate_totals)
        self.forwards.extend(other.forwards)
        self.duplicates += other.duplicates
        self.dropped.extend(other.dropped)


def _attribution(
    kind: K,
    referral_id: str | None,
    source_event_id: str,
    occurred_at: datetime,
    *,
    referral: ClaimedReferral | None = None,
    friend: Person | None = None,
    order: OrderFact | None = None,
    totals: Tally | None = None,
    reason: str | None = None,
) -> Attribution:
    return Attribution(
        attribution_event_id=attribution_event_id(referral_id, kind, source_event_id),
        kind=kind,
        referral_id=referral_id,
        campaign_id=referral.campaign_id if referral else None,
        advocate=referral.advocate if referral else None,
        friend=friend,
        order=order,
        totals=totals or Tally(),
        reason=reason,
        source_event_id=source_event_id,
        occurred_at=occurred_at,
    )


def _within(opens: datetime, when: datetime, window: timedelta, rules: JoinRules) -> bool:
    """``opens - skew <= when <= opens + window`` (rules 3, 7 and 14), without computing
    either bound: near years 1 and 9999 those dates do not exist (``OverflowError``), while
    the difference always does."""
    return -rules.clock_skew <= when - opens <= window


def _expired(received_at: float, now: float, rules: JoinRules) -> bool:
    return now - received_at >= rules.pending_ttl


def route(
    event: events.InputEvent | ReferralCreated | SignupCompleted | OrderCompleted | OrderRefunded,
) -> list[Forward]:
    """Ingest: where a validated input event goes first (the app re-keys; producers need not).
    Takes the join's structs (as ingest reads events) or the contract's models alike."""
    kind = event.type
    if kind == "referral.created":
        forwards = [Forward(Stage.REFERRAL, event.referral_id, event)]
        if event.friend_email:
            forwards.append(Forward(Stage.EMAIL, event.friend_email, event))
        return forwards
    if kind == "signup.completed":
        if event.referral_id:
            return [Forward(Stage.REFERRAL, event.referral_id, event)]
        return [Forward(Stage.EMAIL, event.customer.email, event)]
    if kind == "order.refunded" and event.customer is None:
        return [Forward(Stage.ORDER, event.order_id, event)]
    return [Forward(Stage.CUSTOMER, event.customer.id, event)]


# --- referral stage --------------------------------------------------------------------------


def referral_step(
    state: ReferralState | None,
    message: ReferralCreated | SignupCompleted | Attribution | Expire,
    key: str,
    now: float,
    rules: JoinRules,
) -> tuple[ReferralState, StepResult]:
    state = state or ReferralState(referral_id=key)
    result = StepResult()
    match message:
        case ReferralCreated():
            if not _first_time(state, message.event_id, now, rules, result):
                return state, result
            if state.referral is not None:  # the same referral under a new event id
                result.duplicates += 1
                return state, result
            state.referral = message
            _forward_activity(
                message.advocate, message.referral_id, "referral_created", message.occurred_at,
                None, result,
            )  # fmt: skip
            _reevaluate_signups(state, now, rules, result)
        case SignupCompleted():
            if not _first_time(state, message.event_id, now, rules, result):
                return state, result
            state.held.append(HeldSignup(received_at=now, signup=message))
            _reevaluate_signups(state, now, rules, result)
        case Attribution():
            _fold_attribution(state, message)
            _forward_to_advocate(message, rules, result)
            _reevaluate_signups(state, now, rules, result)
        case Expire():
            _reevaluate_signups(state, now, rules, result, expire=True)
    return state, result


def _reevaluate_signups(
    state: ReferralState, now: float, rules: JoinRules, result: StepResult, expire: bool = False
) -> None:
    """Evaluate held signups in event-time order (rule 11); keep those still waiting."""
    if not state.held:
        return
    waiting: list[HeldSignup] = []
    for held in sorted(state.held, key=lambda h: (h.signup.occurred_at, h.signup.event_id)):
        timed_out = expire and _expired(held.received_at, now, rules)
        if not _evaluate_signup(state, held.signup, rules, result, timed_out):
            waiting.append(held)
    state.held = waiting


def _evaluate_signup(
    state: ReferralState,
    signup: SignupCompleted,
    rules: JoinRules,
    result: StepResult,
    timed_out: bool,
) -> bool:
    """Decide one signup at its referral; False while it must keep waiting."""
    customer = signup.customer
    referral = state.referral
    if referral is None:
        if timed_out:
            result.attributions.append(
                _attribution(
                    K.SIGNUP_UNATTRIBUTED, state.referral_id, signup.event_id,
                    signup.occurred_at, friend=Person.of(customer), reason="referral_unknown",
                )
            )  # fmt: skip
            return True
        return False

    def emit(kind: K, reason: str) -> bool:
        result.attributions.append(
            _attribution(
                kind, state.referral_id, signup.event_id, signup.occurred_at,
                referral=ClaimedReferral.of(referral), friend=Person.of(customer), reason=reason,
            )
        )  # fmt: skip
        return True

    advocate = referral.advocate
    if customer.id == advocate.id or customer.email == advocate.email:
        return emit(K.REFERRAL_REJECTED, "self_referral")
    if not _within(referral.occurred_at, signup.occurred_at, rules.signup_window, rules):
        return emit(K.SIGNUP_UNATTRIBUTED, "window_expired")
    if state.reserved_for is None:
        state.reserved_for = customer.id
        claim = Claim(signup=signup, referral=ClaimedReferral.of(referral))
        result.forwards.append(Forward(Stage.CUSTOMER, customer.id, claim))
        return True
    if state.reserved_for == customer.id:
        return True  # the same friend signing up again: nothing new to decide
    if state.friend_confirmed or timed_out:
        return emit(K.REFERRAL_REJECTED, "already_referred")
    return False  # the slot's holder is still being decided at the customer stage


def _fold_attribution(state: ReferralState, event: Attribution) -> None:
    """Keep the lookup view and the friend slot in step with what the join emitted."""
    state.last_kind = event.kind
    if event.kind == K.FRIEND_SIGNED_UP:
        state.friend_confirmed = True
        state.reserved_for = event.friend.id if event.friend else state.reserved_for
        state.friend = event.friend
        state.signed_up_at = event.occurred_at
        if state.status == "pending":
            state.status = "signed_up"
    elif event.kind == K.REFERRAL_REJECTED:
        holder = event.friend.id if event.friend else None
        if (
            event.reason == "already_referred"
            and not state.friend_confirmed
            and holder == state.reserved_for
        ):
            state.reserved_for = None  # the customer belongs to another referral: free the slot
    elif event.kind in (K.REFERRAL_CONVERTED, K.ORDER_ATTRIBUTED, K.ORDER_REFUNDED):
        state.totals = event.totals
        if event.kind != K.ORDER_REFUNDED:
            state.status = "converted"
            if state.converted_at is None or event.occurred_at < state.converted_at:
                state.converted_at = event.occurred_at


def _forward_to_advocate(event: Attribution, rules: JoinRules, result: StepResult) -> None:
    """Tell the advocate stage what the attribution did: an order attribution moves the
    advocate's total and is a fact of their referral (one message carries both, or two
    with ``rules.advocate_facts_apart``), a signup is a fact."""
    advocate, referral_id = event.advocate, event.referral_id
    if advocate is None or advocate.id is None or referral_id is None:
        return
    kind = event.kind
    if kind in REVENUE_KINDS:
        together = not rules.advocate_facts_apart
        revenue = AdvocateRevenue(
            advocate=advocate, referral_id=referral_id, revenue=event.totals.revenue,
            attribution_event_id=event.attribution_event_id,
            kind=kind.value if together else None,
            occurred_at=event.occurred_at if together else None,
            order=event.order if together else None,
        )  # fmt: skip
        result.forwards.append(Forward(Stage.ADVOCATE, advocate.id, revenue))
        if together:
            return
    if kind in ACTIVITY_KINDS:
        _forward_activity(advocate, referral_id, kind.value, event.occurred_at, event.order, result)


REVENUE_KINDS = frozenset({K.REFERRAL_CONVERTED, K.ORDER_ATTRIBUTED, K.ORDER_REFUNDED})
"""The attributions that move an advocate's revenue (each also one of ``ACTIVITY_KINDS``)."""
ACTIVITY_KINDS = frozenset(
    {K.FRIEND_SIGNED_UP, K.REFERRAL_CONVERTED, K.ORDER_ATTRIBUTED, K.ORDER_REFUNDED}
)


def _forward_activity(
    advocate: Advocate | Person, referral_id: str, kind: str, occurred_at: datetime,
    order: OrderFact | None, result: StepResult,
) -> None:  # fmt: skip
    """What the advocate's referral did, for the advocate API and the ROI page."""
    if advocate.id is None:
        return
    person = advocate if isinstance(advocate, Person) else Person.of(advocate)
    activity = AdvocateActivity(
        advocate=person, referral_id=referral_id, kind=kind, occurred_at=occurred_at,
        order=order,
    )  # fmt: skip
    result.forwards.append(Forward(Stage.ADVOCATE, advocate.id, activity))


# --- advocate stage --------------------------------------------------------------------------


def advocate_step(
    state: AdvocateState | None,
    message: AdvocateRevenue | AdvocateActivity,
    key: str,
    now: float,
    rules: JoinRules,
) -> tuple[AdvocateState, StepResult]:
    """sinks.md: the advocate's ``referral_revenue_generated`` over all their referrals; and
    what each referral did (activity)."""
    state = state or AdvocateState(advocate_id=key)
    result = StepResult()
    if isinstance(message, AdvocateActivity):
        _apply_activity(state, message)
        return state, result
    _apply_revenue(state, message, result)
    if message.kind is not None:  # the fact it carries, as an AdvocateActivity of it
        _apply_activity(state, message)
    return state, result


def _apply_revenue(state: AdvocateState, message: AdvocateRevenue, result: StepResult) -> None:
    if state.revenue_of(message.referral_id) == message.revenue and state.advocate:
        return  # a repeat (redelivery): the total did not move
    state.advocate = message.advocate
    state.set_revenue(message.referral_id, message.revenue)
    total: dict[str, Decimal] = {}
    for revenue in state.revenues():
        for currency, amount in revenue.items():
            total[currency] = MONEY.add(total.get(currency, Decimal(0)), Decimal(amount))
    result.advocate_totals.append(
        AdvocateTotal(
            advocate=message.advocate,
            referral_revenue_generated={c: decimal_text(v) for c, v in sorted(total.items())},
            converted_referrals=len(state.revenue),
            source_attribution_event_id=message.attribution_event_id,
        )
    )


def _apply_activity(state: AdvocateState, message: AdvocateActivity | AdvocateRevenue) -> None:
    """Set the fact ``message`` carries; each is idempotent and none depends on arrival
    order (a refund's net only ever lowers an order's)."""
    if message.kind == "referral_created" or state.advocate is None:
        state.advocate = message.advocate
    referral = state.activity(message.referral_id)
    order = message.order
    if message.kind == "referral_created":
        referral.made_at = message.occurred_at
    elif message.kind == K.FRIEND_SIGNED_UP:
        referral.signed_up = True
    elif order is not None:
        known = referral.orders.setdefault(order.order_id, OrderActivity(currency=order.currency))
        if message.kind == K.ORDER_REFUNDED:
            if order.net_amount is not None:
                net = Decimal(order.net_amount)
                if known.net is not None:
                    net = min(net, Decimal(known.net))
                known.net = decimal_text(net)
        else:
            known.amount = decimal_text(Decimal(order.amount))
            known.occurred_at = message.occurred_at
    state.set_activity(message.referral_id, referral)


# --- customer stage --------------------------------------------------------------------------


def customer_step(
    state: CustomerState | None,
    message: Claim | OrderCompleted | OrderRefunded | Expire,
    key: str,
    now: float,
    rules: JoinRules,
) -> tuple[CustomerState, StepResult]:
    state = state or CustomerState(customer_id=key)
    result = StepResult()
    match message:
        case Claim():
            _claim(state, message, now, rules, result)
        case OrderCompleted() | OrderRefunded():
            if not _first_time(state, message.event_id, now, rules, result):
                return state, result
            state.held.append(HeldOrderEvent(received_at=now, event=message))
            _reevaluate_orders(state, now, rules, result)
        case Expire():
            _reevaluate_orders(state, now, rules, result, expire=True)
    return state, result


def _claim(
    state: CustomerState, claim: Claim, now: float, rules: JoinRules, result: StepResult
) -> None:
    signup, referral = claim.signup, claim.referral
    friend = Person.of(signup.customer)
    if state.referral is None:
        state.referral = referral
        state.friend = friend
        state.signed_up_at = signup.occurred_at
        result.attributions.append(
            _attribution(
                K.FRIEND_SIGNED_UP, referral.referral_id, signup.event_id, signup.occurred_at,
                referral=referral, friend=friend,
            )
        )  # fmt: skip
        _reevaluate_orders(state, now, rules, result)
    elif state.referral.referral_id != referral.referral_id:
        result.attributions.append(
            _attribution(
                K.REFERRAL_REJECTED, referral.referral_id, signup.event_id, signup.occurred_at,
                referral=referral, friend=friend, reason="already_referred",
            )
        )  # fmt: skip
    # else: a re-sent claim for the referral that already holds this friend.


def _reevaluate_orders(
    state: CustomerState, now: float, rules: JoinRules, result: StepResult, expire: bool = False
) -> None:
    """Held orders first, then refunds, each in event-time order (rule 11)."""
    if not state.held:
        return
    waiting: list[HeldOrderEvent] = []

    def order_first(h: HeldOrderEvent) -> tuple:
        return (isinstance(h.event, OrderRefunded), h.event.occurred_at, h.event.event_id)

    for held in sorted(state.held, key=order_first):
        event = held.event
        decided = (
            _order(state, event, rules, result)
            if isinstance(event, OrderCompleted)
            else _refund(state, event, result)
        )
        if decided:
            continue
        if expire and _expired(held.received_at, now, rules):
            _release_unmatched(event, result)
        else:
            waiting.append(held)
    state.held = waiting


def _order(
    state: CustomerState, order: OrderCompleted, rules: JoinRules, result: StepResult
) -> bool:
    if state.referral is None or state.signed_up_at is None:
        return False
    if order.order_id in state.orders:
        result.duplicates += 1  # the same order under a new event id
        return True
    # Refunds by order only find this order's customer through the order stage (rule 9).
    owner = OrderOwner(order_id=order.order_id, customer_id=state.customer_id)
    result.forwards.append(Forward(Stage.ORDER, order.order_id, owner))
    ref = OrderFact.of(order.order_id, order.amount, order.currency)
    attributed = _within(state.signed_up_at, order.occurred_at, rules.order_window, rules)
    state.orders[order.order_id] = OrderState(
        amount=order.amount,
        currency=order.currency,
        occurred_at=order.occurred_at,
        attributed=attributed,
    )
    if attributed:
        kind = K.ORDER_ATTRIBUTED if state.converted else K.REFERRAL_CONVERTED
        state.converted = True
        if state.converted_at is None or order.occurred_at < state.converted_at:
            state.converted_at = order.occurred_at
        reason = None
    else:
        kind, reason = K.ORDER_UNATTRIBUTED, "window_expired"
    result.attributions.append(
        _attribution(
            kind, state.referral.referral_id, order.event_id, order.occurred_at,
            referral=state.referral, friend=state.friend, order=ref,
            totals=state.totals(), reason=reason,
        )
    )  # fmt: skip
    return True


def _refund(state: CustomerState, refund: OrderRefunded, result: StepResult) -> bool:
    order = state.orders.get(refund.order_id)
    if order is None or state.referral is None:
        return False  # rule 9: a refund of an unknown order waits like any early event
    if not order.attributed:
        result.dropped.append(Released.REFUND_OF_UNATTRIBUTED_ORDER)
        return True
    if refund.currency != order.currency:
        result.dropped.append(Released.REFUND_CURRENCY_MISMATCH)
        return True
    amount = min(refund.amount, MONEY.subtract(order.amount, order.refunded))
    order.refunded = MONEY.add(order.refunded, amount)
    net = MONEY.subtract(order.amount, order.refunded)
    ref = OrderFact.of(refund.order_id, amount, refund.currency, net)
    result.attributions.append(
        _attribution(
            K.ORDER_REFUNDED, state.referral.referral_id, refund.event_id, refund.occurred_at,
            referral=state.referral, friend=state.friend, order=ref, totals=state.totals(),
        )
    )  # fmt: skip
    return True


def _release_unmatched(event: OrderCompleted | OrderRefunded, result: StepResult) -> None:
    """Rule 7/11: a named referral that never matched is reported; the rest only counted."""
    if isinstance(event, OrderCompleted) and event.referral_id is not None:
        ref = OrderFact.of(event.order_id, event.amount, event.currency)
        result.attributions.append(
            _attribution(
                K.ORDER_UNATTRIBUTED, event.referral_id, event.event_id, event.occurred_at,
                order=ref, friend=Person(id=event.customer.id), reason="referral_unknown",
            )
        )  # fmt: skip
    elif isinstance(event, OrderCompleted):
        result.dropped.append(Released.ORDER_NOT_REFERRED)
    else:
        result.dropped.append(Released.REFUND_OF_UNKNOWN_ORDER)


# --- order stage -----------------------------------------------------------------------------


def order_step(
    state: OrderIndexState | None,
    message: OrderOwner | OrderRefunded | Expire,
    key: str,
    now: float,
    rules: JoinRules,
) -> tuple[OrderIndexState, StepResult]:
    """Rule 9: a refund without a customer waits for its order's customer, then goes to the
    customer stage as if it had named them (where it is applied, or held, as any refund)."""
    state = state or OrderIndexState(order_id=key)
    result = StepResult()
    match message:
        case OrderOwner():
            if state.customer_id is None:  # the first to name it keeps the order
                state.customer_id = message.customer_id
        case OrderRefunded():
            if not _first_time(state, message.event_id, now, rules, result):
                return state, result
            state.held.append(HeldOrderEvent(received_at=now, event=message))

    def send_on(held: HeldOrderEvent) -> bool:
        if state.customer_id is None:
            return False
        refund = replace(held.event, customer=OrderCustomer(id=state.customer_id))
        result.forwards.append(Forward(Stage.CUSTOMER, state.customer_id, refund))
        return True

    expire = isinstance(message, Expire)
    state.held = _settle(
        state.held, send_on, expire, now, rules, result, Released.REFUND_OF_UNKNOWN_ORDER
    )
    return state, result


def _first_time(
    state: KeyState, event_id: str, now: float, rules: JoinRules, result: StepResult
) -> bool:
    """Rule 1: False (and counted) when the key already applied ``event_id``."""
    if state.remember(event_id, now, rules.dedup_ttl):
        return True
    result.duplicates += 1
    return False


def _settle(
    held: list[_Held],
    settle: Callable[[_Held], bool],
    expire: bool,
    now: float,
    rules: JoinRules,
    result: StepResult,
    reason: Released,
) -> list[_Held]:
    """The held events ``settle`` cannot decide yet; on an expire tick, those past the
    pending TTL are released with ``reason`` instead (rule 11)."""
    waiting: list[_Held] = []
    for event in held:
        if settle(event):
            continue
        if expire and _expired(event.received_at, now, rules):
            result.dropped.append(reason)
        else:
            waiting.append(event)
    return waiting


# --- email stage -----------------------------------------------------------------------------


def email_step(
    state: EmailState | None,
    message: ReferralCreated | SignupCompleted | Expire,
    key: str,
    now: float,
    rules: JoinRules,
) -> tuple[EmailState, StepResult]:
    state = state or EmailState(email=key)
    result = StepResult()
    match message:
        case ReferralCreated():
            if message.referral_id in state.candidates:
                return state, result
            state.candidates[message.referral_id] = message.occurred_at
        case SignupCompleted():
            if not _first_time(state, message.event_id, now, rules, result):
                return state, result
            state.held.append(HeldSignup(received_at=now, signup=message))

    def to_referral(held: HeldSignup) -> bool:
        referral_id = _latest_referral_before(state.candidates, held.signup.occurred_at, rules)
        if referral_id is None:
            return False
        routed = replace(held.signup, referral_id=referral_id)
        result.forwards.append(Forward(Stage.REFERRAL, referral_id, routed))
        return True

    # Rule 2: a signup that named no referral, and whose email no referral names, is dropped:
    # a shop's every new customer is a signup, and most are not referred.
    expire = isinstance(message, Expire)
    state.held = _settle(
        state.held, to_referral, expire, now, rules, result, Released.SIGNUP_NOT_REFERRED
    )
    return state, result


def _latest_referral_before(
    candidates: dict[str, datetime], when: datetime, rules: JoinRules
) -> str | None:
    """Rule 2: the most recent referral naming this email that opened before the signup,
    by the clocks of rule 14 (a referral reported up to the skew after the signup counts:
    its window, rule 3, takes that signup)."""
    best: tuple[datetime, str] | None = None
    for referral_id, opened in candidates.items():
        if opened - when <= rules.clock_skew and (best is None or (opened, referral_id) > best):
            best = (opened, referral_id)
    return best[1] if best else None

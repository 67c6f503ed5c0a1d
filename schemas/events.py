"""Input events of the contract (section 4): referral, signup, order and refund.

Parsing goes through :func:`parse_event`, which takes the raw record bytes. orjson does the
JSON work; only when an amount arrives as a JSON *number* with a fraction is the record
re-read with ``parse_float=Decimal`` so that no float ever touches money.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Annotated, Literal

import orjson
from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
)

__all__ = [
    "Advocate",
    "Amount",
    "Currency",
    "Customer",
    "Email",
    "InputEvent",
    "InvalidEvent",
    "OrderCompleted",
    "OrderCustomer",
    "OrderRefunded",
    "ReferralCreated",
    "SignupCompleted",
    "Timestamp",
    "parse_event",
]

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_TIMESTAMP_RULE = "must be an RFC 3339 timestamp with an offset, e.g. 2026-11-20T10:00:00Z"


def _amount(value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise ValueError("must be a decimal string or a JSON number")
    try:
        amount = Decimal(value)
    except ArithmeticError as exc:
        raise ValueError("is not a decimal number") from exc
    if not amount.is_finite() or amount < 0:
        raise ValueError("must be a finite number >= 0")
    return amount


# Timestamps and emails are checked by pydantic's own (Rust) validators: an event is validated
# again at every stage it reaches and in every state that keeps it, and a Python validator per
# field cost a large share of the join's CPU (README, performance). Timestamps must be RFC 3339
# strings *with an offset*; pydantic also takes Unix numbers, so parse_event checks the input's
# timestamp text first. Serialised by pydantic too: ISO 8601 with the offset, "Z" for UTC.
Timestamp = Annotated[
    AwareDatetime,
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": _RFC3339.pattern}),
]
Email = Annotated[  # emails compare case-insensitively after trimming (contract section 4)
    str,
    StringConstraints(strip_whitespace=True, to_lower=True, pattern=_EMAIL.pattern),
    WithJsonSchema({"type": "string", "format": "email"}),
]
Amount = Annotated[
    Decimal,
    BeforeValidator(_amount),
    PlainSerializer(str, return_type=str),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^\s*\+?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"},
                {"type": "number", "minimum": 0},
            ]
        }
    ),
]
Currency = Annotated[  # checked and upper-cased by pydantic's own (Rust) validator, like emails
    str,
    StringConstraints(pattern=r"^[A-Za-z]{3}$", to_upper=True),
    WithJsonSchema({"type": "string", "pattern": "^[A-Za-z]{3}$", "description": "ISO 4217"}),
]
NonEmpty = Annotated[str, Field(min_length=1, max_length=256)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Advocate(_Model):
    id: NonEmpty
    email: Email
    first_name: str | None = None
    last_name: str | None = None


class Customer(_Model):
    id: NonEmpty
    email: Email
    first_name: str | None = None
    last_name: str | None = None


class OrderCustomer(_Model):
    id: NonEmpty
    email: Email | None = None


class ReferralCreated(_Model):
    event_id: NonEmpty
    type: Literal["referral.created"]
    referral_id: NonEmpty
    occurred_at: Timestamp
    advocate: Advocate
    friend_email: Email | None = None
    campaign_id: str | None = None


class SignupCompleted(_Model):
    event_id: NonEmpty
    type: Literal["signup.completed"]
    referral_id: NonEmpty | None = None
    occurred_at: Timestamp
    customer: Customer


class _OrderEvent(_Model):
    event_id: NonEmpty
    order_id: NonEmpty
    referral_id: NonEmpty | None = None
    occurred_at: Timestamp
    customer: OrderCustomer
    amount: Amount
    currency: Currency


class OrderCompleted(_OrderEvent):
    type: Literal["order.completed"]


class OrderRefunded(_OrderEvent):
    type: Literal["order.refunded"]


InputEvent = Annotated[
    ReferralCreated | SignupCompleted | OrderCompleted | OrderRefunded,
    Field(discriminator="type"),
]
_INPUT = TypeAdapter(InputEvent)
_INPUT_TYPES = {"referral.created", "signup.completed", "order.completed", "order.refunded"}


class InvalidEvent(ValueError):
    """Raised by :func:`parse_event`; ``reason`` is the short code for the DLQ header."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def parse_event(
    raw: bytes | None,
    expected: frozenset[str] | None = None,
) -> ReferralCreated | SignupCompleted | OrderCompleted | OrderRefunded:
    """Parse and validate one input record.

    :param expected: event types allowed on the source topic (``None``: any input type).
    :raises InvalidEvent: with reason ``invalid_json``, ``unknown_type``, ``unexpected_type``
        or ``schema_violation``.
    """
    if raw is None:
        raise InvalidEvent("invalid_json", "record has no value")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent("invalid_json", f"not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidEvent("invalid_json", "event must be a JSON object")
    kind = data.get("type")
    if kind not in _INPUT_TYPES:
        raise InvalidEvent("unknown_type", f"unknown event type {kind!r}"[:200])
    if expected is not None and kind not in expected:
        raise InvalidEvent("unexpected_type", f"event type {kind!r} does not belong on this topic")
    occurred_at = data.get("occurred_at")
    if not (isinstance(occurred_at, str) and _RFC3339.match(occurred_at)):
        raise InvalidEvent("schema_violation", f"occurred_at: {_TIMESTAMP_RULE}")
    if isinstance(data.get("amount"), float):
        # JSON number with a fraction: read it again without floats.
        data = json.loads(raw, parse_float=Decimal)
    try:
        return _INPUT.validate_python(data)
    except ValidationError as exc:
        raise InvalidEvent("schema_violation", _describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False, include_input=False)[:5]:
        where = ".".join(str(p) for p in err["loc"][1:]) or "event"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)

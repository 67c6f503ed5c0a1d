"""Input events of the contract (section 4): referral, signup, order and refund.

Parsing goes through :func:`parse_event`, which takes the raw record bytes. orjson does the
JSON work; only when an amount arrives as a JSON *number* with a fraction is the record
re-read with msgspec's ``float_hook=Decimal`` so that no float ever touches money.
"""

from __future__ import annotations

import re
from decimal import Context, Decimal, DivisionByZero, InvalidOperation, Overflow
from typing import Annotated, Literal

import msgspec
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
    "AMOUNT_FRACTION_DIGITS",
    "AMOUNT_INTEGER_DIGITS",
    "EMAIL_MAX_LENGTH",
    "EMAIL_PATTERN",
    "MONEY",
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
    "decimal_text",
    "load_event",
    "parse_amount",
    "parse_event",
    "validate_event",
]

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_AMOUNT_PATTERN = r"^\s*\+?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"
_AMOUNT_TEXT = re.compile(_AMOUNT_PATTERN, re.ASCII)
AMOUNT_INTEGER_DIGITS = 40
AMOUNT_FRACTION_DIGITS = 20
"""Amounts are bounded so that sums of them stay exact in :data:`MONEY` (and cost little)."""
MONEY = Context(prec=100, Emax=999, Emin=-999, traps=[InvalidOperation, DivisionByZero, Overflow])
"""The decimal context of all money arithmetic: 100 digits hold any sum of fewer than 10**40
amounts exactly (the default context's 28 would round a 29-digit total)."""
_NO_CONTROL = r"[^@\s\x00-\x1f\x7f-\x9f]+"
_EMAIL = re.compile(rf"^{_NO_CONTROL}@{_NO_CONTROL}\.{_NO_CONTROL}$")
EMAIL_PATTERN = _EMAIL.pattern
EMAIL_MAX_LENGTH = 254  # RFC 5321: a path is at most 256 octets, brackets included
_TYPE_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_TIMESTAMP_RULE = "must be an RFC 3339 timestamp with an offset, e.g. 2026-11-20T10:00:00Z"


def parse_amount(value: object) -> Decimal:
    """An amount as the contract allows it (raises ``ValueError`` otherwise)."""
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise ValueError("must be a decimal string or a JSON number")
    if isinstance(value, str) and not _AMOUNT_TEXT.fullmatch(value):
        # Decimal() also reads "-1", "NaN", "1_000" and other digits than ASCII ("١٢").
        raise ValueError('must be a decimal string >= 0, such as "49.90"')
    try:
        amount = Decimal(value)
    except ArithmeticError as exc:
        raise ValueError("is not a decimal number") from exc
    if not amount.is_finite() or amount < 0:
        raise ValueError("must be a finite number >= 0")
    exponent = amount.as_tuple().exponent
    if amount.adjusted() >= AMOUNT_INTEGER_DIGITS or exponent < -AMOUNT_FRACTION_DIGITS:
        raise ValueError(
            f"must have at most {AMOUNT_INTEGER_DIGITS} digits before the decimal point "
            f"and {AMOUNT_FRACTION_DIGITS} after it"
        )
    return amount.copy_abs()  # -0 is 0


def decimal_text(amount: Decimal) -> str:
    """A decimal string without an exponent ("100000", not "1E+5"; "0.0000001", not "1E-7")."""
    return format(amount, "f")


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
    StringConstraints(
        strip_whitespace=True, to_lower=True, max_length=EMAIL_MAX_LENGTH, pattern=_EMAIL.pattern
    ),
    WithJsonSchema({"type": "string", "format": "email"}),  # a length counted after trimming
]
Amount = Annotated[
    Decimal,
    BeforeValidator(parse_amount),
    PlainSerializer(decimal_text, return_type=str),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": _AMOUNT_PATTERN},
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
Text = Annotated[str, Field(max_length=256)]  # names, campaign ids: vendors cap strings


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Advocate(_Model):
    id: NonEmpty
    email: Email
    first_name: Text | None = None
    last_name: Text | None = None


class Customer(_Model):
    id: NonEmpty
    email: Email
    first_name: Text | None = None
    last_name: Text | None = None


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
    campaign_id: Text | None = None


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
    customer: OrderCustomer | None = None
    """Optional (gateway.md section 11.3): shops and payment providers send refunds by order
    only; the join finds the customer through ``order_id`` (rule 9)."""


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
    return validate_event(load_event(raw, expected))


_DECIMAL_FLOATS = msgspec.json.Decoder(float_hook=Decimal)
"""JSON whose numbers with a fraction are read as decimals, from their text."""


def load_event(raw: bytes | None, expected: frozenset[str] | None = None) -> dict:
    """The first half of :func:`parse_event`: the record's JSON object, its ``type`` known
    (and expected on the topic) and its ``occurred_at`` an RFC 3339 text, amounts with a
    fraction read as decimals; the fields are not validated yet (:func:`validate_event`)."""
    if raw is None:
        raise InvalidEvent("invalid_json", "record has no value")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent("invalid_json", f"not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidEvent("invalid_json", "event must be a JSON object")
    kind = data.get("type")
    if not isinstance(kind, str) or kind not in _INPUT_TYPES:
        raise InvalidEvent("unknown_type", f"unknown event type {_shown(kind)}")
    if expected is not None and kind not in expected:
        raise InvalidEvent("unexpected_type", f"event type {kind!r} does not belong on this topic")
    occurred_at = data.get("occurred_at")
    if not (isinstance(occurred_at, str) and _RFC3339.match(occurred_at)):
        raise InvalidEvent("schema_violation", f"occurred_at: {_TIMESTAMP_RULE}")
    if isinstance(data.get("amount"), float):
        # JSON number with a fraction: read it again without floats. Python's reader nests
        # less deep than orjson's (its recursion limit, about 1,000, against orjson's 1,024).
        try:
            data = _DECIMAL_FLOATS.decode(raw)
        except (RecursionError, msgspec.DecodeError):  # orjson read it: nesting too deep
            raise InvalidEvent("invalid_json", "not valid JSON: nested too deeply") from None
    return data


def validate_event(
    data: dict,
) -> ReferralCreated | SignupCompleted | OrderCompleted | OrderRefunded:
    """The second half of :func:`parse_event`: ``data`` from :func:`load_event`, validated."""
    try:
        return _INPUT.validate_python(data)
    except ValidationError as exc:
        raise InvalidEvent("schema_violation", _describe(exc)) from None


def _shown(kind: object) -> str:
    """An unknown ``type`` as a DLQ message may show it: a name, or only what it is (a
    producer's mix-up can put anything there, personal data or a deeply nested value)."""
    if isinstance(kind, str):
        return repr(kind) if _TYPE_NAME.fullmatch(kind) else f"(a string of {len(kind)} characters)"
    json_type = {dict: "an object", list: "an array", bool: "a boolean", type(None): "null"}
    return f"({json_type.get(type(kind), 'a number')})"


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False, include_input=False)[:5]:
        where = ".".join(str(p) for p in err["loc"][1:]) or "event"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)

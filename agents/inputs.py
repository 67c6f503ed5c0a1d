"""Input events as ingest reads them: the contract's checks, at msgspec's speed for events
already in canonical form.

Ingest validated every input event with the contract's pydantic models (``schemas.events``)
and wrote it out again as JSON for the stages: about 9 µs an event, a tenth of a worker's
time per input (README, performance). Most events arrive already in the form those models
give them (emails trimmed and lower-case, the currency upper-case, the amount a decimal
string without leading zeros or exponent, the timestamp with an upper-case ``T`` and at most
microseconds); such an event is read straight into the join's own struct
(``agents.messages``), whose checks are the models' for that form. Any other event, valid
or not, goes through the models as before, so the join reads the same message and a bad
event gets the contract's error either way (``tests/agents/test_inputs.py`` holds the two
paths to the same results).
"""

from __future__ import annotations

import re

import msgspec

from agents.codec import decoder
from agents.messages import OrderCompleted, OrderRefunded, ReferralCreated, SignupCompleted
from schemas.events import (
    EMAIL_MAX_LENGTH,
    EMAIL_PATTERN,
    InvalidEvent,
    decimal_text,
    load_event,
    parse_amount,
    validate_event,
)

__all__ = ["InputMessage", "read_event"]

InputMessage = ReferralCreated | SignupCompleted | OrderCompleted | OrderRefunded
_STRUCTS: dict[str, type] = {
    "referral.created": ReferralCreated,
    "signup.completed": SignupCompleted,
    "order.completed": OrderCompleted,
    "order.refunded": OrderRefunded,
}
_DECODERS = {kind: decoder(struct) for kind, struct in _STRUCTS.items()}
_EMAIL = re.compile(EMAIL_PATTERN[:-1] + r"\Z")  # the models' pattern; "$" would pass a "\n"
_CURRENCY = re.compile(r"[A-Za-z]{3}\Z")
_CANONICAL_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?(?:Z|[+-][0-9]{2}:[0-9]{2})\Z"
)


def read_event(raw: bytes | None, expected: frozenset[str] | None = None) -> InputMessage:
    """One input record as the join's struct; raises ``InvalidEvent`` as ``parse_event``
    does, with the same reason and message."""
    data = load_event(raw, expected)
    kind = data["type"]
    if _normalise(data, kind):
        try:
            return msgspec.convert(data, _STRUCTS[kind])
        except msgspec.ValidationError:
            pass  # the models word the error (or take what needs their normalising)
    model = validate_event(data)
    try:
        return _DECODERS[kind](model.model_dump_json())
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:  # never seen: a bug
        raise InvalidEvent("schema_violation", f"not readable by the join: {exc}") from None


def _normalise(data: dict, kind: str) -> bool:
    """Give ``data`` the form the models would (lower-case emails, an upper-case currency,
    the amount as ``decimal_text`` of ``parse_amount``, as the models do), where that needs
    no more than ASCII case and the contract's own amount functions, and check the emails
    and the currency, which the structs leave unchecked; False where the models must judge
    (a field of the wrong type is left to the struct's checks)."""
    if not _CANONICAL_TIME.match(data["occurred_at"]):  # load_event checked it is RFC 3339
        return False
    if kind == "referral.created":
        return _lower(data.get("advocate"), "email") and _lower(data, "friend_email")
    if not _lower(data.get("customer"), "email"):
        return False
    if kind == "signup.completed":
        return True
    currency = data.get("currency")
    if isinstance(currency, str):
        if not (currency.isascii() and _CURRENCY.match(currency)):
            return False
        data["currency"] = currency.upper()
    try:
        data["amount"] = decimal_text(parse_amount(data.get("amount")))
    except ValueError:
        return False
    return True


def _lower(holder: object, field: str) -> bool:
    """Lower-case an ASCII email in place; False for one that is not ASCII or not an email
    by the models' pattern (the models' lower-casing and trimming of other text is theirs to
    do, and so is the error). The pattern allows no whitespace, so an email that needed
    trimming goes to them too. The structs do not check emails (``agents.messages``)."""
    if not isinstance(holder, dict):
        return True
    email = holder.get(field)
    if not isinstance(email, str):
        return True
    email = email.lower()
    if not (email.isascii() and len(email) <= EMAIL_MAX_LENGTH and _EMAIL.match(email)):
        return False
    holder[field] = email
    return True

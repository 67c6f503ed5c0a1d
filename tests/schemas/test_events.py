from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest

from schemas.events import InvalidEvent, parse_event
from schemas.export import SCHEMA_DIR, render_schemas

ORDER = {
    "event_id": "evt_3", "type": "order.completed", "order_id": "ord_9", "referral_id": "ref_1",
    "occurred_at": "2026-11-22T12:00:00Z",
    "customer": {"id": "cus_bob", "email": "bob@example.com"}, "amount": "49.90", "currency": "EUR",
}  # fmt: skip


def parse(data) -> object:
    return parse_event(orjson.dumps(data) if not isinstance(data, bytes) else data)


def test_contract_examples_parse():
    referral = parse({
        "event_id": "evt_1", "type": "referral.created", "referral_id": "ref_1",
        "occurred_at": "2026-11-20T10:00:00Z",
        "advocate": {"id": "cus_adv", "email": "ann@example.com", "first_name": "Ann",
                     "last_name": "Lee"},
        "friend_email": "bob@example.com", "campaign_id": "spring",
    })  # fmt: skip
    assert referral.advocate.first_name == "Ann"
    signup = parse({
        "event_id": "evt_2", "type": "signup.completed", "referral_id": "ref_1",
        "occurred_at": "2026-11-21T09:30:00+01:00",
        "customer": {"id": "cus_bob", "email": "Bob@Example.com", "first_name": "Bob"},
    })  # fmt: skip
    assert signup.customer.email == "bob@example.com"
    assert signup.occurred_at.utcoffset().total_seconds() == 3600
    assert parse(ORDER).amount == Decimal("49.90")
    refund = parse({
        "event_id": "evt_4", "type": "order.refunded", "order_id": "ord_9",
        "occurred_at": "2026-11-25T12:00:00Z", "customer": {"id": "cus_bob"},
        "amount": "49.90", "currency": "EUR",
    })  # fmt: skip
    assert refund.referral_id is None


def test_json_number_amounts_stay_exact():
    raw = json.dumps(ORDER).replace('"49.90"', "12345678901234567890.123456789").encode()
    assert parse(raw).amount == Decimal("12345678901234567890.123456789")
    assert parse({**ORDER, "amount": 7}).amount == Decimal(7)


def test_json_number_amounts_in_deeply_nested_records_are_refused_not_raised():
    """orjson reads ~1,000 levels, and a record it reads is read again for its amount's
    digits, which nests less deep: the record is invalid, never an uncaught error."""
    nested = b"[" * 1010 + b"]" * 1010
    raw = json.dumps({**ORDER, "extra": 0}).replace('"49.90"', "49.9").encode()
    raw = raw.replace(b'"extra": 0', b'"extra": ' + nested)
    assert orjson.loads(raw)["amount"] == 49.9  # orjson reads it
    with pytest.raises(InvalidEvent) as err:
        parse_event(raw)
    assert err.value.reason == "invalid_json"
    assert err.value.message == "not valid JSON: nested too deeply"


def test_extra_fields_are_ignored_and_currency_upper_cased():
    event = parse({**ORDER, "currency": "eur", "coupon": "X", "customer": {"id": "c", "vip": 1}})
    assert event.currency == "EUR"
    assert not hasattr(event, "coupon")


@pytest.mark.parametrize(
    "text", ["2026-11-22T13:00:00+01:00", "2026-11-22t12:00:00z", "2026-11-22 12:00:00.000Z"]
)
def test_every_rfc3339_spelling_with_an_offset_is_accepted(text):
    event = parse({**ORDER, "occurred_at": text})
    assert event.occurred_at == datetime(2026, 11, 22, 12, tzinfo=UTC)


def test_serialised_event_round_trips():
    event = parse(ORDER)
    again = parse(event.model_dump_json().encode())
    assert again == event
    assert orjson.loads(event.model_dump_json())["amount"] == "49.90"


@pytest.mark.parametrize(
    ("raw", "reason", "fragment"),
    [
        (b"{not json", "invalid_json", "not valid JSON"),
        (b"[1, 2]", "invalid_json", "JSON object"),
        (None, "invalid_json", "no value"),
        ({**ORDER, "type": "order.shipped"}, "unknown_type", "order.shipped"),
        ({**ORDER, "occurred_at": "2026-11-22T12:00:00"}, "schema_violation", "occurred_at"),
        ({**ORDER, "occurred_at": 1763800000}, "schema_violation", "RFC 3339"),
        ({**ORDER, "amount": "-1"}, "schema_violation", "amount"),
        ({**ORDER, "amount": "NaN"}, "schema_violation", "amount"),
        ({**ORDER, "amount": True}, "schema_violation", "amount"),
        ({**ORDER, "amount": 4.5e400}, "invalid_json", "not valid JSON"),  # Infinity
        ({**ORDER, "currency": "EURO"}, "schema_violation", "currency"),
        ({**ORDER, "customer": {"email": "bob@example.com"}}, "schema_violation", "customer.id"),
        ({**ORDER, "customer": {"id": "c", "email": "nope"}}, "schema_violation", "email"),
        ({k: v for k, v in ORDER.items() if k != "event_id"}, "schema_violation", "event_id"),
    ],
)
def test_invalid_events_say_why(raw, reason, fragment):
    if isinstance(raw, dict):
        raw = orjson.dumps(raw) if raw.get("amount") != 4.5e400 else json.dumps(raw).encode()
    with pytest.raises(InvalidEvent) as err:
        parse_event(raw)
    assert err.value.reason == reason
    assert fragment in err.value.message


def test_error_messages_carry_no_personal_data():
    with pytest.raises(InvalidEvent) as err:
        parse({**ORDER, "customer": {"id": "c", "email": "secret-person@nowhere"}})
    assert "secret-person" not in err.value.message


def test_topic_restricts_event_types():
    with pytest.raises(InvalidEvent) as err:
        parse_event(orjson.dumps(ORDER), expected=frozenset({"referral.created"}))
    assert err.value.reason == "unexpected_type"


def test_exported_json_schemas_are_in_sync():
    rendered = render_schemas()
    assert sorted(p.name for p in SCHEMA_DIR.glob("*.json")) == sorted(rendered)
    for name, content in rendered.items():
        assert (SCHEMA_DIR / name).read_bytes() == content, f"run `refstream schemas` ({name})"

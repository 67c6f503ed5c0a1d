"""Poison and fuzzed input (issue 17, item 3): whatever a producer puts on an input topic,
the ingest's decision (``parse_event`` with the topic's event types, as ``ingest_batch``
calls it) either returns a valid event, which round-trips and keeps the contract, or says
why the record is dead-lettered. It raises nothing else."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import jsonschema
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.ingest import EXPECTED_TYPES, InputRecord, dlq_headers
from schemas.events import (
    AMOUNT_FRACTION_DIGITS,
    AMOUNT_INTEGER_DIGITS,
    EMAIL_MAX_LENGTH,
    InvalidEvent,
    OrderCompleted,
    OrderRefunded,
    ReferralCreated,
    SignupCompleted,
    parse_event,
)
from schemas.export import MODELS, SCHEMA_DIR
from tests.strategies import (
    FUZZ,
    SENTINEL,
    amounts,
    encode,
    input_events,
    json_values,
    poison_records,
    poisoned,
    rfc3339,
)

TOPICS = st.sampled_from([*EXPECTED_TYPES, "not-an-input-topic"])
REASONS = {"invalid_json", "unknown_type", "unexpected_type", "schema_violation"}
PUBLISHED = {name: json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text()) for name in MODELS}
PLAIN_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?")
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def decide(raw: bytes | None, topic: str):
    """What ingest does with a record: the event, or ``None`` once its dead letter checks out."""
    expected = EXPECTED_TYPES.get(topic)
    try:
        event = parse_event(raw, expected)
    except InvalidEvent as exc:
        assert exc.reason in REASONS
        assert 0 < len(exc.message) <= 1000
        assert SENTINEL not in exc.message, "a dead letter's message repeats personal data"
        record = InputRecord(topic, 3, 42, None, raw, 0)
        headers = dict(dlq_headers(exc.reason, exc.message, record))
        assert headers["error.reason"] == exc.reason.encode()
        headers["error.message"].decode()  # the cut at 1,000 bytes keeps it UTF-8
        return None
    assert expected is None or event.type in expected
    keeps_the_contract(event)
    again = parse_event(event.model_dump_json().encode(), expected)
    assert again == event
    assert again.model_dump_json() == event.model_dump_json()
    # the published JSON Schema never refuses what ingest accepts
    jsonschema.validate(orjson.loads(raw), PUBLISHED[event.type])
    return event


def keeps_the_contract(event) -> None:
    assert event.occurred_at.utcoffset() is not None
    assert 1 <= len(event.event_id) <= 256
    people = []
    match event:
        case ReferralCreated():
            people = [event.advocate]
            emails = [event.advocate.email, event.friend_email]
        case SignupCompleted():
            people = [event.customer]
            emails = [event.customer.email]
        case OrderCompleted() | OrderRefunded():
            emails = [event.customer.email if event.customer else None]  # refunds: optional
            amount = event.amount
            assert amount.is_finite() and not amount.is_signed()  # -0 is read as 0
            assert amount.adjusted() < AMOUNT_INTEGER_DIGITS
            assert amount.as_tuple().exponent >= -AMOUNT_FRACTION_DIGITS
            assert re.fullmatch("[A-Z]{3}", event.currency)
            text = orjson.loads(event.model_dump_json())["amount"]
            assert PLAIN_DECIMAL.fullmatch(text) and Decimal(text) == amount
    for email in filter(None, emails):
        assert 0 < len(email) <= EMAIL_MAX_LENGTH
        assert email == email.strip() and email.count("@") >= 1
        assert not CONTROL.search(email)
    for person in people:
        assert all(len(name or "") <= 256 for name in (person.first_name, person.last_name))


@settings(FUZZ, max_examples=300)
@given(raw=st.one_of(st.none(), st.binary(max_size=500)), topic=TOPICS)
def test_arbitrary_bytes_are_parsed_or_dead_lettered(raw, topic):
    decide(raw, topic)


@settings(FUZZ, max_examples=200)
@given(value=json_values, topic=TOPICS)
def test_arbitrary_json_is_parsed_or_dead_lettered(value, topic):
    decide(encode(value), topic)


@settings(FUZZ, max_examples=250)
@given(event=input_events(), topic=TOPICS)
def test_valid_events_at_the_edges_are_accepted_where_they_belong(event, topic):
    parsed = decide(encode(event), topic)
    expected = EXPECTED_TYPES.get(topic)
    assert (parsed is not None) == (expected is None or event["type"] in expected)


@settings(FUZZ, max_examples=300)
@given(event=input_events(odd=True), topic=TOPICS)
def test_events_with_odd_fields_are_parsed_or_dead_lettered(event, topic):
    decide(encode(event), topic)


@settings(FUZZ, max_examples=300)
@given(data=st.data(), topic=TOPICS)
def test_poisoned_events_are_parsed_or_dead_lettered(data, topic):
    event = data.draw(poisoned(data.draw(input_events())))
    decide(encode(event), topic)


@settings(FUZZ, max_examples=200)
@given(raw=poison_records(), topic=TOPICS)
def test_any_record_is_parsed_or_dead_lettered(raw, topic):
    decide(raw, topic)


ORDER = {
    "event_id": "evt_3", "type": "order.completed", "order_id": "ord_9", "referral_id": "ref_1",
    "occurred_at": "2026-11-22T12:00:00Z",
    "customer": {"id": "cus_bob", "email": "bob@example.com"}, "amount": "49.90", "currency": "EUR",
}  # fmt: skip


@settings(FUZZ, max_examples=200)
@given(pair=rfc3339())
def test_every_rfc3339_spelling_names_its_instant(pair):
    text, moment = pair
    event = decide(encode({**ORDER, "occurred_at": text}), "orders")
    assert event.occurred_at == moment
    assert event.occurred_at.utcoffset() == moment.utcoffset()


@settings(FUZZ, max_examples=200)
@given(pair=amounts())
def test_every_amount_spelling_keeps_its_exact_value(pair):
    value, exact = pair
    event = decide(encode({**ORDER, "amount": value}), "orders")
    assert event.amount == exact


CUSTOMER = {"id": "cus_bob", "email": "bob@example.com"}
SIGNUP = {
    "event_id": "evt_2", "type": "signup.completed", "occurred_at": "2026-11-21T09:30:00+01:00",
    "customer": CUSTOMER,
}  # fmt: skip


def outcome(raw: bytes) -> str:
    try:
        return f"accepted {parse_event(raw).model_dump(mode='json')}"
    except InvalidEvent as exc:
        return exc.reason


def with_(field: str, raw_json: bytes) -> bytes:
    """``ORDER`` with ``field`` set to the JSON text ``raw_json``."""
    return orjson.dumps({**ORDER, field: orjson.Fragment(raw_json)})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # numbers at the edges
        (with_("amount", b'"' + b"9" * 40 + b'.5"'), "accepted"),
        (with_("amount", b"1" + b"0" * 39), "accepted"),
        (with_("amount", b'"' + b"1" * 41 + b'"'), "schema_violation"),
        (with_("amount", b'"-0"'), "schema_violation"),  # the published pattern has no sign
        (with_("amount", b"-0.0"), "accepted"),  # a JSON number >= 0: read as 0.0
        (with_("amount", b'"1e400"'), "schema_violation"),
        (with_("amount", b"1e400"), "invalid_json"),  # beyond a double: orjson refuses it
        (with_("amount", b'"1e39"'), "accepted"),
        (with_("amount", b'"0.000000000000000000001"'), "schema_violation"),
        (with_("amount", b"NaN"), "invalid_json"),
        (with_("amount", b'"Infinity"'), "schema_violation"),
        (with_("amount", b'"1_000"'), "schema_violation"),
        # Unicode oddities
        (with_("customer", b'{"id":"c","email":"a\\u0000b@example.com"}'), "schema_violation"),
        (with_("customer", b'{"id":"c","email":"a@\\ud800.com"}'), "invalid_json"),
        (with_("customer", b'{"id":"\\u202e\\u200f","email":"b\\u0301@xn--p1ai.com"}'), "accepted"),
        (with_("customer", '{"id":"c","email":"ÜSER@例子.广告"}'.encode()), "accepted"),
        (with_("customer", b'{"id":"c","email":"\\"john doe\\"@example.com"}'), "schema_violation"),
        # timestamps at the edges of RFC 3339
        (with_("occurred_at", b'"0001-01-01T00:00:00+23:59"'), "accepted"),
        (with_("occurred_at", b'"9999-12-31T23:59:59.999999999-23:59"'), "accepted"),
        (with_("occurred_at", b'"2026-11-22t12:00:00z"'), "accepted"),
        (with_("occurred_at", b'"2016-12-31T23:59:60Z"'), "schema_violation"),  # a leap second
        (with_("occurred_at", b'"2026-11-22T12:00:00"'), "schema_violation"),
        (with_("occurred_at", b'"2026-11-22T12:00:00+24:00"'), "schema_violation"),
        (
            orjson.dumps({**SIGNUP, "customer": {**CUSTOMER, "first_name": "x" * 257}}),
            "schema_violation",
        ),
        # structure
        (with_("type", b'["order.completed"]'), "unknown_type"),
        (with_("type", b'{"a":1}'), "unknown_type"),
        (with_("extra", b"[" * 1010 + b"]" * 1010)[:-1] + b',"amount":1.5}', "invalid_json"),
        (with_("extra", b"[" * 1025 + b"]" * 1025), "invalid_json"),
    ],
)
def test_the_edges_named_in_the_issue(raw, expected):
    assert outcome(raw).startswith(expected)


def test_amounts_are_written_without_an_exponent():
    event = parse_event(with_("amount", b'"1.5e5"'))
    assert orjson.loads(event.model_dump_json())["amount"] == "150000"
    event = parse_event(with_("amount", b'"0.00000001"'))
    assert orjson.loads(event.model_dump_json())["amount"] == "0.00000001"  # str(): "1E-8"


def test_an_unknown_type_is_named_only_when_it_looks_like_one():
    with pytest.raises(InvalidEvent) as err:
        parse_event(with_("type", b'"ann.lee@example.com"'))
    assert err.value.message == "unknown event type (a string of 19 characters)"
    with pytest.raises(InvalidEvent) as err:
        parse_event(with_("type", b'"order.shipped"'))
    assert err.value.message == "unknown event type 'order.shipped'"

"""Ingest's reading of input events (``agents/inputs.py``): an event in the form the
contract's models would give it is read straight into the join's struct, any other goes
through the models. Whatever the record, the stage that reads the envelope entry gets the
same message (same JSON) as from the models' own reading, and a bad record the same reason
and message as ``parse_event`` gives it."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents import inputs
from agents.codec import decoder, to_json
from agents.ingest import EXPECTED_TYPES
from agents.inputs import read_event
from agents.state import MESSAGES
from dev.generator import Workload
from schemas.events import InvalidEvent, parse_event
from tests.strategies import FUZZ, encode, input_events, poison_records, poisoned

_READ = {kind: decoder(MESSAGES[kind]) for kinds in EXPECTED_TYPES.values() for kind in kinds}
_TOPIC_TYPES = [None, *EXPECTED_TYPES.values()]


def by_the_models(raw: bytes | None, expected: frozenset[str] | None) -> Any:
    """What ingest forwarded before: the models' JSON, as a stage reads it back."""
    try:
        model = parse_event(raw, expected)
    except InvalidEvent as exc:
        return ("dead-lettered", exc.reason, exc.message)
    return to_json(_READ[model.type](model.model_dump_json()))


def by_ingest(raw: bytes | None, expected: frozenset[str] | None) -> Any:
    try:
        event = read_event(raw, expected)
    except InvalidEvent as exc:
        return ("dead-lettered", exc.reason, exc.message)
    return to_json(_READ[event.type](to_json(event)))


@settings(FUZZ, max_examples=400)
@given(input_events(odd=True), st.sampled_from(_TOPIC_TYPES))
def test_odd_fields_read_as_the_models_read_them(event, expected):
    raw = encode(event)
    assert by_ingest(raw, expected) == by_the_models(raw, expected)


@settings(FUZZ, max_examples=400)
@given(input_events(), st.sampled_from(_TOPIC_TYPES))
def test_valid_events_read_as_the_models_read_them(event, expected):
    raw = encode(event)
    assert by_ingest(raw, expected) == by_the_models(raw, expected)


@settings(FUZZ, max_examples=400)
@given(st.one_of(poison_records(), input_events().flatmap(poisoned).map(encode)))
def test_poison_is_dead_lettered_as_the_models_say(raw):
    assert by_ingest(raw, None) == by_the_models(raw, None)


def test_the_workload_reads_as_the_models_read_it():
    """The bench's events, with their upper-case emails, numeric amounts and invalid ones."""
    workload = Workload.build(journeys=400, seed=5, invalid=20)
    records = [*workload.phase1, *workload.invalid]
    assert any(not r.valid for r in records)
    for record in records:
        assert by_ingest(record.value, None) == by_the_models(record.value, None)


@pytest.mark.parametrize(
    ("change", "fast"),
    [
        ({}, True),
        ({"customer": {"id": "c1", "email": "Ann@Example.COM"}}, True),  # ASCII: lower-cased here
        ({"amount": 49.9}, True),  # a JSON number: parse_amount, as the model does
        ({"amount": "1E+5"}, True),  # written out as the model writes it: "100000"
        ({"amount": 1e-7}, True),
        ({"currency": "eur"}, True),
        ({"customer": {"id": "c1", "email": "ånn@example.com"}}, False),  # not ASCII
        ({"customer": {"id": "c1", "email": " ann@example.com"}}, False),  # to be trimmed
        ({"customer": {"id": "c1", "email": "ann@example.com\n"}}, False),  # to be trimmed
        ({"customer": {"id": "c1", "email": "ann@example"}}, False),  # not an email: dead-lettered
        ({"customer": {"id": "c1", "email": "a" * 250 + "@b.co"}}, False),  # too long
        ({"currency": "EU1"}, False),  # not a currency: the models word the error
        ({"currency": "ėur"}, False),  # not ASCII
        ({"occurred_at": "2026-11-20t10:00:00z"}, False),
        ({"occurred_at": "2026-11-20T10:00:00.1234567Z"}, False),  # past microseconds
        ({"amount": "-1"}, False),  # invalid: the models word the error
    ],
)
def test_only_what_needs_the_models_goes_through_them(monkeypatch, change, fast):
    calls = []
    validate = inputs.validate_event
    monkeypatch.setattr(inputs, "validate_event", lambda data: calls.append(1) or validate(data))
    event = {
        "event_id": "e1", "type": "order.completed", "order_id": "o1",
        "occurred_at": "2026-11-20T10:00:00Z", "customer": {"id": "c1"},
        "amount": "49.90", "currency": "EUR",
    } | change  # fmt: skip
    raw = orjson.dumps(event)
    assert by_ingest(raw, None) == by_the_models(raw, None)
    assert calls == ([] if fast else [1])

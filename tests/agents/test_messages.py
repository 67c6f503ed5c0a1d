"""The join's structs (agents/messages.py) against the contract's pydantic models: the
attribution events it writes are the bytes the pydantic model writes (the sinks read them
with it), and an input event read back off a stage topic loses nothing."""

from __future__ import annotations

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.codec import to_json
from agents.messages import AdvocateTotal, Attribution
from dev.join_sim import as_read
from schemas.attribution import AttributionEvent
from schemas.events import parse_event
from tests.strategies import (
    FUZZ,
    advocate_totals,
    attribution_events,
    encode,
    input_events,
    rfc3339,
)


@settings(FUZZ, max_examples=300)
@given(event=attribution_events(), emitted=st.one_of(st.none(), rfc3339()))
def test_an_attribution_is_written_as_the_pydantic_model_writes_it(event, emitted):
    if emitted is not None:
        event = event.model_copy(update={"emitted_at": emitted[1]})
    struct = as_read(event)
    assert isinstance(struct, Attribution)
    assert to_json(struct) == event.model_dump_json().encode()
    assert AttributionEvent.model_validate_json(to_json(struct)) == event


@settings(FUZZ, max_examples=300)
@given(raw=input_events())
def test_an_input_event_read_back_by_a_stage_is_the_event_ingest_validated(raw):
    event = parse_event(encode(raw))
    assert parse_event(to_json(as_read(event))) == event


@settings(FUZZ, max_examples=200)
@given(totals=advocate_totals(), emitted=st.one_of(st.none(), rfc3339()))
def test_an_advocate_total_is_written_as_the_pydantic_model_writes_it(totals, emitted):
    totals = totals.model_copy(update={"emitted_at": emitted and emitted[1]})
    struct = msgspec.json.decode(totals.model_dump_json(), type=AdvocateTotal)
    assert to_json(struct) == totals.model_dump_json().encode()

"""Poison and fuzzed messages between stages (issue 17, item 3).

The real agent code runs with the broker left out (an in-memory table, an outbox that keeps
what it would send and checks it as the producer would): ingest on poison mixed with valid
input, every join stage on arbitrary stage-topic records, and each stage on what the others
send it. A record either takes effect or is dead-lettered with a reason; nothing raises.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from faust.types import TP
from hypothesis import given, settings
from hypothesis import strategies as st
from msgspec import ValidationError as StructError
from pydantic import ValidationError

from agents import envelopes
from agents.codec import to_json
from agents.ingest import EXPECTED_TYPES, InputRecord, ingest_batch
from agents.join import STAGES, BadMessage, JoinStage, decode_entry
from agents.outbox import Outbox
from agents.rules import ACTIVITY_KINDS, Expire, Stage
from agents.state import (
    AdvocateActivity,
    AdvocateRevenue,
    Claim,
    ClaimedReferral,
    OrderFact,
    OrderOwner,
    Person,
)
from dev.join_sim import as_read
from schemas.attribution import AdvocateTotals, AttributionEvent
from schemas.events import InvalidEvent, parse_event
from streams.app import settings as app_settings
from streams.producer import OutRecord
from streams.topics import STAGE_TOPICS
from tests.strategies import (
    FUZZ,
    advocate_totals,
    attribution_events,
    encode,
    ids,
    input_events,
    json_values,
    order_refs,
    poison_records,
    poison_values,
    poisoned,
    rfc3339,
)

_t = app_settings.topics
STAGE_OF_TOPIC = {topic: Stage(stage) for stage, topic in STAGE_TOPICS.items()}
INPUT_TOPICS = sorted(EXPECTED_TYPES)
INGEST_REASONS = {b"invalid_json", b"unknown_type", b"unexpected_type", b"schema_violation"}


class MemoryTable:
    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}

    async def read_many(self, keys: list[tuple[bytes, int]]) -> dict[bytes, bytes | None]:
        return {key: self.data.get(key) for key, _ in keys}

    async def write(self, producer: Any, writes: list[tuple[bytes, bytes, int]]) -> None:
        self.data.update((key, value) for key, value, _ in writes)

    def items(self):
        return self.data.items()


class RecordingOutbox(Outbox):
    """Keeps what ``flush`` would send (stage entries packed in envelopes, partitions left
    out), after checking each record as the producer would take it."""

    def __init__(self) -> None:
        super().__init__(None, _t, STAGE_TOPICS)
        self.sent: list[OutRecord] = []

    async def flush(self) -> None:
        records, self._records = self._records, []
        for topic, entries in self._entries.items():
            packed = envelopes.pack(item for _, item in entries)
            records.extend(OutRecord(topic, None, value) for value in packed)
        self._entries = {}
        for record in records:
            assert record.key is None or isinstance(record.key, bytes)
            assert isinstance(record.value, bytes)
            if record.timestamp:  # the producer sends int(timestamp * 1000), an int64
                assert not isinstance(record.timestamp, bool)
                assert 0 <= int(record.timestamp * 1000) < 2**63
            for name, value in record.headers or ():
                assert isinstance(name, str) and isinstance(value, bytes)
        self.sent.extend(records)

    def to(self, topic: str) -> list[OutRecord]:
        return [record for record in self.sent if record.topic == topic]


def fresh(stage: Stage) -> JoinStage:
    real = STAGES[stage]
    return JoinStage(stage, MemoryTable(), real.step, real.state_type, real.rules, 64)


class StageFeed:
    """Records for each stage's topic, with the offsets a partition would give them."""

    def __init__(self) -> None:
        self.offsets: Counter[str] = Counter()

    def events(self, topic: str, values: list[bytes | None]) -> list[SimpleNamespace]:
        events = []
        for value in values:
            offset = self.offsets[topic]
            self.offsets[topic] += 1
            message = SimpleNamespace(
                topic=topic, partition=0, tp=TP(topic, 0), offset=offset, key=b"k", value=value
            )
            events.append(SimpleNamespace(message=message))
        return events


def bad(entry: Any, stage: Stage) -> bool:
    try:
        decode_entry(entry, stage)
    except Exception:
        return True
    return False


def check_dead_letters(records: list[OutRecord], topic: str) -> None:
    for record in records:
        headers = dict(record.headers)
        assert headers["error.reason"] == b"internal_decode_error"
        assert headers["source.topic"] == topic.encode()
        assert headers["error.message"]


def check_outputs(outbox: RecordingOutbox) -> None:
    """What a stage sends is what the next one reads: every forward decodes at its stage,
    every attribution event and advocate total at the sinks."""
    for topic, stage in STAGE_OF_TOPIC.items():
        for record in outbox.to(topic):
            for entry in envelopes.unpack(record.value):
                decode_entry(entry, stage)
    for record in outbox.to(_t.attributions):
        event = AttributionEvent.model_validate_json(record.value)
        assert event.emitted_at is not None
        assert AttributionEvent.model_validate_json(event.model_dump_json()) == event
    for record in outbox.to(_t.advocate_totals):
        AdvocateTotals.model_validate_json(record.value)


def _claim(signup) -> Claim:
    referral = ClaimedReferral(
        referral_id="ref_1", advocate=Person(id="adv", email="a@example.com"),
        occurred_at=signup.occurred_at,
    )  # fmt: skip
    return Claim(signup=signup, referral=referral)


def _parsed(kind: str) -> st.SearchStrategy:
    """Valid input events of ``kind`` as the stages read them (ingest's JSON of them)."""
    return input_events(kind=kind).map(lambda event: as_read(parse_event(encode(event))))


def _revenue(totals: AdvocateTotals) -> AdvocateRevenue:
    return AdvocateRevenue(
        advocate=Person.of(totals.advocate), referral_id="ref_1",
        revenue=totals.referral_revenue_generated,
        attribution_event_id=totals.source_attribution_event_id,
    )  # fmt: skip


@st.composite
def _activities(draw) -> AdvocateActivity:
    order = draw(st.one_of(st.none(), order_refs()))
    return AdvocateActivity(
        advocate=Person.of(draw(advocate_totals()).advocate), referral_id=draw(ids),
        kind=draw(st.sampled_from(sorted({"referral_created", *ACTIVITY_KINDS}))),
        occurred_at=draw(rfc3339())[1],
        order=None if order is None else OrderFact.of(
            order.order_id, order.amount, order.currency, order.net_amount
        ),
    )  # fmt: skip


MESSAGES = {
    "referral.created": _parsed("referral.created"),
    "signup.completed": _parsed("signup.completed"),
    "order.completed": _parsed("order.completed"),
    "order.refunded": _parsed("order.refunded"),
    "claim": _parsed("signup.completed").map(_claim),
    "advocate.revenue": advocate_totals().map(_revenue),
    "advocate.activity": _activities(),
    "order.owner": st.builds(OrderOwner, order_id=ids, customer_id=ids),
    envelopes.ATTRIBUTION: attribution_events().map(as_read),
    envelopes.EXPIRE: st.just(Expire()),
}
"""A valid message of each kind."""
ACCEPTED = {
    Stage.REFERRAL: {"referral.created", "signup.completed", envelopes.ATTRIBUTION, "expire"},
    Stage.CUSTOMER: {"claim", "order.completed", "order.refunded", "expire"},
    Stage.EMAIL: {"referral.created", "signup.completed", "expire"},
    Stage.ADVOCATE: {"advocate.revenue", "advocate.activity"},
    Stage.ORDER: {"order.owner", "order.refunded", "expire"},
}


@st.composite
def entries(draw) -> Any:
    """An envelope entry: arbitrary JSON; a valid entry of any kind (for some stages, of
    another stage) in any of the three forms (``agents/envelopes.py``); or one with its
    message poisoned or a field replaced by poison."""
    mode = draw(st.sampled_from(["json", "valid", "valid", "message", "field"]))
    if mode == "json":
        return draw(json_values)
    kind = draw(st.sampled_from(sorted(MESSAGES)))
    message = draw(MESSAGES[kind])
    data = {"type": "expire"} if isinstance(message, Expire) else orjson.loads(to_json(message))
    if mode == "message":
        data = draw(poisoned(data))
    timestamp = st.one_of(st.none(), st.floats(0, 253402300799.0))
    entry = {"k": draw(st.text(max_size=8)), "ts": draw(timestamp), "t": kind, "m": data}
    form = draw(st.sampled_from(["embedded", "text", "object"]))
    if form == "text":
        entry["m"] = encode(data).decode()
    elif form == "object":
        del entry["t"]
    if mode == "field":
        entry[draw(st.sampled_from(["k", "t", "m", "ts"]))] = draw(
            st.one_of(poison_values, st.floats(-1e20, 1e20), st.sampled_from(sorted(MESSAGES)))
        )
    return entry


@st.composite
def stage_records(draw) -> bytes | None:
    choice = draw(st.integers(0, 3))
    if choice == 0:
        return draw(st.one_of(st.none(), st.binary(max_size=200)))
    if choice == 1:
        return encode(draw(json_values))
    return encode(draw(st.lists(entries(), min_size=1, max_size=6)))


@settings(FUZZ, max_examples=150)
@given(stage=st.sampled_from(list(Stage)), values=st.lists(stage_records(), max_size=4))
def test_any_stage_record_is_applied_or_dead_lettered(stage, values):
    join, outbox, topic = fresh(stage), RecordingOutbox(), STAGE_TOPICS[stage]
    asyncio.run(join.process(StageFeed().events(topic, values), outbox))
    expected = 0
    for value in values:
        try:
            expected += sum(bad(entry, stage) for entry in envelopes.unpack(value))
        except ValueError:
            expected += 1
    dead = outbox.to(_t.dlq_invalid)
    assert len(dead) == expected
    check_dead_letters(dead, topic)
    check_outputs(outbox)


@settings(FUZZ, max_examples=60)
@given(
    records=st.lists(
        st.tuples(
            st.sampled_from([*INPUT_TOPICS, "not-an-input-topic"]),
            st.one_of(poison_records(), input_events().map(encode)),
            st.sampled_from([1_800_000_000_000, 0, -1, 9_300_000_000_000_000]),  # ms; -1: none
        ),
        max_size=12,
    )
)
def test_ingest_dead_letters_poison_and_the_join_applies_the_rest(records):
    """Poison and valid input in one batch, then every stage on what ingest forwarded and
    on what the stages send each other, until nothing is left to send."""
    batch = [InputRecord(t, 0, i, b"key", v, ts) for i, (t, v, ts) in enumerate(records)]
    outbox = RecordingOutbox()
    asyncio.run(ingest_batch(batch, outbox))
    invalid = []
    for record in batch:
        try:
            parse_event(record.value, EXPECTED_TYPES.get(record.topic))
        except InvalidEvent:
            invalid.append(record)
    dead = outbox.to(_t.dlq_invalid)
    assert [(r.key, r.value) for r in dead] == [(r.key, r.value or b"") for r in invalid]
    assert all(dict(r.headers)["error.reason"] in INGEST_REASONS for r in dead)
    check_outputs(outbox)

    stages, feed, rounds = {stage: fresh(stage) for stage in Stage}, StageFeed(), 0
    pending = outbox.sent
    while stage_bound := [r for r in pending if r.topic in STAGE_OF_TOPIC]:
        rounds += 1
        assert rounds < 20, "the stages keep sending each other messages"
        step = RecordingOutbox()
        for record in stage_bound:
            join = stages[STAGE_OF_TOPIC[record.topic]]
            asyncio.run(join.process(feed.events(record.topic, [record.value]), step))
        assert step.to(_t.dlq_invalid) == [], "a stage refused what another one sent"
        check_outputs(step)
        pending = step.sent


@settings(FUZZ, max_examples=100)
@given(data=st.data(), stage=st.sampled_from(list(Stage)))
def test_valid_entries_round_trip_through_an_envelope(data, stage):
    kind = data.draw(st.sampled_from(sorted(ACCEPTED[stage])))
    message = data.draw(MESSAGES[kind])
    text = b'{"type":"expire"}' if isinstance(message, Expire) else to_json(message)
    key = data.draw(st.text(max_size=20))
    timestamp = data.draw(st.one_of(st.none(), st.floats(0, 253402300799.0)))
    items = [envelopes.entry(key, kind, text, timestamp)] * data.draw(st.integers(1, 3))
    (packed,) = envelopes.pack(items)
    for entry in envelopes.unpack(packed):
        assert decode_entry(entry, stage) == (key, timestamp, message)


SINK_RECORDS = [
    st.none(), st.binary(max_size=300), json_values.map(encode),
    attribution_events().map(lambda e: e.model_dump_json().encode()),
    advocate_totals().map(lambda t: t.model_dump_json().encode()),
    st.builds(lambda e, v: encode({**orjson.loads(e.model_dump_json()), "kind": v}),
              attribution_events(), poison_values),
]  # fmt: skip


@settings(FUZZ, max_examples=200)
@given(raw=st.one_of(*SINK_RECORDS), model=st.sampled_from([AttributionEvent, AdvocateTotals]))
def test_the_sinks_decoder_reads_a_record_or_refuses_it(raw, model):
    """``SinkConsumer._item`` (agents/fanout.py) dead-letters a record on ValidationError
    alone: nothing else may come out of the decoding."""
    try:
        event = model.model_validate_json(raw)
    except ValidationError:
        return
    assert model.model_validate_json(event.model_dump_json()) == event


# --- the bad internal messages these tests found ----------------------------------------------

SIGNUP = {
    "event_id": "evt_1", "type": "signup.completed", "referral_id": "ref_1",
    "occurred_at": "2026-09-11T10:00:00Z", "customer": {"id": "cus_1", "email": "f@example.com"},
}  # fmt: skip
CONVERTED = {
    "attribution_event_id": "a_1", "kind": "referral_converted", "referral_id": "ref_1",
    "source_event_id": "evt_3", "occurred_at": "2026-09-12T10:00:00Z",
    "advocate": {"id": "adv_1", "email": "adv@example.com"},
    "order": {"order_id": "o_1", "amount": "1", "currency": "EUR"},
}  # fmt: skip


REVENUE_X, HUGE = {"EUR": "x"}, {"EUR": "1E+999999"}
NAMELESS = {"advocate": {}, "referral_id": "r", "revenue": {}, "attribution_event_id": "a"}


def entry_of(kind: str, message: dict, ts: Any = None) -> dict:
    return {"k": "ref_1", "ts": ts, "t": kind, "m": orjson.dumps(message).decode()}


def read(entry: dict) -> Any:
    """``entry`` as a stage reads it from an envelope."""
    (read,) = envelopes.unpack(json.dumps([entry]).encode())  # orjson: 64-bit ints only
    return read


@pytest.mark.parametrize(
    ("stage", "entry"),
    [
        # advocate_step read .revenue of whatever came (AttributeError): the worker stopped
        (Stage.ADVOCATE, entry_of("signup.completed", SIGNUP)),
        (Stage.ADVOCATE, {"k": "adv_1", "ts": None, "t": "expire", "m": '{"type":"expire"}'}),
        # totals published under the advocate's id, which it lacked (AttributeError)
        (Stage.ADVOCATE, entry_of("advocate.revenue", NAMELESS)),
        # an entry of the oldest form (no kind) is dead-lettered as it was written
        (Stage.REFERRAL, {"k": "ref_1", "ts": None, "m": {"type": "claim"}}),
        # a timestamp that is not a number reached the latency metric and the producer
        (Stage.REFERRAL, entry_of("signup.completed", SIGNUP, ts="1700000000")),
        (Stage.REFERRAL, entry_of("signup.completed", SIGNUP, ts=[1])),
        # revenue the advocate stage could not add up (decimal.InvalidOperation)
        (
            Stage.REFERRAL,
            entry_of("attribution", {**CONVERTED, "totals": {"revenue": {"EUR": "x"}}}),
        ),
        (
            Stage.REFERRAL,
            entry_of("attribution", {**CONVERTED, "totals": {"revenue": {"EUR": "1E+999999"}}}),
        ),
    ],
)
def test_messages_a_stage_cannot_apply_are_bad_messages(stage, entry):
    with pytest.raises((BadMessage, ValidationError, StructError)):
        decode_entry(read(entry), stage)
    join, outbox = fresh(stage), RecordingOutbox()
    value = orjson.dumps([entry])
    asyncio.run(join.process(StageFeed().events(STAGE_TOPICS[stage], [value]), outbox))
    assert [r.value for r in outbox.to(_t.dlq_invalid)] == [orjson.dumps(entry)]


@pytest.mark.parametrize("ts", [-0.001, 1e300, 2**70])
def test_a_timestamp_out_of_the_producer_s_range_is_only_unknown(ts):
    """Kafka's "no timestamp" (-1 ms) reaches ingest as -0.001 s and rides along: the
    message is applied, its time taken as unknown."""
    entry = read(entry_of("signup.completed", SIGNUP, ts))
    key, timestamp, message = decode_entry(entry, Stage.REFERRAL)
    assert (key, timestamp, message.event_id) == ("ref_1", None, "evt_1")

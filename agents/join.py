"""The join's Faust plumbing: one agent per keyed stage, each a thin loop over the pure
step functions of :mod:`agents.rules`.

Per batch (``take_events``) a stage reads each key's state once, applies that key's
messages in order, sends every output and waits for the broker's acknowledgement, and only
then writes each touched key once (changelog first, then the store). Held events are
released by ``expire`` ticks that a timer sends through the stage's own topic, so the agent
stays the table's only writer.

A stage applies each partition's records once and in offset order, or not at all: a batch
whose records skip offsets stops the worker before anything is applied (:class:`SkippedRecords`),
and a batch that fails is never acknowledged, so the committed offsets never pass a record
that was not applied and a restarted worker reads it again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import msgspec
import orjson
from faust.types import TP, EventT, StreamT
from msgspec import Raw

from agents import envelopes
from agents.codec import decoder, from_object, to_json
from agents.ingest import dlq_headers
from agents.messages import (
    Attribution,
    OrderCompleted,
    OrderRefunded,
    ReferralCreated,
    SignupCompleted,
)
from agents.outbox import Outbox, crash_on_error
from agents.rules import (
    Expire,
    JoinRules,
    Stage,
    StepResult,
    advocate_step,
    customer_step,
    email_step,
    order_step,
    referral_step,
)
from agents.state import (
    MESSAGES,
    AdvocateActivity,
    AdvocateRevenue,
    AdvocateState,
    Claim,
    CustomerState,
    EmailState,
    OrderIndexState,
    OrderOwner,
    ReferralState,
)
from streams import tables
from streams.app import app, producer, settings
from streams.metrics import DROPPED, EVENTS, PENDING
from streams.tables import DurableTable
from streams.topics import (
    STAGE_BUFFER_ENVELOPES,
    STAGE_TOPICS,
    by_advocate,
    by_customer,
    by_email,
    by_order,
    by_referral,
)

__all__ = ["SCAN_CHUNK", "STAGES", "BadMessage", "JoinStage", "SkippedRecords", "decode_entry"]

log = logging.getLogger(__name__)

_t = settings.topics
_SOURCE_TOPIC = {
    ReferralCreated: _t.referrals,
    SignupCompleted: _t.signups,
    OrderCompleted: _t.orders,
    OrderRefunded: _t.orders,
}
_ACCEPTS: dict[Stage, tuple[type, ...]] = {
    Stage.REFERRAL: (ReferralCreated, SignupCompleted, Attribution, Expire),
    Stage.CUSTOMER: (Claim, OrderCompleted, OrderRefunded, Expire),
    Stage.EMAIL: (ReferralCreated, SignupCompleted, Expire),
    Stage.ADVOCATE: (AdvocateRevenue, AdvocateActivity),  # never holds anything: never ticked
    Stage.ORDER: (OrderOwner, OrderRefunded, Expire),
}
"""The messages each stage's step function takes; any other is a bad internal message."""
_LATEST_TIMESTAMP = 253402300799.0  # 9999-12-31T23:59:59Z: the producer's int64 milliseconds
_TICK = b'{"type":"expire"}'  # its JSON, as entries of the oldest form carried it
_NOTHING_HELD = b'"held":[]'
SCAN_CHUNK = 5_000
"""Keys a rebalance's scan reads between two turns of the event loop (~5 ms)."""
_DECODERS = {kind: decoder(model) for kind, model in MESSAGES.items()}
_TEXT = msgspec.json.Decoder(str).decode
_NOT_AN_ENTRY = "not an entry: a key, a numeric timestamp, a kind and a message"


def decode_message(entry: envelopes.Entry) -> Any:
    """An envelope entry's message: an input event, a claim, an advocate's revenue, an
    expire tick, or an attribution event folded back into the referral stage.

    Its kind ``t`` names the struct that msgspec parses the message's JSON ``m`` into.
    Entries of earlier versions carry the message's JSON as a JSON string, and entries from
    before the kind was added a JSON object with a ``type`` (none for an attribution
    event); a worker still reads both after an upgrade.
    """
    kind, raw = entry.t, memoryview(entry.m)
    if kind is None:
        message = orjson.loads(raw)
        if not isinstance(message, dict):
            raise BadMessage("a message of the oldest form is an object")
        kind = message.get("type", envelopes.ATTRIBUTION)
        return Expire() if kind == envelopes.EXPIRE else from_object(MESSAGES[kind], message)
    if kind == envelopes.EXPIRE:
        return Expire()
    if raw[:1] == b'"':  # the message's JSON as a JSON string
        return _DECODERS[kind](_TEXT(raw))
    return _DECODERS[kind](raw)


class BadMessage(ValueError):
    """An envelope entry that no stage could apply (it is dead-lettered)."""


def decode_entry(entry: envelopes.Entry | Raw, stage: Stage) -> tuple[str, float | None, Any]:
    """An envelope entry's key, source timestamp and message, checked for ``stage``.

    Raises (``BadMessage``, or whatever :func:`decode_message` raises) for an entry the
    stage cannot apply, so that it is dead-lettered rather than crash the worker when its
    step or the producer meets it: a message of another stage, a timestamp that is not a
    number. A number outside the producer's range (Kafka's "no timestamp" is -1 ms) only
    means the source's time is unknown: ``None``.
    """
    if not isinstance(entry, envelopes.Entry):
        raise BadMessage(_NOT_AN_ENTRY)
    timestamp = entry.ts
    if timestamp is not None and not 0 <= timestamp <= _LATEST_TIMESTAMP:
        timestamp = None
    message = decode_message(entry)
    if not isinstance(message, _ACCEPTS[stage]):
        raise BadMessage(f"{type(message).__name__} does not belong on the {stage} stage")
    return entry.k, timestamp, message


class SkippedRecords(RuntimeError):
    """A partition's records reached a stage with a gap in their offsets.

    Applying the later records first could change the join's results (a signup would miss
    its referral), so the batch is refused. The stage topics are written only by the join's
    own non-transactional producer and never compacted, so their offsets have no gaps of
    their own: a gap means the consumer lost records on their way to the stage.
    """

    def __init__(self, tp: TP, expected: int, got: int) -> None:
        super().__init__(f"{tp.topic}[{tp.partition}]: expected offset {expected}, got {got}")


class JoinStage:
    """One keyed stage: its table, its step function and its held-event bookkeeping."""

    def __init__(
        self,
        stage: Stage,
        table: DurableTable,
        step: Callable[..., tuple[Any, StepResult]],
        state_type: type,
        rules: JoinRules,
        batch_size: int,
    ) -> None:
        self.stage = stage
        self.batch_size = batch_size
        self.table = table
        self.producer = producer(f"join-{stage}")
        """Sends the stage's outputs and table writes (and its sweeps' releases)."""
        self.step = step
        self.state_type = state_type
        self.decode_state = decoder(state_type)
        self.holds_events: bool = state_type.HOLDS_EVENTS  # type: ignore[attr-defined]
        self.rules = rules
        self.deadlines: dict[str, float] = {}
        self.held: dict[str, int] = {}
        """Held events per key, and their sum (the pending gauge) kept as keys change."""
        self.held_total = 0
        self.needs_scan = True
        self.release_not_before = 0.0
        self.next_offsets: dict[TP, int] = {}
        """Per partition, the offset of the next record to apply (since the last rebalance)."""

    async def process(self, events: list[EventT], outbox: Outbox) -> None:
        """Apply a batch of envelopes, at most ``batch_size`` entries at a time (an envelope
        carries hundreds, and a batch's states, outputs and records are all in memory)."""
        chunk: list[tuple[EventT, list[envelopes.Entry | Raw]]] = []
        size = 0
        for event in self.in_order(events):
            try:
                entries = envelopes.unpack(event.message.value)
            except ValueError as exc:  # a bad record never escapes the agent
                self._dead_letter(event, event.message.value, exc, outbox)
                continue
            chunk.append((event, entries))
            size += len(entries)
            if size >= self.batch_size:
                await self._apply(chunk, outbox)
                chunk, size = [], 0
        await self._apply(chunk, outbox)

    def in_order(self, events: list[EventT]) -> list[EventT]:
        """The batch's records not yet applied, after checking that each partition's offsets
        follow on from the last record applied; records applied already (delivered again
        after a seek back to the committed offsets) are left out.

        Raises :class:`SkippedRecords` before anything is applied if an offset is missing.
        """
        fresh: list[EventT] = []
        next_offsets = dict(self.next_offsets)
        for event in events:
            tp, offset = event.message.tp, event.message.offset
            expected = next_offsets.get(tp, offset)  # the first after a rebalance
            if offset > expected:
                raise SkippedRecords(tp, expected, offset)
            if offset == expected:
                fresh.append(event)
                next_offsets[tp] = offset + 1
        self.next_offsets = next_offsets
        return fresh

    async def _apply(
        self, chunk: list[tuple[EventT, list[envelopes.Entry | Raw]]], outbox: Outbox
    ) -> None:
        """Group the chunk's entries by key, read the keys' states, then apply each key's
        entries in order, each parsed right before its step, and let its state go once
        encoded (only those holding events are kept, to be tracked once written).

        Parsing every message first and keeping every state until the chunk was written
        kept thousands of objects alive across the chunk, for the collector to go through
        and the processor's caches to lose: the worker spent about a sixth more CPU an
        event (README, performance, item 45)."""
        now = time.time()
        groups: dict[str, list[tuple[envelopes.Entry, tuple[EventT, list]]]] = {}
        partitions: dict[str, int] = {}  # each key's partition is its records'; the changelog's too
        for item in chunk:
            event, entries = item
            partition = event.message.partition
            for entry in entries:
                if not isinstance(entry, envelopes.Entry):  # its JSON, not even a key
                    self._dead_letter(event, bytes(entry), BadMessage(_NOT_AN_ENTRY), outbox)
                    continue
                key = entry.k
                group = groups.get(key)
                if group is None:
                    groups[key] = [(entry, item)]
                    partitions[key] = partition
                else:
                    group.append((entry, item))
        writes: list[tuple[bytes, bytes, int]] = []
        held: list[tuple[str, Any]] = []  # written states that hold events: tracked once written
        cleared: list[str] = []  # written keys that hold none (most): untracked once written
        holds_events = self.holds_events
        keys = [(key.encode(), partition) for key, partition in partitions.items()]
        stored_values = await self.table.read_many(keys)
        step, rules, accepts = self.step, self.rules, _ACCEPTS[self.stage]
        for (raw_key, partition), (key, group) in zip(keys, groups.items(), strict=True):
            stored = stored_values[raw_key]
            state = self.decode_state(stored) if stored is not None else None
            applied = False
            for entry, (event, entries) in group:
                try:  # an entry of the current form, inline (most of a stage's entries)
                    message = _DECODERS[entry.t](entry.m)
                    if not isinstance(message, accepts):
                        raise BadMessage
                    timestamp = entry.ts
                    if timestamp is not None and not 0 <= timestamp <= _LATEST_TIMESTAMP:
                        timestamp = None
                except Exception:  # any other form, or a bad entry: decode_entry says which
                    try:
                        _, timestamp, message = decode_entry(entry, self.stage)
                    except Exception as exc:  # a bad message never escapes the agent
                        value = _entry_bytes(entry, event, entries)
                        self._dead_letter(event, value, exc, outbox)
                        continue
                state, result = step(state, message, key, now, rules)
                if result.duplicates or result.dropped:
                    self._count(message, result)
                outbox.emit(result, timestamp)
                applied = True
            if applied:
                writes.append((raw_key, to_json(state), partition))
                if holds_events:
                    if state.held:
                        held.append((key, state))
                    else:
                        cleared.append(key)
        await outbox.flush()  # outputs first: a crash may repeat them, never lose them
        await self.table.write(self.producer, writes)  # durable before take_events acks it
        for key, state in held:
            self._track(key, state)
        for key in cleared:
            self._untrack(key)
        PENDING.set(sum(stage.held_total for stage in STAGES.values()))

    async def sweep(self, outbox: Outbox) -> None:
        """Timer: tick every key whose oldest held event has outlived the pending TTL."""
        if self.needs_scan:
            self.needs_scan = False
            await self._scan()
        now = time.time()
        due = [key for key, deadline in self.deadlines.items() if deadline <= now]
        for key in due:
            del self.deadlines[key]
            # its timestamp is the tick's: latency counts from the tick
            outbox.forward(self.stage, key, envelopes.EXPIRE, _TICK, now)
        await outbox.flush()

    async def _scan(self) -> None:
        """After a rebalance: find the held events of the partitions this worker now has.

        Their partners may still sit in the backlog this worker has not read (a restart or
        takeover can take longer than the TTL), so none is released before one more full
        TTL of processing time has passed.

        A table of millions of keys takes seconds to read, so the scan gives the event loop
        back every ``SCAN_CHUNK`` keys (it once held it for a second at 200,000 keys) and
        the stages go on meanwhile. Its iteration reads a snapshot, so a key whose value
        may hold events is read again as it is now before it is tracked; the stages track
        every key they write themselves. A rebalance ends the scan, and the next sweep
        starts over.
        """
        self.deadlines.clear()
        self.held.clear()
        self.held_total = 0
        self.release_not_before = time.time() + self.rules.pending_ttl
        if not self.holds_events:
            return
        for count, (key, value, current) in enumerate(self.table.scan(), start=1):
            if value and _NOTHING_HELD not in value:
                value = current(key)
                if value:
                    self._track(key.decode(), self.decode_state(value))
            if count % SCAN_CHUNK == 0:
                await asyncio.sleep(0)
                if self.needs_scan:
                    return

    def _track(self, key: str, state: Any) -> None:
        if not self.holds_events or (not state.held and key not in self.held):
            return  # most keys hold nothing, before or now (a key with a deadline is held)
        oldest = state.oldest_hold()
        if oldest is None:
            self._untrack(key)
        else:
            self.held_total -= self.held.pop(key, 0)
            deadline = oldest + self.rules.pending_ttl
            self.deadlines[key] = max(deadline, self.release_not_before)
            self.held[key] = len(state.held)
            self.held_total += len(state.held)

    def _untrack(self, key: str) -> None:
        if key in self.held:  # it held events until now
            self.held_total -= self.held.pop(key)
            self.deadlines.pop(key, None)

    def _count(self, message: Any, result: StepResult) -> None:
        if result.duplicates:
            topic = _SOURCE_TOPIC.get(type(message), self.stage.value)
            EVENTS.labels(topic, "duplicate").inc(result.duplicates)
        for reason in result.dropped:
            DROPPED.labels(reason).inc()

    def _dead_letter(
        self, event: EventT, value: bytes | None, exc: Exception, outbox: Outbox
    ) -> None:
        record = event.message
        log.error(
            "undecodable join message dead-lettered stage=%s topic=%s partition=%s offset=%s "
            "error=%s", self.stage, record.topic, record.partition, record.offset,
            type(exc).__name__,
        )  # fmt: skip
        outbox.send(
            _t.dlq_invalid,
            record.key,
            value or b"",
            headers=dlq_headers("internal_decode_error", type(exc).__name__, record),
        )


def _entry_bytes(
    entry: envelopes.Entry | Raw, event: EventT, entries: list[envelopes.Entry | Raw]
) -> bytes:
    """A bad entry for its dead letter, as it was in its envelope (one of ``entries``)."""
    if isinstance(entry, Raw):
        return bytes(entry)
    index = next(i for i, other in enumerate(entries) if other is entry)
    return envelopes.entry_bytes(event.message.value, index)


def _stage(stage: Stage, table: DurableTable, step: Callable[..., Any], state: type) -> JoinStage:
    return JoinStage(stage, table, step, state, settings.join_rules, settings.batch_size)


STAGES: dict[Stage, JoinStage] = {
    Stage.REFERRAL: _stage(Stage.REFERRAL, tables.referrals, referral_step, ReferralState),
    Stage.CUSTOMER: _stage(Stage.CUSTOMER, tables.customers, customer_step, CustomerState),
    Stage.EMAIL: _stage(Stage.EMAIL, tables.emails, email_step, EmailState),
    Stage.ADVOCATE: _stage(Stage.ADVOCATE, tables.advocates, advocate_step, AdvocateState),
    Stage.ORDER: _stage(Stage.ORDER, tables.orders, order_step, OrderIndexState),
}


def _outbox(stage: JoinStage) -> Outbox:
    return Outbox(stage.producer, settings.topics, STAGE_TOPICS)


async def _run(stage: JoinStage, stream: StreamT) -> None:
    """Feed the stage its batches. ``take_events`` acknowledges a batch's records when the
    batch ends, even one that raised, and Faust would then commit past records never
    applied; an extra reference held on each record while the batch runs, and released only
    once it has succeeded, keeps a failed batch unacknowledged."""
    outbox = _outbox(stage)
    takes = STAGE_BUFFER_ENVELOPES // 2  # envelopes, each of up to hundreds of entries
    async for events in stream.take_events(takes, settings.batch_linger_seconds):
        for event in events:
            event.message.incref()
        async with crash_on_error(app):
            await stage.process(events, outbox)
        for event in events:
            event.message.decref()


@app.agent(by_referral, concurrency=1)
async def join_referrals(stream: StreamT) -> None:
    await _run(STAGES[Stage.REFERRAL], stream)


@app.agent(by_customer, concurrency=1)
async def join_customers(stream: StreamT) -> None:
    await _run(STAGES[Stage.CUSTOMER], stream)


@app.agent(by_email, concurrency=1)
async def join_emails(stream: StreamT) -> None:
    await _run(STAGES[Stage.EMAIL], stream)


@app.agent(by_advocate, concurrency=1)
async def join_advocates(stream: StreamT) -> None:
    await _run(STAGES[Stage.ADVOCATE], stream)


@app.agent(by_order, concurrency=1)
async def join_orders(stream: StreamT) -> None:
    await _run(STAGES[Stage.ORDER], stream)


_SWEEP_SECONDS = min(30.0, max(0.5, settings.pending_ttl_seconds / 10))


@app.timer(_SWEEP_SECONDS)
async def release_held_events() -> None:
    for stage in STAGES.values():
        await stage.sweep(_outbox(stage))


@app.on_rebalance_complete.connect
async def _rescan_after_rebalance(sender: Any = None, **kwargs: Any) -> None:
    for stage in STAGES.values():
        stage.needs_scan = True
        stage.next_offsets.clear()


@app.on_partitions_revoked.connect
async def _stop_scanning(sender: Any = None, *args: Any, **kwargs: Any) -> None:
    """A scan under way reads partitions this worker may no longer have: end it."""
    for stage in STAGES.values():
        stage.needs_scan = True

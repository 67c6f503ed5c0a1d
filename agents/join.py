"""The join's Faust plumbing: one agent per keyed stage, each a thin loop over the pure
step functions of :mod:`agents.rules`.

Per batch (``take_events``) a stage reads each key's state once, applies that key's
messages in order, sends every output and waits for the broker's acknowledgement, and only
then writes each touched key once. Held events are released by ``expire`` ticks that a
timer sends through the stage's own topic, so the agent stays the table's only writer.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import faust.streams
import orjson
from faust.types import EventT, StreamT
from pydantic import BaseModel

from agents.ingest import dlq_headers
from agents.outbox import Outbox
from agents.rules import (
    Expire,
    JoinRules,
    Stage,
    StepResult,
    customer_step,
    email_step,
    referral_step,
)
from agents.state import Claim, CustomerState, EmailState, ReferralState
from schemas.attribution import AttributionEvent
from schemas.events import OrderCompleted, OrderRefunded, ReferralCreated, SignupCompleted
from streams import tables
from streams.app import app, settings
from streams.metrics import DROPPED, EVENTS, PENDING
from streams.tables import DurableTable
from streams.topics import STAGE_TOPICS, by_customer, by_email, by_referral

__all__ = ["STAGES", "JoinStage"]

log = logging.getLogger(__name__)

_t = settings.topics
_MESSAGES: dict[str, type[BaseModel]] = {
    "referral.created": ReferralCreated,
    "signup.completed": SignupCompleted,
    "order.completed": OrderCompleted,
    "order.refunded": OrderRefunded,
    "claim": Claim,
}
_SOURCE_TOPIC = {
    ReferralCreated: _t.referrals,
    SignupCompleted: _t.signups,
    OrderCompleted: _t.orders,
    OrderRefunded: _t.orders,
}
EXPIRE = b'{"type":"expire"}'
_NOTHING_HELD = b'"held":[]'


def decode_message(event: EventT) -> Any:
    record = event.message
    if record.topic == _t.attributions:
        return AttributionEvent.model_validate_json(record.value)
    data = orjson.loads(record.value)
    kind = data.get("type")
    if kind == "expire":
        return Expire()
    return _MESSAGES[kind].model_validate(data)


@contextmanager
def event_context(event: EventT) -> Iterator[None]:
    """Make ``event`` Faust's current event while writing its key.

    Outside ``async for event in stream`` Faust has no current event, yet its RocksDB store
    files a write under the current event's partition and the changelog record goes there
    too. Every message of one key arrives on that key's partition, so any of them will do.
    """
    token = faust.streams._current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        faust.streams._current_event.reset(token)


class JoinStage:
    """One keyed stage: its table, its step function and its held-event bookkeeping."""

    def __init__(
        self,
        stage: Stage,
        table: DurableTable,
        step: Callable[..., tuple[Any, StepResult]],
        state_type: type[BaseModel],
        rules: JoinRules,
    ) -> None:
        self.stage = stage
        self.table = table
        self.step = step
        self.state_type = state_type
        self.rules = rules
        self.deadlines: dict[str, float] = {}
        self.held: dict[str, int] = {}
        self.needs_scan = True
        self.release_not_before = 0.0

    async def process(self, events: list[EventT], outbox: Outbox) -> None:
        now = time.time()
        groups: dict[bytes, list[EventT]] = {}
        for event in events:
            key = event.message.key
            if key is not None:  # attribution events with no referral are not ours
                groups.setdefault(key, []).append(event)
        writes = []
        for raw_key, group in groups.items():
            key = raw_key.decode()
            stored = self.table.get(raw_key)
            state = self.state_type.model_validate_json(stored) if stored is not None else None
            for event in group:
                try:
                    message = decode_message(event)
                except Exception as exc:  # a bad record never escapes the agent
                    await self._dead_letter(event, exc, outbox)
                    continue
                state, result = self.step(state, message, key, now, self.rules)
                self._count(message, result)
                await outbox.emit(result, event.message.timestamp)
            if state is not None:
                writes.append((raw_key, key, state, group[-1]))
        await outbox.flush()
        for raw_key, key, state, event in writes:
            with event_context(event):
                self.table[raw_key] = state.model_dump_json().encode()
            self._track(key, state)
        await self.table.written()  # durable before take_events acks this batch
        PENDING.set(sum(sum(s.held.values()) for s in STAGES.values()))

    async def sweep(self, outbox: Outbox) -> None:
        """Timer: tick every key whose oldest held event has outlived the pending TTL."""
        if self.needs_scan:
            self.needs_scan = False
            self._scan()
        now = time.time()
        due = [key for key, deadline in self.deadlines.items() if deadline <= now]
        for key in due:
            del self.deadlines[key]
            await outbox.send(STAGE_TOPICS[self.stage], key.encode(), EXPIRE)
        await outbox.flush()

    def _scan(self) -> None:
        """After a rebalance: find the held events of the partitions this worker now has.

        Their partners may still sit in the backlog this worker has not read (a restart or
        takeover can take longer than the TTL), so none is released before one more full
        TTL of processing time has passed.
        """
        self.deadlines.clear()
        self.held.clear()
        self.release_not_before = time.time() + self.rules.pending_ttl
        for key, value in self.table.items():
            if value and _NOTHING_HELD not in value:
                state = self.state_type.model_validate_json(value)
                self._track(key.decode(), state)

    def _track(self, key: str, state: Any) -> None:
        oldest = state.oldest_hold()
        if oldest is None:
            self.deadlines.pop(key, None)
            self.held.pop(key, None)
        else:
            deadline = oldest + self.rules.pending_ttl
            self.deadlines[key] = max(deadline, self.release_not_before)
            self.held[key] = len(state.held)

    def _count(self, message: Any, result: StepResult) -> None:
        if result.duplicates:
            topic = _SOURCE_TOPIC.get(type(message), self.stage.value)
            EVENTS.labels(topic, "duplicate").inc(result.duplicates)
        for reason in result.dropped:
            DROPPED.labels(reason).inc()

    async def _dead_letter(self, event: EventT, exc: Exception, outbox: Outbox) -> None:
        record = event.message
        log.error(
            "undecodable join message dead-lettered stage=%s topic=%s partition=%s offset=%s "
            "error=%s", self.stage, record.topic, record.partition, record.offset,
            type(exc).__name__,
        )  # fmt: skip
        await outbox.send(
            _t.dlq_invalid,
            record.key,
            record.value or b"",
            headers=dlq_headers("internal_decode_error", type(exc).__name__, event),
        )


STAGES: dict[Stage, JoinStage] = {
    Stage.REFERRAL: JoinStage(
        Stage.REFERRAL, tables.referrals, referral_step, ReferralState, settings.join_rules
    ),
    Stage.CUSTOMER: JoinStage(
        Stage.CUSTOMER, tables.customers, customer_step, CustomerState, settings.join_rules
    ),
    Stage.EMAIL: JoinStage(Stage.EMAIL, tables.emails, email_step, EmailState, settings.join_rules),
}


def _outbox() -> Outbox:
    return Outbox(app.producer, settings.topics, STAGE_TOPICS)


async def _run(stage: JoinStage, stream: StreamT) -> None:
    outbox = _outbox()
    async for events in stream.take_events(settings.batch_size, settings.batch_linger_seconds):
        await stage.process(events, outbox)


@app.agent(by_referral, concurrency=1)
async def join_referrals(stream: StreamT) -> None:
    await _run(STAGES[Stage.REFERRAL], stream)


@app.agent(by_customer, concurrency=1)
async def join_customers(stream: StreamT) -> None:
    await _run(STAGES[Stage.CUSTOMER], stream)


@app.agent(by_email, concurrency=1)
async def join_emails(stream: StreamT) -> None:
    await _run(STAGES[Stage.EMAIL], stream)


_SWEEP_SECONDS = min(30.0, max(0.5, settings.pending_ttl_seconds / 10))


@app.timer(_SWEEP_SECONDS)
async def release_held_events() -> None:
    outbox = _outbox()
    for stage in STAGES.values():
        await stage.sweep(outbox)


@app.on_rebalance_complete.connect
async def _rescan_after_rebalance(sender: Any = None, **kwargs: Any) -> None:
    for stage in STAGES.values():
        stage.needs_scan = True

"""A sink's consumer after a rebalance dropped its batch (agents/fanout.py): it reads again
exactly what the new assignment fetched, never seeking forward past the committed offset
that the assignment started from."""

from __future__ import annotations

import asyncio
import os
import time
from types import SimpleNamespace

import pytest
from aiokafka import TopicPartition

from sinks.delivery.breaker import State
from sinks.registry import build_sinks, load, sink_class
from streams.settings import DEFAULT_SINKS

# agents.fanout builds the configured sinks when imported: give them their emulators' settings
for _name in DEFAULT_SINKS:
    for key, value in load(sink_class(_name).emulator)().env("http://127.0.0.1:9").items():
        os.environ.setdefault(key, value)

from agents.fanout import SinkConsumer  # noqa: E402

TP0, TP1 = TopicPartition("attributions", 0), TopicPartition("attributions", 1)


def record(tp: TopicPartition, offset: int) -> SimpleNamespace:
    return SimpleNamespace(topic=tp.topic, partition=tp.partition, offset=offset)


class Consumer:
    """Answers ``getmany`` from a script; a step may be a callable (a rebalance)."""

    def __init__(self, script: list, owned: set[TopicPartition]) -> None:
        self.script, self.owned, self.seeks = script, owned, {}

    async def getmany(self, timeout_ms: int, max_records: int) -> dict:
        step = self.script.pop(0) if self.script else {}
        while callable(step):
            step()
            step = self.script.pop(0) if self.script else {}
        if not step:
            await asyncio.sleep(timeout_ms / 1000)  # nothing came within the poll's time
        return {tp: [record(tp, o) for o in offsets] for tp, offsets in step.items()}

    def assignment(self) -> set[TopicPartition]:
        return self.owned

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks[tp] = offset


def sink_consumer() -> SinkConsumer:
    return SinkConsumer(build_sinks(("analytics",))[0])


async def test_a_dropped_batch_rewinds_to_what_the_new_assignment_fetched():
    sink = sink_consumer()
    # Fetched before the rebalance: TP0 5-6 and TP1 8. The new assignment restarts TP0
    # from its committed offset 3 and the same poll reads 3-4; TP1 brings nothing new.
    consumer = Consumer([{TP0: [5, 6], TP1: [8]}, sink.first_fetched.clear, {TP0: [3, 4]}],
                        {TP0, TP1})  # fmt: skip
    sink.cut_at = time.monotonic()  # a batch was just cut: this one collects for a linger
    fetched = await sink._poll(consumer)
    assert [r.offset for r in fetched[TP0]] == [5, 6, 3, 4]
    sink._rewind(consumer)
    assert consumer.seeks == {TP0: 3}  # not TP1 to 8: that would skip what it now re-reads
    assert not sink.first_fetched


async def test_a_dropped_batch_rewinds_only_partitions_still_owned():
    sink = sink_consumer()
    consumer = Consumer([{TP0: [7, 8], TP1: [2]}], {TP1})
    await sink._poll(consumer)
    sink._rewind(consumer)
    assert consumer.seeks == {TP1: 2}


async def test_each_poll_starts_from_its_own_first_records():
    sink = sink_consumer()
    await sink._poll(Consumer([{TP0: [1, 2]}], {TP0}))  # delivered: done with
    consumer = Consumer([{TP0: [3]}], {TP0})
    await sink._poll(consumer)
    sink._rewind(consumer)
    assert consumer.seeks == {TP0: 3}


class Timed(Consumer):
    """Each step's records arrive ``gap`` seconds into its ``getmany``."""

    def __init__(self, script: list, owned: set[TopicPartition], gap: float) -> None:
        super().__init__(script, owned)
        self.gap, self.calls = gap, 0

    async def getmany(self, timeout_ms: int, max_records: int) -> dict:
        self.calls += 1
        if self.script:
            await asyncio.sleep(min(self.gap, timeout_ms / 1000))
        return await super().getmany(timeout_ms, max_records)


async def test_a_batch_is_cut_a_linger_after_the_previous_one_not_after_its_delivery():
    """The previous delivery's time counts towards the next batch's linger: records that
    came while it ran are not held back a whole linger more."""
    sink = sink_consumer()
    linger = sink.sink.policy.linger
    steps = [{TP0: [offset]} for offset in range(100)]
    consumer = Timed(steps, {TP0}, gap=linger / 10)
    await sink._poll(consumer)  # the first after a quiet time: cut at once
    assert consumer.calls == 1
    delivering = linger * 0.6
    await asyncio.sleep(delivering)  # the delivery of the first batch
    started = time.monotonic()
    fetched = await sink._poll(consumer)
    took = time.monotonic() - started
    assert took >= linger - delivering - 0.01  # it collected for the rest of the linger…
    assert took < 0.8 * linger  # …not for a whole linger more
    assert len(fetched[TP0]) >= 2
    second = sink.cut_at
    await sink._poll(consumer)
    assert sink.cut_at - second >= linger - 0.01  # still at most one batch per linger


async def test_a_batch_waits_for_the_bulk_limit_only_if_it_would_go_in_bulk():
    """Klaviyo: fewer records than ``bulk_from`` go one per request, within the single
    limit; only a batch that would be a bulk job waits (collecting) for a job's turn."""
    sink = SinkConsumer(build_sinks(("email",))[0])
    bulk_from = sink.sink.policy.bulk_from
    turn = time.monotonic() + 0.5  # the next bulk job's
    sink.deliverer.bulk_limiter.delay = lambda: max(0.0, turn - time.monotonic())

    started = time.monotonic()
    await sink._poll(Consumer([{TP0: list(range(bulk_from - 1))}], {TP0}))
    assert time.monotonic() - started < 0.1

    sink.cut_at = float("-inf")  # quiet since: only the limit holds this one back
    started = time.monotonic()
    turn = started + 0.5
    fetched = await sink._poll(Consumer([{TP0: list(range(bulk_from))}], {TP0}))
    assert time.monotonic() - started >= 0.45
    assert len(fetched[TP0]) == bulk_from


async def test_a_batch_that_grows_to_bulk_size_while_collecting_waits_for_the_bulk_turn():
    """Records that come in during the linger can make a batch of single requests a bulk
    job: from then on it collects until the job's turn, not only for the linger."""
    sink = SinkConsumer(build_sinks(("email",))[0])
    bulk_from, linger = sink.sink.policy.bulk_from, sink.sink.policy.linger
    turn = time.monotonic() + 10 * linger  # the next bulk job's
    sink.deliverer.bulk_limiter.delay = lambda: max(0.0, turn - time.monotonic())
    steps = [{TP0: list(range(bulk_from - 1))}, {TP0: [bulk_from - 1]}]
    consumer = Timed(steps, {TP0}, gap=linger / 4)

    sink.cut_at = time.monotonic()  # a batch was just cut: this one collects for a linger
    started = time.monotonic()
    turn = started + 10 * linger
    fetched = await sink._poll(consumer)
    took = time.monotonic() - started
    assert len(fetched[TP0]) == bulk_from
    assert 10 * linger - 0.05 <= took < 10 * linger + 0.2


async def test_the_dead_letter_topic_is_created_before_the_sink_consumes(monkeypatch) -> None:
    """Not at the first dead letter: a record sent to a partition created a moment before
    met NotLeaderForPartition, and the sink's delivery hung on its retry for minutes."""
    import agents.fanout as fanout

    declared: list[str] = []

    async def ensure_topic(name: str) -> None:
        declared.append(name)

    class Consuming(Exception):
        pass

    def consumer() -> None:
        raise Consuming  # the point where the sink would start to consume

    async def setup() -> None:
        return None

    monkeypatch.setattr(fanout, "ensure_topic", ensure_topic)
    sink = sink_consumer()
    monkeypatch.setattr(sink.sink, "setup", setup)
    monkeypatch.setattr(sink, "_consumer", consumer)
    with pytest.raises(Consuming):
        await sink.run()
    assert sink.dead_letters.topic in declared
    assert sink.dead_letters.topic.endswith("analytics")


def test_a_delivery_waiting_for_the_vendors_daily_limit_is_not_stuck() -> None:
    """Stuck means the vendor answers and delivery still does not end: an open circuit or a
    spent daily limit (HubSpot's resets at midnight) is a wait with alerts of its own."""
    sink = sink_consumer()
    now = [0.0]
    sink.watch._clock = lambda: now[0]
    sink.watch.started()
    now[0] = 600.0
    assert sink.watch.stuck(300)
    sink.deliverer.quota_spent_until = time.monotonic() + 60  # a DAILY 429 just now
    assert not sink.watch.stuck(300)
    sink.deliverer.quota_spent_until = time.monotonic() - 1  # two pauses without one
    assert sink.watch.stuck(300)
    sink.deliverer.breaker.state = State.OPEN
    assert not sink.watch.stuck(300)
    sink.watch.finished()

"""A stage applies each partition's records once and in offset order (agents/join.py)."""

from types import SimpleNamespace

import pytest
from faust.types import TP
from faust.types.tuples import Message

from agents import join
from agents.join import STAGES, SkippedRecords
from agents.rules import Stage

A, B = TP("by-referral", 0), TP("by-referral", 1)


def records(tp: TP, *offsets: int) -> list[SimpleNamespace]:
    return [SimpleNamespace(message=SimpleNamespace(tp=tp, offset=o)) for o in offsets]


def offsets(events) -> list[tuple[int, int]]:
    return [(e.message.tp.partition, e.message.offset) for e in events]


@pytest.fixture
def stage():
    stage = STAGES[Stage.REFERRAL]
    stage.next_offsets.clear()
    yield stage
    stage.next_offsets.clear()


def test_each_partition_follows_on_from_its_last_applied_record(stage):
    first = records(A, 7, 8) + records(B, 0) + records(A, 9)
    assert offsets(stage.in_order(first)) == [(0, 7), (0, 8), (1, 0), (0, 9)]
    assert offsets(stage.in_order(records(B, 1, 2) + records(A, 10))) == [(1, 1), (1, 2), (0, 10)]
    assert stage.next_offsets == {A: 11, B: 3}


def test_records_delivered_again_after_a_seek_back_are_left_out(stage):
    stage.in_order(records(A, 0, 1, 2, 3, 4))
    assert offsets(stage.in_order(records(A, 3, 4, 5, 6))) == [(0, 5), (0, 6)]


@pytest.mark.parametrize("missing", [[5], [5, 6, 7]])
def test_a_gap_refuses_the_whole_batch_before_anything_is_applied(stage, missing):
    stage.in_order(records(A, 3, 4) + records(B, 0))
    after = max(missing) + 1
    with pytest.raises(SkippedRecords, match=r"by-referral\[0\]: expected offset 5, got "):
        stage.in_order(records(B, 1) + records(A, after, after + 1))
    assert stage.next_offsets == {A: 5, B: 1}  # B's record 1 was not taken either


def test_after_a_rebalance_a_partition_starts_where_the_consumer_put_it(stage):
    stage.in_order(records(A, 0, 1))
    stage.next_offsets.clear()  # what the rebalance handler does
    assert offsets(stage.in_order(records(A, 40, 41))) == [(0, 40), (0, 41)]


class Batches:
    """A stream with the ack contract of Faust's ``take_events``: a batch's records are
    acked when the batch ends, however it ends."""

    def __init__(self, *batches: list) -> None:
        self.batches = batches
        self.generator = None

    def take_events(self, max_: int, within: float):
        async def batches():
            for batch in self.batches:
                try:
                    yield batch
                finally:
                    for event in batch:
                        event.message.ack(consumer=None)

        self.generator = batches()
        return self.generator


def delivered(*offsets: int) -> list[SimpleNamespace]:
    """Records as the conductor hands them to one stream: one reference each."""
    events = []
    for offset in offsets:
        message = Message("by-referral", 0, offset, 0.0, 0, None, None, b"[]", None)
        message.incref()
        events.append(SimpleNamespace(message=message))
    return events


async def test_a_batch_that_fails_is_never_acknowledged(monkeypatch):
    crashed: list[Exception] = []

    async def crash(exc: Exception) -> None:
        crashed.append(exc)

    monkeypatch.setattr(join.app, "crash", crash)
    good, bad = delivered(0, 1), delivered(2, 3)
    stream = Batches(good, bad)

    async def process(events, outbox) -> None:
        if events is bad:
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await join._run(SimpleNamespace(process=process, producer=None), stream)
    await stream.generator.aclose()  # what the event loop does to the abandoned generator
    assert [type(exc) for exc in crashed] == [RuntimeError]
    assert all(event.message.acked for event in good)
    assert not any(event.message.acked for event in bad)

"""The join's own code per event, without Faust or a broker: ``python -m bench.inproc``.

Drives the real ``ingest_batch`` and ``JoinStage.process`` over the bench workload with an
in-memory producer (records land in per-topic lists; stage envelopes are fed to their stage
until none are left) and dict tables. What it times is validation, the rules, envelopes and
serialisation: the part of a worker's CPU that is ours, as opposed to Faust's per-record
machinery, which ``make bench`` measures as the floor. ``--profile`` prints a cProfile of it.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import time
from collections import Counter
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from faust.types import TP

import agents.outbox
from agents.ingest import InputRecord, ingest_batch
from agents.join import STAGES
from agents.outbox import Outbox
from agents.rules import Stage
from dev.generator import Workload
from streams.app import settings, tune_gc
from streams.producer import OutRecord, placer_of
from streams.topics import STAGE_TOPICS

PARTITIONS = list(range(8))
_PLACE = placer_of(PARTITIONS)


class MemoryProducer:
    """Places records like the BatchProducer and keeps them per topic."""

    def __init__(self) -> None:
        self.topics: dict[str, list[OutRecord]] = {}
        self._offset = 0

    async def partitioner(self, topic: str) -> Callable[[bytes | None], int]:
        return _PLACE

    async def send_all(self, records: list[OutRecord]) -> None:
        for record in records:
            self._offset += 1
            record.offset = self._offset
            if record.partition is None:
                record.partition = _PLACE(record.key)
            self.topics.setdefault(record.topic, []).append(record)

    def take(self, topic: str) -> list[OutRecord]:
        return self.topics.pop(topic, [])


class MemoryTable:
    def __init__(self) -> None:
        self.data: dict[bytes, bytes | None] = {}

    async def read_many(self, keys: list[tuple[bytes, int]]) -> dict[bytes, bytes | None]:
        return {key: self.data.get(key) for key, _ in keys}

    async def write(self, producer: Any, items: list[tuple[bytes, bytes | None, int]]) -> None:
        self.data.update((key, value) for key, value, _ in items)


_NEXT_OFFSET: Counter[TP] = Counter()


def _event(topic: str, partition: int, key: bytes | None, value: bytes | None) -> Any:
    """What the agents read of a Faust event; each partition's offsets follow on, as a stage
    requires (``JoinStage.in_order``)."""
    tp = TP(topic, partition)
    offset = _NEXT_OFFSET[tp]
    _NEXT_OFFSET[tp] += 1
    message = SimpleNamespace(
        topic=topic, partition=partition, tp=tp, offset=offset, key=key, value=value,
        timestamp=time.time(),
    )  # fmt: skip
    return SimpleNamespace(message=message)


async def _no_topic_to_create(name: str) -> None:
    return None


async def run(events: int, profiler: cProfile.Profile | None = None) -> dict[str, float]:
    """Time (and profile, if given a profiler) the ingest and stage calls only; building the
    workload and its expected outputs is left out."""
    workload = Workload.build(journeys=max(10, int(events / 2.6)), seed=99, invalid=0)
    want = len(workload.expected(phases=1).emitted)
    agents.outbox.ensure_topic = _no_topic_to_create  # no broker here
    producer = MemoryProducer()
    for stage in STAGES.values():
        stage.table = MemoryTable()  # type: ignore[assignment]
    outbox = Outbox(producer, settings.topics, STAGE_TOPICS)  # type: ignore[arg-type]
    topic_of = {
        "referrals": settings.topics.referrals,
        "signups": settings.topics.signups,
        "orders": settings.topics.orders,
    }
    now = int(time.time() * 1000)
    inputs = [InputRecord(topic_of[r.topic], 0, n, r.key, r.value, now)
              for n, r in enumerate(workload.phase1)]  # fmt: skip
    ingest_seconds = stage_seconds = 0.0
    if profiler is not None:
        profiler.enable()
    for start in range(0, len(inputs), settings.batch_size):
        began = time.perf_counter()
        await ingest_batch(inputs[start : start + settings.batch_size], outbox)
        ingest_seconds += time.perf_counter() - began
        began = time.perf_counter()
        while True:  # until the stages stop sending each other envelopes
            pending = {stage: producer.take(topic) for stage, topic in STAGE_TOPICS.items()}
            pending = {stage: records for stage, records in pending.items() if records}
            if not pending:
                break
            for stage, records in pending.items():
                batch = [_event(stage, r.partition or 0, None, r.value) for r in records]
                await STAGES[Stage(stage)].process(batch, outbox)
        stage_seconds += time.perf_counter() - began
    if profiler is not None:
        profiler.disable()
    got = len(producer.take(settings.topics.attributions))
    if got != want:
        raise SystemExit(f"the join emitted {got} attributions, the workload expects {want}")
    count = len(inputs)
    return {
        "events": count,
        "attributions": got,
        "ingest_us_per_event": ingest_seconds / count * 1e6,
        "stages_us_per_event": stage_seconds / count * 1e6,
        "events_per_s": count / (ingest_seconds + stage_seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--profile", action="store_true", help="print the top of a cProfile")
    args = parser.parse_args()
    tune_gc()  # as a worker does
    if args.profile:
        profiler = cProfile.Profile()
        result = asyncio.run(run(args.events, profiler))
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
    else:
        result = asyncio.run(run(args.events))
    for name, value in result.items():
        print(f"  {name:<22} {value:>12,.1f}")


if __name__ == "__main__":
    main()

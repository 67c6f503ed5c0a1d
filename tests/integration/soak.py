"""The soak's moving parts (issue 17 item 4; test_soak.py wires them together).

A steady producer streams workloads built in chunks, each in its own id namespace. The
rules decide phase 2 by arrival order, so a chunk's phase 2 is released only once the
attributions its phase 1 yields have all been seen on the ``attributions`` topic: the
expected outcome stays exact whatever the kills do to timing. Only the aggregate expected
vendor state is kept, chunk by chunk, and each chunk's records are dropped once sent.
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from dev.emulators.hubspot import HubSpotEmulator
from dev.expectations import expected_vendor_state
from dev.generator import Record, Workload
from dev.worker import WorkerProcess

from .soak_figures import LagSample

ROOT = Path(__file__).resolve().parents[2]
TICK = 0.1


@dataclass(frozen=True)
class SoakParams:
    """The issue's figures by default; ``REFSTREAM_SOAK_*`` scale them down."""

    seconds: float = 3600.0
    rate: float = 500.0
    kill_every: float = 600.0
    outage_every: float = 900.0
    outage_seconds: float = 120.0
    warmup: float = 300.0
    """RSS samples of an incarnation younger than this are left out of its slope."""
    recovery_limit: float = 60.0
    """Seconds from a disruption's end until its backlog is gone (soak_figures.py)."""
    lag_steady_seconds: float = 4.0
    """How far (seconds of input) the workers' own lag metric may read above the broker's
    before the report counts it: committed offsets trail by the commit intervals (ingest
    1 s, the join 0.5 s, a sink one delivery)."""
    standby_replicas: int = 1
    """A standby copy of each table partition on the other worker, the configuration for a
    fast takeover: without one, the survivor rebuilds a killed worker's partitions from the
    changelogs, which took minutes by the end of the hour (README, soak)."""
    hubspot_per_10s: int = 190
    """HubSpot's tier (``HUBSPOT_RATE_LIMIT_PER_10S``). 500 events/s make about 9 HubSpot
    requests a second in steady state (a 240 s run: 2,168 requests), 0.78M a day: past the
    Free tier's daily 250,000 and its burst of 10/s, which left no room to catch up after a
    disruption. Enterprise carries it: 190 / 10 s, 1M a day (hubspot-facts.md)."""
    pending_ttl: float = 180.0
    """Longer than a takeover can hold a partner back (the suite's 12 s is not: test_scale)."""
    drain_timeout: float = 900.0
    journeys_per_chunk: int = 1000
    seed: int = 1000
    report: Path = ROOT / "soak-results.json"

    @classmethod
    def from_env(cls) -> SoakParams:
        read = {
            "seconds": float, "rate": float, "kill_every": float, "outage_every": float,
            "outage_seconds": float, "warmup": float, "recovery_limit": float,
            "lag_steady_seconds": float, "standby_replicas": int, "hubspot_per_10s": int,
            "pending_ttl": float,
            "drain_timeout": float, "journeys_per_chunk": int, "seed": int, "report": Path,
        }  # fmt: skip
        values = {
            name: kind(os.environ[f"REFSTREAM_SOAK_{name.upper()}"])
            for name, kind in read.items()
            if f"REFSTREAM_SOAK_{name.upper()}" in os.environ
        }
        return cls(**values)

    @property
    def lag_threshold(self) -> int:
        return int(self.lag_steady_seconds * self.rate)

    @property
    def timeout(self) -> float:
        return self.seconds + 2 * self.pending_ttl + self.drain_timeout + 600


@dataclass
class Chunk:
    index: int
    phase1: deque[Record]
    phase2: list[Record]
    first: set[str]
    """The attribution ids phase 1 yields."""
    share: tuple
    """Its part of the expectation: (vendor state, attributions, events, invalid records)."""
    waiting: int = 0
    """Attributions of phase 1 not seen yet."""
    acks: list[asyncio.Future] = field(default_factory=list)
    acked: bool = False
    released: bool = False


@dataclass
class Expected:
    """The vendors' expected state (by emulator name), summed over chunks (their ids never
    meet)."""

    vendors: dict[str, Any] = field(default_factory=dict)
    attributions: int = 0
    events: int = 0
    invalid: list[Record] = field(default_factory=list)

    def add(self, vendors: dict, attributions: int, events: int, invalid: list[Record]) -> None:
        for name, held in vendors.items():
            _merge(self.vendors, name, held)
        self.attributions += attributions
        self.events += events
        self.invalid += invalid

    def vendor_state(self) -> dict:
        return self.vendors


def _merge(into: dict, name: str, held: Any) -> None:
    """Add one chunk's records of a vendor, by id, to the running total; no id may come
    twice. HubSpot's state is a dict of such collections (contacts, deals, associations)."""
    mine = into.setdefault(name, type(held)())
    if isinstance(held, dict) and held.keys() == HubSpotEmulator.nothing().keys():
        for collection, records in held.items():
            _merge(mine, collection, records)
        return
    assert mine.keys().isdisjoint(held) if isinstance(held, dict) else mine.isdisjoint(held), (
        f"chunks share a {name} record"
    )
    mine |= held


def build_chunk(index: int, params: SoakParams) -> Chunk:
    """A chunk of ``journeys_per_chunk`` journeys and its expectation (run in a thread)."""
    workload = Workload.build(
        journeys=params.journeys_per_chunk, seed=params.seed + index,
        invalid=3 if index == 0 else 0, run=f"c{index:05d}",
    )  # fmt: skip
    expected = workload.expected()
    first = {a.attribution_event_id for a in workload.expected(phases=1).emitted}
    vendors = expected_vendor_state(expected.emitted, expected.advocate_totals.values())
    share = (vendors, len(expected.emitted), len(workload.records), workload.invalid)
    return Chunk(index, deque(workload.phase1), workload.phase2, first, share)


class SteadyProducer:
    """``rate`` records/s, paced per 100 ms tick: released phase 2s first, then the next
    chunk's phase 1. Past ``seconds`` no chunk starts; the started ones are finished."""

    def __init__(self, servers: str, topics: dict[str, str], params: SoakParams) -> None:
        self.servers, self.topics, self.params = servers, topics, params
        self.expected = Expected()
        self.open: dict[int, Chunk] = {}
        """Started chunks whose phase 2 is not released yet."""
        self.waiting: dict[str, Chunk] = {}
        self.ready: deque[Record] = deque()
        self.current: Chunk | None = None
        self.built: asyncio.Queue[Chunk] = asyncio.Queue(maxsize=2)
        self.sent = 0
        self.sent_in_window = 0
        self.short_ticks = 0
        """Ticks of the window that had fewer records to send than the rate asked for."""
        self.failed_sends: list[BaseException] = []
        self.chunks = 0
        self.seen_ids: set[str] = set()
        self.attribution_records = 0
        self._tasks: set[asyncio.Task] = set()

    async def build_ahead(self) -> None:
        index = 0
        while True:
            await self.built.put(await asyncio.to_thread(build_chunk, index, self.params))
            index += 1

    def seen(self, records) -> None:
        for record in records:
            self.attribution_records += 1
            attribution_id = orjson.loads(record.value)["attribution_event_id"]
            if attribution_id in self.seen_ids:
                continue
            self.seen_ids.add(attribution_id)
            if (chunk := self.waiting.pop(attribution_id, None)) is not None:
                chunk.waiting -= 1
                self._release(chunk)

    def _release(self, chunk: Chunk) -> None:
        if chunk.acked and chunk.waiting == 0 and not chunk.released:
            chunk.released = True
            self.ready.extend(chunk.phase2)
            chunk.phase2 = []
            del self.open[chunk.index]

    def _start(self) -> Chunk | None:
        if self.built.empty():
            return None
        chunk = self.built.get_nowait()
        self.expected.add(*chunk.share)
        chunk.share = ()
        self.open[chunk.index] = chunk
        chunk.waiting = len(chunk.first)
        self.waiting.update(dict.fromkeys(chunk.first, chunk))
        chunk.first = set()
        self.chunks += 1
        # The emulators keep every record they accept, in this process's loop: full
        # collections skip what exists now (max pause 0.13 s in the 5-minute runs).
        gc.freeze()
        return chunk

    async def run(self, started: float) -> float:
        """Produce until every started chunk is sent in full (or ``drain_timeout`` past
        the window: :meth:`stuck` says which chunks); returns when that was."""
        producer = AIOKafkaProducer(bootstrap_servers=self.servers, linger_ms=5, acks="all")
        await producer.start()
        give_up = started + self.params.seconds + self.params.drain_timeout
        try:
            owed, last = 0.0, time.monotonic()
            while True:
                now = time.monotonic()
                starting = now - started < self.params.seconds
                sending = starting or self.current is not None or self.ready
                if not sending and (not self.open or now > give_up):
                    break
                owed = min(owed + self.params.rate * (now - last), self.params.rate)
                last = now
                want = int(owed)
                sent = await self._send_some(producer, want, starting)
                owed -= sent
                if starting:
                    self.sent_in_window += sent
                    self.short_ticks += sent < want
                await asyncio.sleep(max(0.0, TICK - (time.monotonic() - now)))
            await producer.flush()
            return time.monotonic()
        finally:
            await producer.stop()

    async def _send_some(self, producer: AIOKafkaProducer, count: int, starting: bool) -> int:
        sent = 0
        while sent < count:
            chunk = None
            if self.ready:
                record = self.ready.popleft()
            else:
                if self.current is None and starting:
                    self.current = self._start()
                if self.current is None:
                    break
                chunk = self.current
                record = chunk.phase1.popleft()
            future = await producer.send(self.topics[record.topic], record.value, key=record.key)
            future.add_done_callback(self._sent)
            if chunk is not None:
                chunk.acks.append(future)
                if not chunk.phase1:  # its last phase-1 record
                    self.current = None
                    task = asyncio.create_task(self._acked(chunk))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
            sent += 1
            self.sent += 1
        return sent

    def _sent(self, future: asyncio.Future) -> None:
        if not future.cancelled() and future.exception() is not None:
            self.failed_sends.append(future.exception())

    async def _acked(self, chunk: Chunk) -> None:
        await asyncio.gather(*chunk.acks, return_exceptions=True)
        chunk.acks = []
        chunk.acked = True
        self._release(chunk)

    def stuck(self) -> dict[int, int]:
        """Chunks whose phase 2 was never released: chunk → phase-1 attributions unseen."""
        return {index: chunk.waiting for index, chunk in self.open.items()}


async def follow(servers: str, topic: str, producer: SteadyProducer) -> None:
    """Hand every record of ``topic`` to the producer, as it arrives (cancel to stop)."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=servers, auto_offset_reset="earliest",
        enable_auto_commit=False, group_id=None, fetch_max_wait_ms=100,
    )  # fmt: skip
    await consumer.start()
    try:
        while True:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                producer.seen(records)
    finally:
        await consumer.stop()


class BrokerLag:
    """Each consumer group's lag as the broker sees it: end offset minus committed offset,
    over every partition the group has committed, whoever owns it (a worker's own metric
    has no sample for partitions nobody owns, which after a kill is the point)."""

    def __init__(self, servers: str, groups: dict[str, str]) -> None:
        self.groups = groups
        """label → consumer group id."""
        self.admin = AIOKafkaAdminClient(bootstrap_servers=servers)
        self.consumer = AIOKafkaConsumer(bootstrap_servers=servers, group_id=None)

    async def __aenter__(self) -> BrokerLag:
        await self.admin.start()
        await self.consumer.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.consumer.stop()
        await self.admin.close()

    async def sample(self, t: float) -> LagSample:
        """Each group's committed offsets, then the end offsets of all their partitions."""
        committed = {
            label: await self.admin.list_consumer_group_offsets(group)
            for label, group in self.groups.items()
        }
        partitions = {tp for offsets in committed.values() for tp in offsets}
        ends = await self.consumer.end_offsets(list(partitions)) if partitions else {}
        return LagSample(
            t,
            {(tp.topic, tp.partition): end for tp, end in ends.items()},
            {label: {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items()
                     if meta.offset >= 0}
             for label, offsets in committed.items()},
        )  # fmt: skip


@dataclass
class Incarnation:
    """One worker process: a kill ends it and its successor (same name and data) is next."""

    worker: WorkerProcess
    name: str
    number: int
    started: float
    ended: float | None = None
    rss: list[tuple[float, float, float]] = field(default_factory=list)
    """(seconds since this process started, RSS in MB, monotonic time of the sample)."""
    rocksdb: list[tuple[float, float, float]] = field(default_factory=list)
    """The same for RocksDB's block cache (memtables charged to it), from ``/metrics``: the
    part of the RSS that is RocksDB's budget filling up rather than growth elsewhere."""
    cpu_seconds: float = 0.0

    @property
    def pid(self) -> int:
        assert self.worker.process is not None
        return self.worker.process.pid

    def sample(self, now: float) -> None:
        """RSS from ``/proc/<pid>/status`` (VmRSS) and CPU time from ``/proc/<pid>/stat``."""
        status = Path(f"/proc/{self.pid}/status").read_text()
        kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
        self.rss.append((now - self.started, kb / 1024, now))
        stat = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        self.cpu_seconds = (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")

"""``make bench``: throughput, latency, state and scale-out figures measured in one run.

Everything runs on this machine against one broker, so that ratios between the figures hold
even when absolute numbers move with the machine's load: Apache Kafka from dev/kafka.py
(``--broker kafka``, the default where Java and Maven are installed) or the embedded Tansu
(``--broker tansu``). Prints a table and writes ``bench-results.json``, where
``figure_brokers`` says which broker each figure came from. Sections can be picked:
``python -m bench --only join``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from bench import kafka
from bench.gateway import gateway_throughput
from dev.broker import EmbeddedBroker, free_port
from dev.emulators import running_emulators
from dev.generator import EPOCH, Record, Workload, attribution_records
from dev.kafka import ApacheKafka
from dev.kafka_io import read_topic
from dev.latency import CRM_KINDS, JOINED, delivery_latencies, percentile
from dev.worker import WorkerProcess
from sinks.hubspot import PATH as HUBSPOT_CONTACTS

ROOT = Path(__file__).parents[1]


class Bench:
    def __init__(
        self,
        servers: str,
        workdir: Path,
        events: int,
        referrals: int,
        latency_rates: Sequence[int] = (1000, 100),
        compat: str = "kafka",
        rounds: int = 3,
    ) -> None:
        self.servers = servers
        self.compat = compat
        self.workdir = workdir
        self.events = events
        self.referrals = referrals
        self.latency_rates = latency_rates
        """The steady rates (events/s) the latency section measures."""
        self.results: dict[str, object] = {}
        self.cpu_busy_cores = 0.0
        """Cores the whole machine kept busy during the last join run (of ``os.cpu_count()``)."""
        self.send_retries = 0
        """Batches the last join run's workers had to send again (streams/tansu.py: on Tansu a
        producer sometimes loses a topic's leader for the 10 s of its request timeout)."""
        self.worker_cpu_seconds = 0.0
        """CPU the last join run's workers used while it was measured."""
        self.rounds = rounds
        """Rounds of the floor, the peer and the join in the join section."""
        self.keyed: str | None = None
        """The topic of the keyed records, once produced."""
        self.keyed_produce_rate = 0.0
        self._workload: Workload | None = None

    def name(self, prefix: str) -> str:
        return f"{prefix}-{uuid.uuid4().hex[:6]}"

    def workload(self) -> Workload:
        """Phase 1 of enough generated journeys for ``events`` records (no invalid ones:
        the join's input rate is what is measured)."""
        if self._workload is None:
            journeys = max(10, int(self.events / 2.6))
            self._workload = Workload.build(journeys=journeys, seed=99, invalid=0)
        return self._workload

    def keyed_records(self) -> list[tuple[bytes | None, bytes]]:
        """The workload's events keyed by referral (by customer when they name none)."""
        out = []
        for record in self.workload().phase1:
            event = orjson.loads(record.value)
            key = event.get("referral_id") or event.get("customer", {}).get("id")
            out.append((str(key).encode(), record.value))
        return out

    def env(self, **extra: str) -> dict[str, str]:
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.servers,
            "REFSTREAM_BROKER_COMPAT": self.compat,
            "REFSTREAM_SINKS": "",
            "REFSTREAM_PARTITIONS": "8",
            **extra,
        }

    def subprocess_result(self, args: list[str], env: dict[str, str], timeout: float) -> dict:
        """Run a benchmark process until it writes its result file."""
        result = self.workdir / f"{uuid.uuid4().hex}.json"
        log = (self.workdir / f"{args[2]}.log").open("ab")
        process = subprocess.Popen(
            args, env={**os.environ, **env, "BENCH_RESULT": str(result), "PYTHONPATH": str(ROOT)},
            cwd=self.workdir,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + timeout
            while not result.exists():
                if process.poll() is not None:
                    raise RuntimeError(f"{args} exited {process.returncode}; see {log.name}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{args}: no result after {timeout}s; see {log.name}")
                time.sleep(0.2)
            time.sleep(0.1)
            return orjson.loads(result.read_bytes())
        finally:
            process.kill()
            process.wait()


async def limits_and_peer(bench: Bench) -> None:
    """Raw aiokafka produce and consume of the keyed records (Faust's floor and Quix Streams
    read them in each round of the join section)."""
    topic = await keyed_topic(bench)
    records = bench.keyed_records()
    bench.results["raw_produce_events_per_s"] = bench.keyed_produce_rate
    bench.results["raw_consume_events_per_s"] = await kafka.raw_consume_rate(
        bench.servers, topic, len(records)
    )


async def keyed_topic(bench: Bench) -> str:
    """The keyed records on an 8-partition topic (produced once a run)."""
    if bench.keyed is None:
        records = bench.keyed_records()
        topic = bench.name("bench-keyed")
        await kafka.create(bench.servers, [topic], partitions=8)
        bench.keyed_produce_rate = await kafka.produce_all(bench.servers, lambda _: topic, records)
        bench.keyed = topic
        bench.results["bench_records"] = len(records)
    return bench.keyed


async def floor_and_peer(bench: Bench) -> tuple[float, float]:
    """Faust's floor and the Quix Streams peer on the keyed records: events/s of each."""
    topic = await keyed_topic(bench)
    env = bench.env(BENCH_TOPIC=topic, BENCH_COUNT=str(len(bench.keyed_records())),
                    REFSTREAM_APP_ID=bench.name("floor"))  # fmt: skip
    env |= {"REFSTREAM_WEB_HOST": "127.0.0.1", "REFSTREAM_WEB_PORT": str(free_port())}
    floor = await asyncio.to_thread(
        bench.subprocess_result,
        [sys.executable, "-m", "bench.floor", "worker", "-l", "warn"], env, 600,
    )  # fmt: skip
    output = bench.name("bench-quix-out")
    await kafka.create(bench.servers, [output], partitions=8)
    quix = await asyncio.to_thread(
        bench.subprocess_result,
        [sys.executable, "-m", "bench.quix_reference"],
        {**env, "BENCH_OUTPUT": output}, 600,
    )  # fmt: skip
    return (
        floor["count"] / (floor["last"] - floor["first"]),
        quix["count"] / (quix["last"] - quix["first"]),
    )


async def preload_journeys(bench: Bench, partitions: int = 8) -> tuple[dict[str, str], int, int]:
    """Phase 1 of the workload onto fresh input topics; returns the topics, the number of
    records and the number of attributions they must produce."""
    workload = bench.workload()
    records = workload.phase1
    want = len(workload.expected(phases=1).emitted)
    run = uuid.uuid4().hex[:6]
    topics = {name: f"{name}-{run}" for name in ("referrals", "signups", "orders")}
    await kafka.create(bench.servers, list(topics.values()), partitions=partitions)
    await kafka.produce_all(
        bench.servers, lambda i: topics[records[i].topic], [(r.key, r.value) for r in records]
    )
    return topics, len(records), want


def join_env(bench: Bench, topics: dict[str, str], **extra: str) -> dict[str, str]:
    run = uuid.uuid4().hex[:6]
    return bench.env(
        REFSTREAM_APP_ID=f"bench-join-{run}", PENDING_TTL_SECONDS="3600",
        REFSTREAM_TOPIC_ATTRIBUTIONS=f"attributions-{run}",
        **{f"REFSTREAM_TOPIC_{n.upper()}": t for n, t in topics.items()},
        **{f"REFSTREAM_TOPIC_BY_{s}": f"join-by-{s.lower()}-{run}"
           for s in ("REFERRAL", "CUSTOMER", "EMAIL", "ADVOCATE", "ORDER")},
        REFSTREAM_TOPIC_ADVOCATE_TOTALS=f"advocate-totals-{run}",
        REFSTREAM_TOPIC_DLQ_INVALID=f"dlq-{run}", **extra,
    )  # fmt: skip


async def run_join(bench: Bench, workers: int = 1, **extra: str) -> float:
    """Pre-loaded backlog → ``workers`` workers → input events/s until every attribution is
    out: from the moment all workers are ready to the last attribution's ``emitted_at``
    (outputs are counted, end offsets are never trusted)."""
    topics, count, want = await preload_journeys(bench)
    env = join_env(bench, topics, **extra)
    processes = [WorkerProcess(env, bench.workdir, f"join-{uuid.uuid4().hex[:6]}").start()
                 for _ in range(workers)]  # fmt: skip
    try:
        await asyncio.gather(*(asyncio.to_thread(w.wait_ready, 120) for w in processes))
        started = time.time()
        cpu_before = _cpu_times()
        worker_cpu_before = sum(_process_cpu_seconds(w.process.pid) for w in processes)
        profile = os.environ.get("BENCH_PROFILE")  # py-spy collapsed stacks of a worker
        if profile and not Path(profile).exists():  # of the first join run only
            spy = str(Path(sys.executable).with_name("py-spy"))
            pid = str(processes[0].process.pid)
            record = ["record", "-p", pid, "-r", "100", "-f", "raw", "-o", profile, "-d", "25"]
            subprocess.Popen([spy, *record])
        out, _, _, _ = await kafka.consume_count(
            bench.servers, env["REFSTREAM_TOPIC_ATTRIBUTIONS"], want,
            key=lambda r: orjson.loads(r.value)["attribution_event_id"],
        )  # fmt: skip
        emitted = [datetime.fromisoformat(orjson.loads(r.value)["emitted_at"]) for r in out]
        finished = max(emitted).timestamp()
        bench.cpu_busy_cores = _busy_cores(cpu_before, _cpu_times())
        worker_cpu = sum(_process_cpu_seconds(w.process.pid) for w in processes)
        bench.worker_cpu_seconds = worker_cpu - worker_cpu_before
    finally:
        for worker in processes:
            worker.stop()
    bench.send_retries = sum(
        w.log_path.read_text(errors="replace").count("send failed, retrying") for w in processes
    )
    bench.results.setdefault("join_input_events", count)
    bench.results.setdefault("join_attributions", want)
    return count / (finished - started)


def _cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine (broker, workers and all)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def _process_cpu_seconds(pid: int) -> float:
    """User and system CPU seconds a process has used (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _busy_cores(before: tuple[int, int], after: tuple[int, int]) -> float:
    busy, total = after[0] - before[0], after[1] - before[1]
    return (os.cpu_count() or 1) * busy / total if total else 0.0


async def join_throughput(bench: Bench) -> None:
    """Rounds of Faust's floor, the Quix peer and one join worker (RocksDB, Faust's sensors
    off: the throughput setting), back to back, then the join once with the sensors on.

    The machine's speed drifts by 10-20 % over minutes (a shared host), so each ratio is
    the median of the rounds' own ratios, each of runs a few minutes apart; each rate is the
    median of its rounds, and every round's figures are kept (``*_rounds``).
    """
    off = {"REFSTREAM_STORE": "rocksdb://", "REFSTREAM_FAUST_SENSOR": "false"}
    rounds: dict[str, list[float]] = {}
    for _ in range(bench.rounds):
        floor, quix = await floor_and_peer(bench)
        join = await run_join(bench, **off)
        count = bench.results["join_input_events"]
        # the worker's own CPU per input event: what the join costs, whatever else the
        # machine (the broker, a neighbour) does meanwhile
        cpu = bench.worker_cpu_seconds / count * 1e6
        figures = {
            "faust_floor_events_per_s": floor, "quix_events_per_s": quix,
            "join_events_per_s": join, "join_worker_cpu_us_per_event": cpu,
            "join_cpu_busy_cores": bench.cpu_busy_cores,
            "join_vs_floor_ratio": join / floor, "join_vs_quix_ratio": join / quix,
        }  # fmt: skip
        for name, value in figures.items():
            rounds.setdefault(name, []).append(value)
        bench.results["join_send_retries"] = (
            bench.results.get("join_send_retries", 0) + bench.send_retries
        )
    for name, values in rounds.items():
        bench.results[name] = statistics.median(values)
        bench.results[f"{name}_rounds"] = [round(v, 3) for v in values]
    on = {**off, "REFSTREAM_FAUST_SENSOR": "true"}
    bench.results["join_events_per_s_faust_sensor_on"] = await run_join(bench, **on)


async def scale_out(bench: Bench) -> None:
    """Two workers in one group on 8-partition topics against one, on the same backlog; the
    two again with a standby copy of each table partition (``REFSTREAM_STANDBY_REPLICAS``)."""
    settings = {"REFSTREAM_STORE": "rocksdb://", "REFSTREAM_FAUST_SENSOR": "false"}
    one = await run_join(bench, workers=1, **settings)
    bench.results["scale_one_worker_cpu_busy_cores"] = bench.cpu_busy_cores
    bench.results["scale_one_worker_send_retries"] = bench.send_retries
    two = await run_join(bench, workers=2, **settings)
    bench.results["scale_two_workers_cpu_busy_cores"] = bench.cpu_busy_cores
    bench.results["scale_two_workers_send_retries"] = bench.send_retries
    standby = await run_join(bench, workers=2, REFSTREAM_STANDBY_REPLICAS="1", **settings)
    bench.results["scale_one_worker_events_per_s"] = one
    bench.results["scale_two_workers_events_per_s"] = two
    bench.results["scale_two_workers_ratio"] = two / one
    bench.results["scale_two_workers_standby_events_per_s"] = standby
    bench.results["scale_two_workers_standby_ratio"] = standby / one


async def kill_duplicates(bench: Bench) -> None:
    """``kill -9`` of the one worker a third of the way through the backlog, a successor on
    the same data: how many attribution events the topic then carries twice (same id).
    The join is at-least-once (README, How it works); a repeat is identical to the original."""
    topics, _, want = await preload_journeys(bench)
    env = join_env(bench, topics, REFSTREAM_STORE="rocksdb://", REFSTREAM_FAUST_SENSOR="false")
    attributions = env["REFSTREAM_TOPIC_ATTRIBUTIONS"]
    workdir = bench.workdir / bench.name("kill")
    first = WorkerProcess(env, workdir, "worker").start()
    try:
        await asyncio.to_thread(first.wait_ready, 120)
        await kafka.consume_count(
            bench.servers, attributions, want // 3,
            key=lambda r: orjson.loads(r.value)["attribution_event_id"],
        )  # fmt: skip
        first.kill()
    finally:
        first.kill()
    successor = WorkerProcess(env, workdir, "worker").start()
    try:
        every, _, _, _ = await kafka.consume_count(
            bench.servers, attributions, want,
            key=lambda r: orjson.loads(r.value)["attribution_event_id"],
        )  # fmt: skip
        # then everything, including repeats still on their way (3 s without a new record)
        out = await read_topic(
            bench.servers,
            attributions,
            until=lambda r: len(r) >= len(every),
            idle=3.0,
            timeout=300,
        )
    finally:
        successor.stop()
    ids = [orjson.loads(r.value)["attribution_event_id"] for r in out]
    bench.results["kill_attributions"] = len(set(ids))
    bench.results["kill_duplicate_attributions"] = len(ids) - len(set(ids))
    bench.results["kill_duplicate_fraction"] = (len(ids) - len(set(ids))) / len(set(ids))


async def preload_attributions(bench: Bench) -> tuple[str, int]:
    """The workload's attribution events, as the join emits them, on a fresh topic."""
    emitted = attribution_records(bench.workload().expected(phases=1).emitted)
    records = [(r.key, r.value) for r in emitted]
    topic = bench.name("bench-attributions")
    await kafka.create(bench.servers, [topic], partitions=8)
    await kafka.produce_all(bench.servers, lambda _: topic, records)
    return topic, len(records)


def sink_env(bench: Bench, emulators, sink: str, topic: str) -> dict[str, str]:
    run = uuid.uuid4().hex[:6]
    return bench.env(
        REFSTREAM_APP_ID=f"bench-sink-{run}", REFSTREAM_SINKS=sink,
        REFSTREAM_TOPIC_ATTRIBUTIONS=topic, REFSTREAM_FAUST_SENSOR="false",
        **{f"REFSTREAM_TOPIC_{n}": f"{n.lower()}-{run}"
           for n in ("REFERRALS", "SIGNUPS", "ORDERS", "BY_REFERRAL", "BY_CUSTOMER", "BY_EMAIL",
                     "BY_ADVOCATE", "BY_ORDER")},
        REFSTREAM_TOPIC_DLQ_SINK_PREFIX=f"dlq-{run}-", **emulators.env(),
    )  # fmt: skip


async def sink_throughput(bench: Bench) -> None:
    """Mixpanel alone against its emulator (no OpenAPI checks: the sink is measured), then
    HubSpot against an emulator enforcing 100 requests / 10 s in a sliding window."""
    topic, count = await preload_attributions(bench)
    async with running_emulators() as emulators:
        emulators.mixpanel.validate = False
        worker = WorkerProcess(sink_env(bench, emulators, "analytics", topic), bench.workdir,
                               "sink-analytics").start()  # fmt: skip
        try:
            deadline = time.monotonic() + 600
            while len(emulators.mixpanel.accept_log) < count and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
        finally:
            worker.stop()
        times = [at for _, at in emulators.mixpanel.accept_log]
        bench.results["mixpanel_events"] = len(times)
        bench.results["mixpanel_events_per_s"] = len(times) / (max(times) - min(times))

        hubspot, window = emulators.hubspot, 30.0
        hubspot.limits = hubspot.documented_limits
        hubspot.validate = False  # openapi-core would be the bottleneck, not the sink
        worker = WorkerProcess(sink_env(bench, emulators, "crm", topic), bench.workdir,
                               "sink-crm").start()  # fmt: skip
        try:
            while not hubspot.status_counts:
                await asyncio.sleep(0.05)
            before = hubspot.status_counts.get(200, 0) + hubspot.status_counts.get(207, 0)
            await asyncio.sleep(window)
            after = hubspot.status_counts.get(200, 0) + hubspot.status_counts.get(207, 0)
        finally:
            worker.stop()
        bench.results["hubspot_requests_in_window"] = after - before
        bench.results["hubspot_rate_fraction"] = (after - before) / (100 * window / 10)
        bench.results["hubspot_self_429s"] = hubspot.over_limit


HUBSPOT_TIERS = {"free": 100, "professional": 190}
FREE_TIER_RATE = 500
"""Events/s of the steady stream the CRM sink carries on HubSpot's Free tier (10 requests/s)
with p99 under 1 s: 1,000 events/s take about 12 requests a second (p99 22 s), 700 events/s
queue at the limit (p99 3.4 s, 2026-12-03)."""
STEADY_AFTER_DAYS = 100
"""Of the latency stream's event time: by then the first journeys have signed up (within
29 days of their referral) and ordered (within 60 days of signing up)."""
"""Private-app requests per 10 s (hubspot-facts.md): Free/Starter, Professional/Enterprise."""


async def latency(bench: Bench) -> None:
    """By default at the 1,000 events/s asked for, and at 100 events/s; ``--latency-rates``
    measures others, to find each sink's sustainable rate. The HubSpot account is the
    Professional tier (``latency_crm_tier``); the 1,000 events/s run is repeated on the
    Free tier (``latency_*_free_tier``) for its CRM figure, and on the Free tier at the
    rate its CRM sink sustains (``FREE_TIER_RATE``)."""
    bench.results["latency_crm_tier"] = "professional (190 requests / 10 s)"
    for rate in bench.latency_rates:
        await latency_at(bench, rate, 60, "" if rate == 1000 else f"_at_{rate}_per_s")
    if 1000 in bench.latency_rates:
        await latency_at(bench, 1000, 60, "_free_tier", hubspot_tier="free")
        rate = FREE_TIER_RATE
        await latency_at(bench, rate, 60, f"_free_tier_at_{rate}_per_s", hubspot_tier="free")


async def latency_at(
    bench: Bench, rate: int, seconds: int, suffix: str, hubspot_tier: str = "professional"
) -> None:
    """A steady ``rate`` events/s for ``seconds`` through one worker with every sink on the
    emulators at their documented limits (HubSpot's of ``hubspot_tier``): signup sent →
    Klaviyo accepted, input → attribution, attribution → vendor."""
    per_10s = HUBSPOT_TIERS[hubspot_tier]
    # A shop's live stream, in event-time order (the event that completes a join is the one
    # that triggers its attribution, so latency is the pipeline's, not a partner's late
    # arrival), with referrals opening over a year: once the first journeys have ordered
    # (the warm-up, ~100 days of events, sent at the same rate and not measured) every kind
    # of event flows in steady proportions. A month's campaign instead ends in a stream of
    # orders alone, which no mix of a running shop looks like (its last 6 s: 915 orders/s).
    workload = Workload.build(
        journeys=rate * seconds * 7 // 12 + 10, seed=7, invalid=0, open_days=365
    )
    records = sorted(workload.phase1, key=lambda r: orjson.loads(r.value)["occurred_at"])
    steady_from = EPOCH + timedelta(days=STEADY_AFTER_DAYS)
    warmup = next(i for i, r in enumerate(records) if occurred(r) >= steady_from)
    records = records[: warmup + rate * seconds]
    measured = {orjson.loads(r.value)["event_id"] for r in records[warmup:]}
    run = uuid.uuid4().hex[:6]
    topics = {name: f"{name}-lat-{run}" for name in ("referrals", "signups", "orders")}
    await kafka.create(bench.servers, list(topics.values()), partitions=8)
    sent_at: dict[str, float] = {}
    async with running_emulators() as emulators:
        for emulator in (emulators.hubspot, emulators.klaviyo, emulators.mixpanel):
            emulator.validate = False  # keep the bench process light; requests are measured
            emulator.enforce_documented_limits()  # a sink must pace itself to them
        emulators.hubspot.limits = ((per_10s, 10.0),)
        env = join_env(
            bench, topics, REFSTREAM_SINKS="crm,email,analytics", REFSTREAM_FAUST_SENSOR="false",
            REFSTREAM_TOPIC_DLQ_SINK_PREFIX=f"dlq-lat-{run}-", **emulators.env(),
            HUBSPOT_RATE_LIMIT_PER_10S=str(per_10s),
        )  # fmt: skip
        worker = WorkerProcess(env, bench.workdir, f"latency-{run}").start()
        # This process sends the stream and runs the emulators: a full collection of its
        # heap (the whole workload) stalled both for 0.15-0.25 s, several times a run, and
        # read as the pipeline's latency (Mixpanel p99 1.13 s in one run). Freeze it out.
        gc.collect()
        gc.freeze()
        try:
            await asyncio.to_thread(worker.wait_ready, 120)
            await kafka.produce_paced(
                bench.servers, [(topics[r.topic], r.key, r.value) for r in records], rate,
                on_sent=lambda value, at: sent_at.setdefault(orjson.loads(value)["event_id"], at),
            )  # fmt: skip
            await asyncio.sleep(10)  # what is still queued after that is a latency outlier
            attributions = env["REFSTREAM_TOPIC_ATTRIBUTIONS"]
            out = await read_topic(bench.servers, attributions, idle=1.0, timeout=60)
        finally:
            gc.unfreeze()
            worker.stop()
        events = {}
        for record in out:
            event = orjson.loads(record.value)
            if event["source_event_id"] in measured:
                events.setdefault(event["attribution_event_id"], event)
        emitted = {
            i: datetime.fromisoformat(e["emitted_at"]).timestamp() for i, e in events.items()
        }
        join = [emitted[i] - sent_at[e["source_event_id"]] for i, e in events.items()
                if e["kind"] in JOINED and e["source_event_id"] in sent_at]  # fmt: skip
        signups = [
            (i, sent_at[e["source_event_id"]]) for i, e in events.items()
            if e["kind"] == "friend_signed_up" and e["source_event_id"] in sent_at
        ]  # fmt: skip
        to_klaviyo = delivery_latencies(signups, emulators.klaviyo.accept_log)
        results = {
            "p50_s": percentile(to_klaviyo, 50),
            "p99_s": percentile(to_klaviyo, 99),
            "signups_delivered_fraction": len(to_klaviyo) / max(len(signups), 1),
            "join_p50_s": percentile(join, 50),
            "join_p99_s": percentile(join, 99),
            "vendor_429s": sum(
                e.over_limit for e in (emulators.hubspot, emulators.klaviyo, emulators.mixpanel)
            ),
            "klaviyo_bulk_jobs": emulators.klaviyo.bulk_jobs,
            "klaviyo_requests": emulators.klaviyo.requests,
            "crm_inputs_per_request": emulators.hubspot.upserts  # contacts per contacts call
            / max(emulators.hubspot.requests_by_route.get(HUBSPOT_CONTACTS, 0), 1),
        }
        crm = [(e["friend"]["email"], emitted[i]) for i, e in events.items()
               if e["kind"] in CRM_KINDS and (e.get("friend") or {}).get("email")]  # fmt: skip
        keyed = {"crm": (crm, emulators.hubspot), "analytics":
                 (list(emitted.items()), emulators.mixpanel),
                 "email": (list(emitted.items()), emulators.klaviyo)}  # fmt: skip
        for sink, (pairs, emulator) in keyed.items():
            values = delivery_latencies(pairs, emulator.accept_log)
            results[f"{sink}_p50_s"] = percentile(values, 50)
            results[f"{sink}_p99_s"] = percentile(values, 99)
        for key, value in results.items():
            name, unit = key.rsplit("_", 1) if key.endswith("_s") else (key, "")
            bench.results[f"latency_{name}{suffix}{'_' + unit if unit else ''}"] = value


def occurred(record: Record) -> datetime:
    return datetime.fromisoformat(orjson.loads(record.value)["occurred_at"])


def referral_records(start: int, stop: int) -> list[tuple[bytes, bytes]]:
    """Distinct referral.created events ``start`` to ``stop`` (one advocate per 8)."""
    records = []
    for n in range(start, stop):
        advocate = f"adv_s{n // 8:08d}"
        event = {
            "event_id": f"evt_s{n:08d}", "type": "referral.created",
            "referral_id": f"ref_s{n:08d}", "occurred_at": "2026-10-01T12:00:00Z",
            "advocate": {"id": advocate, "email": f"{advocate}@example.com",
                         "first_name": "Ada", "last_name": "Berg"},
            "friend_email": f"friend.s{n:08d}@example.com", "campaign_id": "spring",
        }  # fmt: skip
        records.append((event["referral_id"].encode(), orjson.dumps(event)))
    return records


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _du_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1024**2


def _accepted(worker: WorkerProcess) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    _, body = worker.get("/metrics")
    return sum(
        sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
        if sample.name == "refstream_events_total" and sample.labels["outcome"] == "accepted"
    )


def _label(count: int) -> str:
    """10000 -> 10k, 10000000 -> 10m."""
    return f"{count // 1_000_000}m" if count >= 1_000_000 else f"{count // 1000}k"


async def _load_referrals(bench: Bench, worker: WorkerProcess, topic: str, start: int,
                          stop: int, rss: list[float]) -> float:  # fmt: skip
    """Referrals ``start`` to ``stop`` into the worker's table, produced in slices while it
    loads; returns referrals/s until all are accepted and a sample answers. Samples the
    worker's RSS every 2 s into ``rss``."""
    began = time.monotonic()
    accepted_before = _accepted(worker)
    step = 200_000
    for first in range(start, stop, step):
        records = referral_records(first, min(first + step, stop))
        await kafka.produce_all(bench.servers, lambda _: topic, records)
        rss.append(_rss_mb(worker.process.pid))
    sample = [
        f"/attributions/ref_s{n:08d}"
        for n in range(stop - 1, start - 1, -max(1, (stop - start) // 50))
    ]
    while _accepted(worker) - accepted_before < stop - start or any(
        worker.get(path, timeout=30)[0] != 200 for path in sample
    ):
        rss.append(_rss_mb(worker.process.pid))
        await asyncio.sleep(2)
    return (stop - start) / (time.monotonic() - began)


async def _join_with_state(bench: Bench, worker: WorkerProcess, topics: dict[str, str],
                           attributions: str, label: str) -> tuple[float, float]:  # fmt: skip
    """On top of the loaded state: a backlog of fresh journeys (events/s until the last of
    their attributions) and then a steady 1,000 events/s for 20 s (input → attribution
    p99)."""
    workload = Workload.build(journeys=8000, seed=5, invalid=0, run=f"g{label}")
    want = {a.attribution_event_id for a in workload.expected(phases=1).emitted}
    records = [(topics[r.topic], r.key, r.value) for r in workload.phase1]
    started = time.time()
    await kafka.produce_all(bench.servers, lambda i: records[i][0], [r[1:] for r in records])
    missing, emitted = set(want), []

    def all_out(records: list) -> bool:  # called with every record so far: reads the new
        for record in records[len(emitted) :]:
            event = orjson.loads(record.value)
            emitted.append(datetime.fromisoformat(event["emitted_at"]).timestamp())
            missing.discard(event["attribution_event_id"])
        return not missing

    await read_topic(bench.servers, attributions, timeout=900, idle=0.0, until=all_out)
    assert not missing, f"{len(missing)} attributions never came"
    events_per_s = len(records) / (max(emitted) - started)

    paced = Workload.build(journeys=int(1000 * 20 / 2.75) + 10, seed=6, invalid=0,
                           run=f"p{label}")  # fmt: skip
    stream = sorted(paced.phase1, key=lambda r: orjson.loads(r.value)["occurred_at"])[:20_000]
    sent_at: dict[str, float] = {}
    await kafka.produce_paced(
        bench.servers, [(topics[r.topic], r.key, r.value) for r in stream], 1000,
        on_sent=lambda value, at: sent_at.setdefault(orjson.loads(value)["event_id"], at),
    )  # fmt: skip
    await asyncio.sleep(5)
    out = await read_topic(bench.servers, attributions, idle=2.0, timeout=120)
    join = []
    for record in out:
        event = orjson.loads(record.value)
        if event["kind"] in JOINED and event["source_event_id"] in sent_at:
            at = datetime.fromisoformat(event["emitted_at"]).timestamp()
            join.append(at - sent_at[event["source_event_id"]])
    return events_per_s, percentile(join, 99)


async def state(bench: Bench) -> None:
    """Cost of growth and state at volume, one worker, one RocksDB table growing to
    ``--referrals``: at each of 10k, 100k, 1M, ... referrals the join's events/s on a
    backlog of fresh journeys and its input → attribution p99 at 1,000 events/s; the load
    rate and the loading worker's RSS; then disk, and the time from start to ``/readyz``
    200 with local state present and with none (rebuilt from the changelogs)."""
    sizes = [n for n in (10_000, 100_000, 1_000_000, 10_000_000) if n < bench.referrals]
    sizes.append(bench.referrals)
    run = uuid.uuid4().hex[:6]
    topics = {name: f"{name}-state-{run}" for name in ("referrals", "signups", "orders")}
    await kafka.create(bench.servers, list(topics.values()), partitions=8)
    env = join_env(bench, topics, REFSTREAM_STORE="rocksdb://", REFSTREAM_FAUST_SENSOR="false")
    name = f"state-{run}"
    worker = WorkerProcess(env, bench.workdir, name).start()
    rss: list[float] = []
    loaded, load_seconds = 0, 0.0
    try:
        await asyncio.to_thread(worker.wait_ready, 120)
        for size in sizes:
            rate = await _load_referrals(bench, worker, topics["referrals"], loaded, size, rss)
            load_seconds += (size - loaded) / rate
            loaded = size
            label = _label(size)
            events_per_s, p99 = await _join_with_state(
                bench, worker, topics, env["REFSTREAM_TOPIC_ATTRIBUTIONS"], label
            )
            bench.results[f"growth_{label}_join_events_per_s"] = events_per_s
            bench.results[f"growth_{label}_join_p99_s"] = p99
            bench.results[f"growth_{label}_rss_mb"] = _rss_mb(worker.process.pid)
            print(f"  {label}: loaded at {rate:,.0f} referrals/s (RSS max so far "
                  f"{max(rss):,.0f} MB); join {events_per_s:,.0f} events/s, p99 {p99:.2f} s",
                  flush=True)  # fmt: skip
        bench.results["state_referrals"] = loaded
        bench.results["state_load_events_per_s"] = loaded / load_seconds
        bench.results["state_rss_mb_max_while_loading"] = max(rss)
        quarter = len(rss) // 4
        bench.results["state_rss_mb_quartiles_while_loading"] = [
            round(rss[min(k * quarter, len(rss) - 1)]) for k in range(1, 5)
        ]
        await asyncio.sleep(10)  # the last offsets get committed
    finally:
        worker.stop(timeout=300)
    data = bench.workdir / f"{name}-data"
    bench.results["state_disk_mb"] = _du_mb(data)
    print(f"  state on disk: {bench.results['state_disk_mb']:,.0f} MB", flush=True)
    for label, wipe in (("local_state", False), ("from_changelog", True)):
        if wipe:
            shutil.rmtree(data)
        began = time.monotonic()
        worker = WorkerProcess(env, bench.workdir, name).start()
        try:
            await asyncio.to_thread(worker.wait_ready, 3600)
            bench.results[f"ready_seconds_{label}"] = time.monotonic() - began
            print(f"  ready with {label.replace('_', ' ')} in {time.monotonic() - began:,.1f} s",
                  flush=True)  # fmt: skip
            status, _ = worker.get(f"/attributions/ref_s{loaded // 2:08d}", timeout=30)
            assert status == 200, f"state lost ({label})"
            bench.results[f"rss_mb_after_ready_{label}"] = _rss_mb(worker.process.pid)
        finally:
            worker.stop(timeout=300)


def ratios(results: dict) -> None:
    """The join against raw consume; against the floor and the peer, unless the join section
    took them from its rounds."""
    join = results.get("join_events_per_s")
    for name, base in (("floor", "faust_floor_events_per_s"), ("quix", "quix_events_per_s"),
                       ("raw", "raw_consume_events_per_s")):  # fmt: skip
        key = f"join_vs_{name}_ratio"
        if join and results.get(base) and key not in results:
            results[key] = join / results[base]


SECTIONS: dict[str, Callable[[Bench], Awaitable[None]]] = {
    "limits": limits_and_peer,
    "join": join_throughput,
    "scale": scale_out,
    "kill": kill_duplicates,
    "sinks": sink_throughput,
    "latency": latency,
    "state": state,
    "gateway": gateway_throughput,
}


def table(results: dict) -> str:
    width = max(len(k) for k in results)
    lines = []
    for key, value in results.items():
        shown = (
            f"{value:,.3f}"
            if isinstance(value, float) and value < 10
            else (f"{value:,.0f}" if isinstance(value, float) else str(value))
        )
        lines.append(f"  {key:<{width}}  {shown:>14}")
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="refstream-bench-"))
    print(f"refstream bench: {args.events:,} events; logs in {workdir}", flush=True)
    if args.broker == "kafka":
        broker: ApacheKafka | EmbeddedBroker = ApacheKafka(workdir / "kafka")
        label, compat = broker.label, "kafka"
    else:
        broker, label, compat = EmbeddedBroker(log_path=workdir / "broker.log"), "tansu", "tansu"
    print(f"broker: {label}", flush=True)
    try:
        with broker:
            bench = Bench(
                broker.bootstrap_servers,
                workdir,
                args.events,
                args.referrals,
                args.latency_rates,
                compat,
                args.rounds,
            )
            for name in args.only or SECTIONS:
                started = time.monotonic()
                print(f"- {name} ...", flush=True)
                await SECTIONS[name](bench)
                print(f"  done in {time.monotonic() - started:.0f}s", flush=True)
    finally:
        _drop_data(workdir)
    results = bench.results
    ratios(results)
    results["machine"] = (
        f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}"
    )
    results["timestamp"] = datetime.now(UTC).isoformat(timespec="seconds")
    results["broker"] = label
    return results


def _drop_data(workdir: Path) -> None:
    """Keep a run's logs, not its data: the broker's log and the workers' RocksDB state come
    to over a gigabyte a run (10M referrals: several), and a day of runs filled a disk."""
    for data in [workdir / "kafka" / "kraft-logs", *workdir.rglob("*-data")]:
        if data.is_dir():
            shutil.rmtree(data, ignore_errors=True)


NOT_FIGURES = {"machine", "timestamp", "broker", "figure_brokers"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--referrals", type=int, default=10_000_000)
    parser.add_argument("--only", nargs="*", choices=list(SECTIONS))
    parser.add_argument(
        "--rounds", type=int, default=3,
        help="rounds of Faust's floor, the Quix peer and the join in the join section",
    )  # fmt: skip
    parser.add_argument(
        "--latency-rates", nargs="+", type=int, default=[1000, 100], metavar="RATE",
        help="steady rates (events/s) the latency section measures (1,000 is the headline)",
    )  # fmt: skip
    parser.add_argument(
        "--broker", choices=("kafka", "tansu"),
        default="kafka" if shutil.which("java") and shutil.which("mvn") else "tansu",
        help="Apache Kafka from dev/kafka.py, or the embedded Tansu",
    )  # fmt: skip
    parser.add_argument("--output", type=Path, default=ROOT / "bench-results.json")
    args = parser.parse_args()
    results = asyncio.run(main_async(args))
    print(table(results))
    if args.output:
        previous = json.loads(args.output.read_text()) if args.output.exists() else {}
        # Which broker each figure came from: files merge runs of different sections.
        figures = {k: results["broker"] for k in results if k not in NOT_FIGURES}
        brokers = previous.get("figure_brokers", {k: "tansu" for k in previous}) | figures
        brokers = {k: v for k, v in brokers.items() if k not in NOT_FIGURES}
        merged = {**previous, **results, "figure_brokers": brokers}
        args.output.write_text(json.dumps(merged, indent=2) + "\n")
        print(f"wrote {args.output}")


if __name__ == "__main__":
    main()

"""An hour under load (issue 17 item 4), ``make soak``: 500 events/s steady through two
workers with every sink on the emulators at their documented limits; a worker ``kill -9``-ed
every 10 minutes (alternately, its successor started at once on the same data) and a vendor
down for 2 minutes every 15 (HubSpot, Klaviyo, Mixpanel in turn).

Checked: at the end every vendor holds exactly the expected records (none lost, none extra
or stale), the specs were kept, no sink dead-lettered anything and the invalid-input DLQ
holds exactly the invalid records sent; within 60 s of each disruption its backlog is gone:
every consumer group has committed past every record that was in its partitions when the
disruption settled (lag back to 0 for what it held up; soak_figures.py). Klaviyo and
Mixpanel also count the requests they dropped as repeats: redeliveries after a kill, which
the contract leaves to the vendors' dedup keys (sinks.md), so they are reported rather than
required to be 0.

Measured: each worker process's RSS every 10 s (slope after warm-up, soak_figures.py) and
the lag of every consumer group every 5 s, from the broker's committed offsets (a
worker's own ``refstream_consumer_lag`` has no sample for partitions nobody owns, which is
what a kill leaves). Under load that sum is never 0 (committed offsets trail by the commit
intervals): the report gives its steady level, and each episode's peak. Everything goes to
``soak-results.json`` (``REFSTREAM_SOAK_REPORT``). ``REFSTREAM_SOAK_*`` (soak.py) scale the
run down, e.g. 300 s with a kill every 100 s and a 30 s outage every 120 s.

RocksDB stores, as in production: a killed worker's successor reads only the changelogs'
tail, and a takeover rebuilds only what the survivor never held.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import resource
import statistics
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from dev.emulators.hubspot import HubSpotEmulator
from dev.expectations import vendor_state
from dev.kafka_io import read_topic

from .soak import ROOT, BrokerLag, Incarnation, SoakParams, SteadyProducer, follow
from .soak_figures import Disruption, LagSample, episodes, pooled_slope, slope_per_hour
from .test_join import metric_samples
from .test_sinks import SINKS, assert_specs_clean

pytestmark = pytest.mark.integration

PARAMS = SoakParams.from_env()
VENDORS = ("hubspot", "klaviyo", "mixpanel")
RSS_EVERY = 10.0
LAG_EVERY = 5.0
STARTUP = 30.0
"""Seconds of the run left out of the steady lag: the workers' first fetches."""


class Soak:
    """Two workers, their disruptions and the samplers, on one clock (seconds since the
    producer started)."""

    def __init__(self, pipeline, emulators, params: SoakParams) -> None:
        self.pipeline, self.emulators, self.params = pipeline, emulators, params
        self.t0 = time.monotonic()
        self.current: dict[str, Incarnation] = {}
        self.incarnations: list[Incarnation] = []
        self.disruptions: list[Disruption] = []
        self.lag: list[dict] = []
        self.samples: list[LagSample] = []
        self.problems: list[str] = []
        self._tasks: set[asyncio.Task] = set()

    def now(self) -> float:
        return time.monotonic() - self.t0

    def _spawn(self, coroutine) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _incarnation(self, name: str, worker) -> Incarnation:
        number = sum(1 for i in self.incarnations if i.name == name) + 1
        incarnation = Incarnation(worker, name, number, time.monotonic())
        self.incarnations.append(incarnation)
        self.current[name] = incarnation
        return incarnation

    async def start_workers(self) -> None:
        for name in ("a", "b"):
            self._incarnation(name, await self.pipeline.start_worker(name))

    def schedule(self) -> list[tuple[float, str, str]]:
        p, plan = self.params, []
        for k in range(1, int(p.seconds // p.kill_every) + 1):
            plan.append((k * p.kill_every, "kill", "ab"[(k - 1) % 2]))
        for k in range(1, int(p.seconds // p.outage_every) + 1):
            plan.append((k * p.outage_every, "outage", VENDORS[(k - 1) % len(VENDORS)]))
        return sorted(t for t in plan if t[0] < p.seconds)

    async def disrupt(self) -> None:
        for at, kind, target in self.schedule():
            await asyncio.sleep(max(0.0, at - self.now()))
            if kind == "kill":
                self.kill(target)
            else:
                self._spawn(self.outage(target))

    def kill(self, name: str) -> None:
        old = self.current[name]
        with contextlib.suppress(OSError, StopIteration):
            old.sample(time.monotonic())  # its last figures
        old.worker.kill()
        old.ended = time.monotonic()
        disruption = Disruption("kill", name, self.now(), self.now())
        self.disruptions.append(disruption)
        new = self._incarnation(name, self.pipeline.worker(name))
        self._spawn(self._ready(new, disruption))

    async def _ready(self, incarnation: Incarnation, disruption: Disruption) -> None:
        try:
            await asyncio.to_thread(incarnation.worker.wait_ready, 600)
            disruption.ready_after = round(self.now() - disruption.start, 1)
        except Exception as exc:
            self.problems.append(f"worker {incarnation.name} #{incarnation.number}: {exc}")

    async def outage(self, vendor: str) -> None:
        emulator = getattr(self.emulators, vendor)
        disruption = Disruption("outage", vendor, self.now(), self.now())
        self.disruptions.append(disruption)
        emulator.faults.down = True
        try:
            await asyncio.sleep(self.params.outage_seconds)
        finally:
            emulator.faults.down = False
            disruption.end = self.now()

    async def sample_rss(self) -> None:
        while True:
            for incarnation in list(self.current.values()):
                if (status := incarnation.worker.process.poll()) is not None:
                    problem = f"worker {incarnation.name} #{incarnation.number} exited ({status})"
                    if problem not in self.problems:
                        self.problems.append(problem)
                    continue
                with contextlib.suppress(OSError, StopIteration):
                    incarnation.sample(time.monotonic())
            await asyncio.sleep(RSS_EVERY)

    async def sample_lag(self, broker: BrokerLag) -> None:
        while True:
            started = time.monotonic()
            try:
                sample = await broker.sample(round(started - self.t0, 1))
                self.samples.append(sample)
                groups: dict = sample.by_group()
            except Exception as exc:
                groups = {"error": repr(exc)[:200]}
            metric, answered = await asyncio.to_thread(self._metric_lag)
            total = sum(v for v in groups.values() if isinstance(v, int))
            self.lag.append({"t": round(started - self.t0, 1), "broker": total, "groups": groups,
                             "metric": sum(metric.values()), "metric_groups": metric,
                             "answered": answered})  # fmt: skip
            await asyncio.sleep(max(0.0, LAG_EVERY - (time.monotonic() - started)))

    def _metric_lag(self) -> tuple[dict[str, int], int]:
        """``refstream_consumer_lag`` by group (labelled as :class:`BrokerLag` does) over the
        workers that answer, and how many did."""
        app_id = self.pipeline.env["REFSTREAM_APP_ID"]
        by_group: Counter[str] = Counter()
        answered = 0
        for incarnation in list(self.current.values()):
            try:
                samples = metric_samples(incarnation.worker)
            except Exception:
                continue
            answered += 1
            now = time.monotonic()
            for (name, labels), value in samples.items():
                if name == "refstream_rocksdb_memory_bytes" and dict(labels)["kind"] == (
                    "block_cache"
                ):
                    incarnation.rocksdb.append((now - incarnation.started, value / 2**20, now))
                if name == "refstream_consumer_lag":
                    group = dict(labels)["group"].removeprefix(app_id).removeprefix("-")
                    by_group[group.removeprefix("sink-") or "join"] += int(value)
        return dict(by_group), answered

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def wait_exact(emulators, want: dict, timeout: float) -> bool:
    sizes = {vendor: len(records) for vendor, records in want.items()}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = vendor_state(emulators)
        if {v: len(r) for v, r in got.items()} == sizes and got == want:
            return True
        await asyncio.sleep(2)
    return False


def differences(got: dict, want: dict) -> dict:
    """Per vendor (per collection for HubSpot's contacts, deals and associations): ids
    missing, extra, and held with other content, with a few examples of each."""
    found = {}
    for vendor, expected in want.items():
        have = got[vendor]
        if isinstance(expected, dict) and expected.keys() == HubSpotEmulator.nothing().keys():
            for collection in expected:
                found |= differences(
                    {f"{vendor}.{collection}": have[collection]},
                    {f"{vendor}.{collection}": expected[collection]},
                )
            continue
        wrong: list = []
        if isinstance(expected, dict):
            missing, extra = expected.keys() - have.keys(), have.keys() - expected.keys()
            wrong = [k for k in expected.keys() & have.keys() if have[k] != expected[k]]
        else:
            missing, extra = expected - have, have - expected
        if missing or extra or wrong:
            examples = sorted(map(str, [*missing, *extra, *wrong]))[:5]
            found[vendor] = {"missing": len(missing), "extra": len(extra),
                             "wrong": len(wrong), "examples": examples,
                             "wrong_examples": [{"id": k, "held": have[k], "expected": expected[k]}
                                                for k in sorted(wrong)[:3]]}  # fmt: skip
    return found


def rss_figures(soak: Soak, warmup: float, produced_until: float) -> dict:
    """Slopes from the samples taken under load, past each incarnation's warm-up."""
    rows, settled = [], {"a": [], "b": []}
    loaded_until = soak.t0 + produced_until
    for i in soak.incarnations:
        after = [(age, mb) for age, mb, at in i.rss if age >= warmup and at <= loaded_until]
        cache = [(age, mb) for age, mb, at in i.rocksdb if age >= warmup and at <= loaded_until]
        settled[i.name].append(after)
        rows.append({
            "worker": i.name, "incarnation": i.number, "pid": i.pid,
            "started_s": round(i.started - soak.t0, 1),
            "ended_s": round(i.ended - soak.t0, 1) if i.ended else None,
            "samples": len(i.rss), "samples_in_slope": len(after),
            "first_mb": round(i.rss[0][1], 1) if i.rss else None,
            "last_mb": round(i.rss[-1][1], 1) if i.rss else None,
            "max_mb": round(max(mb for _, mb, _ in i.rss), 1) if i.rss else None,
            "slope_mb_per_h": _round(slope_per_hour(after)),
            "rocksdb_cache_last_mb": round(i.rocksdb[-1][1], 1) if i.rocksdb else None,
            "rocksdb_cache_slope_mb_per_h": _round(slope_per_hour(cache)),
            "cpu_s": round(i.cpu_seconds, 1),
            "rss_mb": [[round(at - soak.t0), round(mb, 1)] for _, mb, at in i.rss],
        })  # fmt: skip
    pooled = {name: _round(pooled_slope(groups)) for name, groups in settled.items()}
    pooled["both"] = _round(pooled_slope([g for groups in settled.values() for g in groups]))
    return {"warmup_s": warmup, "every_s": RSS_EVERY, "pooled_slope_mb_per_h": pooled,
            "incarnations": rows}  # fmt: skip


class Machine:
    """CPU over the load window: the whole machine's busy cores (broker, workers, this
    process with the emulators and the producer) and this process's own share; and the
    pauses of this process's full garbage collections (the emulators share its loop)."""

    def __init__(self) -> None:
        self.pauses: list[float] = []
        self._collecting = 0.0

    def _gc(self, phase: str, info: dict) -> None:
        if info["generation"] == 2:
            if phase == "start":
                self._collecting = time.perf_counter()
            else:
                self.pauses.append(time.perf_counter() - self._collecting)

    @staticmethod
    def _counters() -> tuple[float, float, float]:
        fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return sum(fields) - fields[3] - fields[4], sum(fields), usage.ru_utime + usage.ru_stime

    def start(self) -> None:
        gc.callbacks.append(self._gc)
        self._begin = self._counters()

    def close(self) -> None:
        if self._gc in gc.callbacks:
            gc.callbacks.remove(self._gc)
        gc.unfreeze()

    def figures(self, seconds: float) -> dict:
        busy, total, own = (b - a for a, b in zip(self._begin, self._counters(), strict=True))
        return {"cores": os.cpu_count(), "busy_cores": round(busy / total * os.cpu_count(), 2),
                "test_process_cores": round(own / seconds, 2),
                "test_process_full_gcs": len(self.pauses),
                "test_process_gc_pause_max_s": round(max(self.pauses, default=0), 3)}  # fmt: skip


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def lag_figures(soak: Soak, threshold: int, produced_until: float) -> tuple[dict, list]:
    """Recovery per episode from the broker's offsets; the steady lag (undisturbed samples
    under load, past the start-up); how far the workers' own metric read above it."""
    samples = [(s["t"], s["broker"]) for s in soak.lag]
    found = episodes(soak.disruptions, soak.samples)
    disturbed = [(e.disruptions[0].start, e.recovered_at or float("inf")) for e in found]
    steady = [v for t, v in samples if STARTUP <= t <= produced_until
              and not any(a <= t <= b for a, b in disturbed)]  # fmt: skip
    rows = [{
        "disruptions": [f"{d.kind} {d.target} at {d.start:.0f}s" for d in e.disruptions],
        "ended_s": round(e.end, 1), "settled_s": _round(e.settled), "peak_lag": e.peak_lag,
        "peak_at_s": e.peak_at, "recovered_s": _round(e.recovery_seconds),
        "waits_s": [_round(w) for w in e.waits],
        "after_production_end": e.recovered_at is not None and e.recovered_at > produced_until,
        "successor_ready_s": [d.ready_after for d in e.disruptions if d.kind == "kill"],
    } for e in found]  # fmt: skip
    recoveries = [r["recovered_s"] for r in rows]
    quantiles = (
        statistics.quantiles(steady, n=20, method="inclusive") if len(steady) >= 2 else [0] * 19
    )
    excess = [s["metric"] - s["broker"] for s in soak.lag if s["answered"] == 2]
    figures = {
        "recovery": "backlog gone: every group committed past the end offsets of when the "
                    "disruption settled", "every_s": LAG_EVERY,
        "steady": {"samples": len(steady), "p50": quantiles[9], "p95": quantiles[18],
                   "max": max(steady, default=0)},
        "recovery_max_s": None if None in recoveries else max(recoveries, default=0),
        "episodes": rows,
        "worker_metric_above_broker": {"max": max(excess, default=0), "threshold": threshold,
                                       "samples_above_threshold": sum(e > threshold
                                                                      for e in excess)},
    }  # fmt: skip
    return figures, found


@pytest.mark.slow
@pytest.mark.timeout(PARAMS.timeout)
async def test_an_hour_under_load(sink_pipeline, emulators, kafka):
    params, pipeline = PARAMS, sink_pipeline
    pipeline.env |= {"REFSTREAM_STORE": "rocksdb://", "PYTHONPATH": str(ROOT),
                     "PENDING_TTL_SECONDS": str(params.pending_ttl),
                     "REFSTREAM_STANDBY_REPLICAS": str(params.standby_replicas),
                     "HUBSPOT_RATE_LIMIT_PER_10S": str(params.hubspot_per_10s)}  # fmt: skip
    for emulator in emulators.by_sink.values():
        emulator.enforce_documented_limits()
    emulators.hubspot.limits = ((params.hubspot_per_10s, 10.0),)  # a documented tier

    soak, machine = Soak(pipeline, emulators, params), Machine()
    await soak.start_workers()
    producer = SteadyProducer(pipeline.servers, pipeline.topics, params)
    app_id = pipeline.env["REFSTREAM_APP_ID"]
    groups = {"join": app_id, "ingest": f"{app_id}-ingest"}
    groups |= {sink: f"{app_id}-sink-{sink}" for sink in SINKS}
    async with BrokerLag(pipeline.servers, groups) as broker:
        soak.t0 = time.monotonic()
        machine.start()
        for work in (
            producer.build_ahead(),
            soak.disrupt(),
            soak.sample_rss(),
            soak.sample_lag(broker),
            follow(pipeline.servers, pipeline.topics["attributions"], producer),
        ):
            soak._spawn(work)
        try:
            produced_until = (await producer.run(soak.t0)) - soak.t0
            cpu = machine.figures(produced_until)
            want = producer.expected.vendor_state()
            exact = await wait_exact(emulators, want, params.drain_timeout)
            drained = soak.now() - produced_until
            await asyncio.sleep(2 * LAG_EVERY)  # the lag once everything is delivered
        finally:
            machine.close()
            await soak.stop()
    report, failures = await findings(soak, producer, pipeline, emulators, want, exact)
    report |= {"broker": kafka.label, "produced_until_s": round(produced_until, 1),
               "drain_s": round(drained, 1) if exact else None, "cpu": cpu}  # fmt: skip
    lag, found = lag_figures(soak, params.lag_threshold, produced_until)
    report["lag"] = lag
    report["rss"] = rss_figures(soak, params.warmup, produced_until)
    report["lag_samples"] = [
        [s["t"], s["broker"], s["metric"], s["answered"], s["groups"], s["metric_groups"]]
        for s in soak.lag
    ]
    for episode in found:
        seconds = episode.recovery_seconds
        waits = [w for w in episode.waits if w > params.recovery_limit]
        if seconds is None or seconds > params.recovery_limit or waits:
            what = ", ".join(f"{d.kind} {d.target} at {d.start:.0f}s" for d in episode.disruptions)
            failures.append(f"backlog not gone within {params.recovery_limit:.0f}s of {what}: "
                            f"{seconds} (waiting when the next began: {waits})")  # fmt: skip
    report["failures"] = failures
    params.report.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2, default=str))
    print_summary(report, params)
    assert not failures, "\n".join(failures)


async def findings(soak, producer, pipeline, emulators, want, exact) -> tuple[dict, list]:
    """Everything checked at the end, as report entries and failures."""
    params, failures = soak.params, list(soak.problems)
    got = vendor_state(emulators)
    diff = differences(got, want)
    if not exact or diff:
        failures.append(f"vendors not exact after {params.drain_timeout:.0f}s: {diff}")
    if stuck := producer.stuck():
        failures.append(f"chunks whose phase-1 attributions never all came: {stuck}")
    if producer.failed_sends:
        failures.append(f"{len(producer.failed_sends)} records not acknowledged by the broker")
    try:
        assert_specs_clean(emulators)
    except AssertionError as exc:
        failures.append(f"spec violations: {exc}")
    dlq = {}
    prefix = pipeline.env["REFSTREAM_TOPIC_DLQ_SINK_PREFIX"]
    for sink in SINKS:
        records = await read_topic(pipeline.servers, prefix + sink, until=lambda r: True,
                                   idle=1.0, timeout=15)  # fmt: skip
        dlq[sink] = len(records)
    invalid = await read_topic(pipeline.servers, pipeline.topics["dlq_invalid"],
                               until=lambda r: True, idle=1.0, timeout=15)  # fmt: skip
    dlq["invalid"] = len(invalid)
    if any(dlq[sink] for sink in SINKS):
        failures.append(f"sink dead letters: {dlq}")
    sent_invalid = {(r.key, r.value) for r in producer.expected.invalid}
    if {(r.key, r.value) for r in invalid} != sent_invalid:
        failures.append(f"invalid DLQ: {len(invalid)} records, not the {len(sent_invalid)} sent")
    logs = {}
    for log in sorted({w.log_path for w in pipeline.workers}):
        text = log.read_text(errors="replace")
        logs[log.name] = {"errors": text.count("] [ERROR] "), "tracebacks": text.count("Traceback"),
                          "sink_crashes": text.count("sink crashed, restarting")}  # fmt: skip
        if "SkippedRecords" in text:
            failures.append(f"a stage skipped records: see {log}")
    seconds = params.seconds
    report = {
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "params": {k: str(v) if k == "report" else v for k, v in vars(params).items()},
        "store": pipeline.env["REFSTREAM_STORE"],
        "production": {
            "events_produced": producer.sent, "in_window": producer.sent_in_window,
            "rate_in_window": round(producer.sent_in_window / seconds, 1),
            "short_ticks": producer.short_ticks, "chunks": producer.chunks,
            "expected_events": producer.expected.events,
            "invalid_produced": len(producer.expected.invalid),
        },
        "attributions": {
            "expected": producer.expected.attributions, "distinct_seen": len(producer.seen_ids),
            "records": producer.attribution_records,
            "repeated": producer.attribution_records - len(producer.seen_ids),
        },
        "vendors": vendor_figures(emulators, got, want), "vendors_exact": exact and not diff,
        "differences": diff, "dlq": dlq, "worker_logs": logs,
        "disruptions": [vars(d) for d in soak.disruptions],
        "test_process_max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }  # fmt: skip
    return report, failures


def vendor_figures(emulators, got: dict, want: dict) -> dict:
    figures = {}
    for emulator in emulators.by_sink.values():
        name = emulator.name
        figures[name] = {
            "expected": emulator.count(want[name]), "held": emulator.count(got[name]),
            "duplicates_absorbed": emulator.duplicates, "requests": emulator.requests,
            "status_counts": {str(k): v for k, v in sorted(emulator.status_counts.items())},
            "over_limit_429s": emulator.over_limit, "limits": emulator.limits,
        }  # fmt: skip
    figures["hubspot"]["upserts"] = emulators.hubspot.upserts
    return figures


def print_summary(report: dict, params: SoakParams) -> None:
    production, rss, lag = report["production"], report["rss"], report["lag"]
    print(f"\nsoak: {params.seconds:.0f}s at {params.rate:.0f}/s on {report['broker']}, "
          f"{report['store']}, every vendor's documented limits (HubSpot "
          f"{params.hubspot_per_10s} / 10 s)")  # fmt: skip
    print(f"  produced {production['events_produced']:,} events "
          f"({production['rate_in_window']}/s in the window), "
          f"{report['attributions']['expected']:,} attributions")  # fmt: skip
    for name, v in report["vendors"].items():
        print(
            f"  {name}: {v['held']:,}/{v['expected']:,} records, "
            f"{v['duplicates_absorbed']} redeliveries absorbed, {v['over_limit_429s']} 429s"
        )
    print(f"  vendors exact: {report['vendors_exact']} (drained {report['drain_s']}s after "
          f"production), dlq {report['dlq']}")  # fmt: skip
    for episode in lag["episodes"]:
        print(
            f"  {'; '.join(episode['disruptions'])}: peak lag {episode['peak_lag']}, "
            f"backlog gone in {episode['recovered_s']}s"
            + (" (after production ended)" if episode["after_production_end"] else "")
        )
    print(f"  steady lag p50/p95/max {lag['steady']['p50']}/{lag['steady']['p95']}/"
          f"{lag['steady']['max']}; workers' own metric read up to "
          f"{lag['worker_metric_above_broker']['max']} above the broker's")  # fmt: skip
    print(f"  cpu: {report['cpu']}")
    print(f"  RSS slope after {rss['warmup_s']:.0f}s warm-up, MB/h: "
          f"{rss['pooled_slope_mb_per_h']}")  # fmt: skip
    for row in rss["incarnations"]:
        print(
            f"    {row['worker']}#{row['incarnation']}: {row['first_mb']} -> {row['last_mb']} "
            f"MB (max {row['max_mb']}), slope {row['slope_mb_per_h']} MB/h "
            f"over {row['samples_in_slope']} samples, cpu {row['cpu_s']}s"
        )
    for failure in report["failures"]:
        print(f"  FAILED: {failure}")

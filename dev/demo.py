"""``make demo``: the whole pipeline on one machine, end to end, then a summary.

Starts the embedded broker, the vendor emulators (HubSpot, Klaviyo, Mixpanel), one worker
(RocksDB tables, all three sinks) and the webhook gateway; sends referred purchases as signed
ReferralCandy, Shopify and Stripe webhooks (each twice, as a retrying platform would) and
streams a generated workload (shuffled, duplicated, out of order, with self-referrals, late
signups, refunds and invalid records), shows progress, waits
until every sink has delivered, prints what happened and checks it against the same workload
run through the pure rules. Exits 1 if anything was lost or delivered twice.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections import Counter, defaultdict
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import aiohttp
import orjson

from dev.broker import EmbeddedBroker
from dev.emulators import RunningEmulators, running_emulators
from dev.expectations import expected_vendor_state, vendor_state
from dev.gateway import GatewayProcess, Signer, platform_journeys
from dev.generator import Workload
from dev.kafka_io import create_topics, produce, read_topic
from dev.latency import CRM_KINDS, JOINED, delivery_latencies, percentile
from dev.worker import WorkerProcess
from schemas.events import parse_event

TTL_SECONDS = 8


def _bar(done: int, total: int, width: int = 32) -> str:
    filled = int(width * min(done, total) / max(total, 1))
    return f"[{'#' * filled}{'.' * (width - filled)}] {done:>6}/{total}"


async def _follow(servers: str, topic: str, want: int, label: str, timeout: float) -> list:
    """Read ``topic`` until ``want`` distinct attributions arrived, redrawing a progress bar."""
    seen: set[str] = set()
    read = 0
    shown = -1
    tty = sys.stdout.isatty()

    def until(records: list) -> bool:
        nonlocal read, shown
        for record in records[read:]:
            seen.add(orjson.loads(record.value)["attribution_event_id"])
        read = len(records)
        step = len(seen) if tty else len(seen) * 4 // max(want, 1)  # quarters when logged
        if step != shown:
            shown = step
            end = "" if tty else "\n"
            sys.stdout.write(f"\r  {label:<22} {_bar(len(seen), want)}{end}")
            sys.stdout.flush()
        return len(seen) >= want

    records = await read_topic(servers, topic, until=until, idle=1.0, timeout=timeout)
    if tty:
        sys.stdout.write("\n")
    return records


def _summary(records: list, dlq: list, workload: Workload) -> None:
    events = [orjson.loads(r.value) for r in records]
    kinds = Counter(e["kind"] for e in events)
    print("\nAttributions by kind")
    for kind, count in kinds.most_common():
        print(f"  {kind:<22} {count:>6}")

    totals: dict[str, dict] = {}
    advocates: dict[str, dict] = {}
    for event in events:  # one partition per referral: the last event holds the totals
        if event["order"] is not None and event["kind"] != "order_unattributed":
            totals[event["referral_id"]] = event["totals"]
            advocates[event["referral_id"]] = event["advocate"]
    revenue: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    converted: Counter = Counter()
    for referral_id, total in totals.items():
        advocate = advocates[referral_id]["id"]
        converted[advocate] += 1
        for currency, amount in total["revenue"].items():
            revenue[advocate][currency] += Decimal(amount)
    ranked = sorted(revenue, key=lambda a: (-sum(revenue[a].values()), a))[:10]
    print("\nTop advocates by attributed revenue (net of refunds, per currency, no FX)")
    for advocate in ranked:
        amounts = ", ".join(f"{c} {v:,.2f}" for c, v in sorted(revenue[advocate].items()))
        print(f"  {advocate:<12} {converted[advocate]:>3} converted   {amounts}")

    reasons = Counter(dict(r.headers)["error.reason"].decode() for r in dlq)
    print(f"\nDead-lettered invalid events: {len(dlq)} ({dict(reasons)})")
    print(f"Input records: {len(workload.records)} ({len(workload.invalid)} invalid)")


async def _follow_vendors(emulators: RunningEmulators, want: dict, timeout: float) -> bool:
    """Progress per sink until each vendor holds what it must; True when they all do."""
    tty = sys.stdout.isatty()
    deadline = time.monotonic() + timeout
    shown = None
    while True:
        got = vendor_state(emulators)
        done = got == want
        line = "   ".join(
            f"{sink} {e.count(got[e.name]):>5}/{e.count(want[e.name])}"
            for sink, e in emulators.by_sink.items()
        )
        if line != shown and (tty or done or time.monotonic() >= deadline):
            sys.stdout.write(f"\r  delivered              {line}" + ("" if tty else "\n"))
            shown = line
        if done or time.monotonic() >= deadline:
            if tty:
                sys.stdout.write("\n")
            return done
        await asyncio.sleep(0.3)


async def _sink_summary(servers: str, emulators: RunningEmulators) -> dict[str, int]:
    print("\nDeliveries per sink")
    dlq_total = {}
    for sink, emulator in emulators.by_sink.items():
        dlq = await read_topic(servers, f"refstream-dlq-{sink}", idle=0.5, timeout=3)
        dlq_total[sink] = len(dlq)
        held = emulator.count(emulator.held())
        print(
            f"  {sink:<10} {emulator.name:<9} {emulator.requests:>5} requests   "
            f"{held:>5} records   "
            f"{emulator.duplicates} deduplicated by the vendor   {len(dlq)} dead-lettered"
        )
    return dlq_total


def _event_id(value: bytes) -> str | None:
    try:
        event = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    return event.get("event_id") if isinstance(event, dict) else None


async def _latency_summary(servers: str, records: list, emulators: RunningEmulators) -> None:
    """p50/p99: input record → attribution (joined kinds), attribution → each vendor."""
    produced: dict[str, float] = {}
    for topic in ("referrals", "signups", "orders"):
        for record in await read_topic(servers, topic, idle=0.5, timeout=30):
            if (event_id := _event_id(record.value)) is not None:
                at = record.timestamp / 1000
                produced[event_id] = min(at, produced.get(event_id, at))
    first: dict[str, tuple[float, dict]] = {}
    for record in records:  # its record timestamp is the input's; emitted_at is the emission
        event = orjson.loads(record.value)
        at = datetime.fromisoformat(event["emitted_at"]).timestamp()
        if (
            event["attribution_event_id"] not in first
            or at < first[event["attribution_event_id"]][0]
        ):
            first[event["attribution_event_id"]] = (at, event)
    join = [at - produced[e["source_event_id"]] for at, e in first.values()
            if e["kind"] in JOINED and e["source_event_id"] in produced]  # fmt: skip
    keyed = {
        "email": ((i, at) for i, (at, _) in first.items()),
        "analytics": ((i, at) for i, (at, _) in first.items()),
        "crm": ((e["friend"]["email"], at) for at, e in first.values()
                if e["kind"] in CRM_KINDS and e["friend"] and e["friend"].get("email")),
    }  # fmt: skip
    logs = {"crm": emulators.hubspot.accept_log, "email": emulators.klaviyo.accept_log,
            "analytics": emulators.mixpanel.accept_log}  # fmt: skip
    print("\nEnd-to-end latency (the workload arrives as a burst, so queueing counts; Klaviyo's")
    print("documented limits, 350/s burst and 3,500/min steady, pace the email sink)")
    rows = [("input → attribution", join)]
    rows += [(f"attribution → {sink}", delivery_latencies(keyed[sink], logs[sink]))
             for sink in ("crm", "email", "analytics")]  # fmt: skip
    for label, values in rows:
        print(f"  {label:<24} p50 {percentile(values, 50):6.3f}s   "
              f"p99 {percentile(values, 99):6.3f}s   ({len(values)} records)")  # fmt: skip


async def _through_gateway(gateway: GatewayProcess, servers: str, count: int) -> list:
    """Send ``count`` referred purchases as signed webhooks, each twice; return the events
    the gateway published (read back from the input topics, by their ``gateway.source``)."""
    requests = platform_journeys(Signer(), count, time.time() - 86400)
    async with aiohttp.ClientSession() as session:
        for request in requests * 2:
            async with session.post(gateway.url + request.path, data=request.body,
                                    headers=request.headers) as response:  # fmt: skip
                if response.status != 200:
                    raise RuntimeError(f"gateway answered {response.status} to {request.path}")
    print(f"  webhooks               {len(requests) * 2} signed requests "
          f"({len(requests)} notifications, each sent twice) to {gateway.url}")  # fmt: skip
    events = []
    for topic in ("referrals", "signups", "orders"):
        for record in await read_topic(servers, topic, idle=0.5, timeout=30):
            if any(name == "gateway.source" for name, _ in record.headers):
                events.append(parse_event(record.value))
    return events


def _gateway_summary(gateway: GatewayProcess) -> None:
    """Requests per source and outcome, from the gateway's own metrics."""
    _, body = gateway.get("/metrics")
    print("\nWebhooks through the gateway (requests by source and outcome)")
    for line in body.decode().splitlines():
        if line.startswith("refstream_gateway_requests_total{") and not line.endswith(" 0.0"):
            labels, value = line.split("{", 1)[1].rsplit("} ", 1)
            fields = dict(part.split("=", 1) for part in labels.split(","))
            source, outcome = fields["source"].strip('"'), fields["outcome"].strip('"')
            print(f"  {source:<14} {outcome:<14} {float(value):>6.0f}")


async def run(journeys: int, seed: int, keep: bool = False) -> int:
    async with running_emulators() as emulators:
        return await _run(journeys, seed, emulators, keep)


async def _keep_until_enter(url: str) -> None:
    """``--keep``: leave the worker (and broker, emulators) up for a person to look at."""
    if not sys.stdin.isatty():
        print("\n--keep needs a terminal (stdin is not one): stopping now.")
        return
    print(f"\nThe worker stays up: open {url}/roi. Press Enter to stop.")
    await asyncio.to_thread(sys.stdin.readline)


async def _run(journeys: int, seed: int, emulators: RunningEmulators, keep: bool) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="refstream-demo-"))
    print(f"refstream demo: {journeys} journeys (seed {seed}); logs in {workdir}")
    broker = EmbeddedBroker(log_path=workdir / "broker.log").start()
    worker = gateway = None
    try:
        servers = broker.bootstrap_servers
        print(f"  broker                 tansu on {servers}")
        inputs = ["referrals", "signups", "orders", "refstream-dlq-gateway"]
        await create_topics(servers, inputs, partitions=4)
        worker = WorkerProcess(
            {
                "KAFKA_BOOTSTRAP_SERVERS": servers,
                "REFSTREAM_BROKER_COMPAT": "tansu",
                "REFSTREAM_SINKS": ",".join(emulators.by_sink),
                "PENDING_TTL_SECONDS": str(TTL_SECONDS),
                **emulators.env(),
            },
            workdir,
        ).start()
        await asyncio.to_thread(worker.wait_ready)
        print(f"  emulators              {', '.join(emulators.urls.values())}")
        print(f"  worker                 ready at {worker.url}")
        env = {"KAFKA_BOOTSTRAP_SERVERS": servers, "REFSTREAM_BROKER_COMPAT": "tansu"}
        gateway = GatewayProcess(env, workdir).start()
        await asyncio.to_thread(gateway.wait_ready)
        print(f"  gateway                ready at {gateway.url}")

        workload = Workload.build(journeys=journeys, seed=seed, invalid=max(3, journeys // 100))
        started = time.monotonic()
        webhooks = await _through_gateway(gateway, servers, max(10, journeys // 20))
        expected = workload.expected(extra=webhooks)
        await produce(workload.phase1, servers)
        print(f"  produced               {len(workload.phase1)} records (phase 1)")
        n1 = len(workload.expected(phases=1, extra=webhooks).emitted)
        await _follow(servers, "attributions", n1, "attributed (phase 1)", timeout=300)
        await produce(workload.phase2, servers)
        print(f"  produced               {len(workload.phase2)} records (phase 2: later orders,")
        print("                         refunds, second claims)")
        print(f"  waiting                {TTL_SECONDS}s pending TTL for events with no partner")
        records = await _follow(
            servers, "attributions", len(expected.emitted), "attributed (all)", timeout=300
        )
        dlq = await read_topic(
            servers, "refstream-dlq-invalid",
            until=lambda r: len(r) >= len(workload.invalid), idle=0.5, timeout=30,
        )  # fmt: skip
        want_vendors = expected_vendor_state(expected.emitted, expected.advocate_totals.values())
        vendors_ok = await _follow_vendors(emulators, want_vendors, timeout=120)
        elapsed = time.monotonic() - started
        _summary(records, dlq, workload)
        _gateway_summary(gateway)
        sink_dlq = await _sink_summary(servers, emulators)
        await _latency_summary(servers, records, emulators)

        got = {orjson.loads(r.value)["attribution_event_id"] for r in records}
        want = {a.attribution_event_id for a in expected.emitted}
        some = next(
            (a.referral_id for a in expected.emitted if a.kind == "referral_converted"), None
        )
        advocate = next(iter(expected.advocate_totals), None)
        print(f"\nEnd to end in {elapsed:.1f}s. Look around (--keep leaves the worker up):")
        print(f"  {worker.url}/roi                    the programme's ROI page")
        print(f"  {worker.url}/advocates/top?currency=EUR&limit=10")
        print(f"  {worker.url}/advocates/{advocate}")
        print(f"  {worker.url}/openapi.json")
        print(f"  {worker.url}/metrics")
        print(f"  {worker.url}/attributions/{some}")
        status, body = worker.get(f"/attributions/{some}")
        print(f"  -> {status} {body.decode()[:160]}...")
        missing, extra = want - got, got - want
        dlq_ok = len(dlq) == len(workload.invalid)
        twice = emulators.klaviyo.duplicates + emulators.mixpanel.duplicates
        if missing or extra or not dlq_ok or not vendors_ok or any(sink_dlq.values()) or twice:
            print(f"\nFAILED: {len(missing)} missing, {len(extra)} unexpected attributions; "
                  f"DLQ {len(dlq)}/{len(workload.invalid)}; vendors complete: {vendors_ok}; "
                  f"sink DLQ {sink_dlq}; delivered twice {twice}")  # fmt: skip
            return 1
        print(f"\nOK: all {len(want)} expected attributions, each delivered once to every "
              "vendor; nothing lost, nothing extra.")  # fmt: skip
        return 0
    finally:
        if keep and worker is not None:
            await _keep_until_enter(worker.url)
        for process in (gateway, worker):
            if process is not None:
                process.stop()
        broker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--journeys", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=42)
    keep = "in a terminal: keep the worker up until Enter (to look at its /roi page)"
    parser.add_argument("--keep", action="store_true", help=keep)
    args = parser.parse_args()
    sys.exit(asyncio.run(run(args.journeys, args.seed, args.keep)))


if __name__ == "__main__":
    main()

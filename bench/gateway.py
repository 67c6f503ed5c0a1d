"""``python -m bench --only gateway``: one gateway process on loopback, driven by ``wrk``
with signed Shopify order webhooks for 30 s; every 200 was acknowledged by the broker
(``acks=all``) before it was sent. ``py-spy`` samples the gateway meanwhile (where the
time goes)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import orjson

from bench import kafka
from dev.gateway import TEST_SECRETS, GatewayProcess

__all__ = ["gateway_throughput"]

SCRIPT = Path(__file__).with_name("gateway.lua")
DISTINCT_ORDERS = 20_000
SECONDS = 30
CONNECTIONS = 64


def _requests_file(path: Path) -> Path:
    """A Lua table of (body, signature, webhook id) for :data:`DISTINCT_ORDERS` orders."""
    secret = TEST_SECRETS["REFSTREAM_GATEWAY_SHOPIFY_SECRET"].encode()
    rows = []
    for i in range(DISTINCT_ORDERS):
        email = f"buyer{i}@example.com"
        body = orjson.dumps({
            "id": 10_000_000 + i, "email": email, "created_at": "2026-11-30T10:00:00Z",
            "financial_status": "paid", "test": False, "total_price": f"{i % 500}.90",
            "currency": "EUR", "note_attributes": [{"name": "referral_id", "value": f"ref_{i}"}],
            "customer": {"id": 20_000_000 + i, "email": email, "first_name": "Bench"},
        })  # fmt: skip
        signature = base64.b64encode(hmac.new(secret, body, hashlib.sha256).digest())
        quoted = [orjson.dumps(part.decode()).decode() for part in (body, signature)]
        rows.append(f'{{{quoted[0]},{quoted[1]},"wh-{i}"}}')
    path.write_text("return {\n" + ",\n".join(rows) + "\n}\n")
    return path


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` so far (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _hot_functions(raw: Path, top: int = 12) -> list[tuple[str, float]]:
    """Share of samples per innermost frame of py-spy's folded stacks."""
    counts: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if stack and n.isdigit():
            counts[stack.split(";")[-1]] += int(n)
    total = sum(counts.values()) or 1
    return [(frame, count / total) for frame, count in counts.most_common(top)]


async def gateway_throughput(bench) -> None:
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is missing: apt-get install wrk")
    names = {k: bench.name(k) for k in ("referrals", "signups", "orders", "dlq")}
    await kafka.create(bench.servers, list(names.values()), partitions=8)
    env = bench.env(
        REFSTREAM_TOPIC_REFERRALS=names["referrals"], REFSTREAM_TOPIC_SIGNUPS=names["signups"],
        REFSTREAM_TOPIC_ORDERS=names["orders"], REFSTREAM_TOPIC_DLQ_GATEWAY=names["dlq"],
    )  # fmt: skip
    gateway = GatewayProcess(env, bench.workdir)
    gateway.start()
    await asyncio.to_thread(gateway.wait_ready)
    requests = _requests_file(bench.workdir / "gateway-requests.lua")
    wrk_env = {"BENCH_GATEWAY_REQUESTS": str(requests)}
    profile = bench.workdir / "gateway-py-spy.txt"
    spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    try:
        warmup = ["wrk", "-t1", "-c16", "-d3s", "-s", str(SCRIPT), gateway.url]
        await asyncio.to_thread(subprocess.run, warmup, env=wrk_env, capture_output=True)
        sampler = None
        if spy:
            sampler = subprocess.Popen(
                [spy, "record", "--pid", str(gateway.process.pid), "--duration",
                 str(SECONDS - 5), "--rate", "50", "--format", "raw", "--output", str(profile),
                 "--nonblocking"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
        cpu_before = _cpu_seconds(gateway.process.pid)
        command = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{SECONDS}s", "--timeout", "10s",
                   "-s", str(SCRIPT), gateway.url]  # fmt: skip
        done = await asyncio.to_thread(
            subprocess.run, command, env=wrk_env, capture_output=True, text=True
        )
        cpu = _cpu_seconds(gateway.process.pid) - cpu_before
        if sampler is not None:
            await asyncio.to_thread(sampler.wait, 60)
    finally:
        _, metrics = gateway.get("/metrics")
        gateway.stop()
    line = next(x for x in done.stdout.splitlines() if x.startswith("BENCH "))
    run = orjson.loads(line.removeprefix("BENCH "))
    published = sum(
        float(sample.rsplit(" ", 1)[1])
        for sample in metrics.decode().splitlines()
        if sample.startswith("refstream_gateway_requests_total{")
        and 'outcome="published"' in sample
    )
    seconds = run["duration_us"] / 1e6
    bench.results |= {
        "gateway_requests_per_s": run["requests"] / seconds,
        "gateway_p50_ms": run["p50_us"] / 1000,
        "gateway_p99_ms": run["p99_us"] / 1000,
        "gateway_non_200": float(run["non_2xx"] + run["timeouts"]),
        "gateway_published_acked": published,
        "gateway_cpu_ms_per_request": cpu * 1000 / max(run["requests"], 1),
        "gateway_cpu_cores_used": cpu / seconds,
    }
    if profile.exists():
        print(f"  where the gateway's time goes (py-spy, innermost frames; {profile}):")
        for frame, share in _hot_functions(profile):
            print(f"  {share:6.1%}  {frame}")
    else:
        print("  py-spy not installed (pip install py-spy): no profile")

"""The advocate API and the ROI page on real workers: two workers split the advocates'
partitions; whichever is asked answers for every advocate (routed by key) and merges the
leaderboard, and the answers equal the totals computed from the workload through the pure
rules. The page is loaded in headless Chromium and its numbers checked the same way."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import orjson
import pytest
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse

from dev.expectations import expected_advocates
from dev.generator import Workload
from streams.openapi import OPENAPI

from .test_join import run_phases

pytestmark = pytest.mark.integration

SPEC = OpenAPI.from_dict({**OPENAPI, "servers": [{"url": "http://worker"}]})
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"


def answer(worker, path: str) -> tuple[int, object]:
    """GET ``path`` and check the answer against the worker's OpenAPI document."""
    status, body = worker.get(path, timeout=15)
    route, _, query = path.partition("?")
    args = dict(part.split("=", 1) for part in query.split("&") if part)
    request = MockRequest("http://worker", "get", route, args=args)
    SPEC.validate_response(
        request, MockResponse(body, status_code=status, content_type="application/json")
    )
    return status, orjson.loads(body)


async def wait_for_advocates(worker, want: dict, timeout: float = 90) -> dict:
    """Until every advocate answers as expected (the advocate stage is downstream of the
    attributions and lags them), or the timeout; returns the last answers. (Answers short
    of a referral after minutes were records lost in a rebalance: streams/rebalance.py.)"""
    deadline = time.monotonic() + timeout
    while True:
        got = {advocate: answer(worker, f"/advocates/{advocate}")[1] for advocate in want}
        if got == want or time.monotonic() > deadline:
            return got
        await asyncio.sleep(1)


def expected_leaders(want: dict, currency: str) -> list[tuple[str, str]]:
    ranked = [(a, v["net_revenue"][currency]) for a, v in want.items()
              if currency in v["net_revenue"]]  # fmt: skip
    return sorted(ranked, key=lambda pair: (-Decimal(pair[1]), pair[0]))


async def test_advocate_api_answers_every_advocate_exactly_across_two_workers(pipeline):
    pipeline.env |= {"PENDING_TTL_SECONDS": "8"}
    workload = Workload.build(journeys=300, seed=59, invalid=0)
    sim = workload.expected()
    want = expected_advocates(sim)
    first = await pipeline.start_worker("worker-a")
    second = await pipeline.start_worker("worker-b")
    await run_phases(pipeline, workload)

    got = await wait_for_advocates(first, want)
    assert got == want  # every advocate, asked of one worker, half of them routed
    assert sum(v["converted"] for v in want.values()) > 20
    assert any(any(Decimal(x) for x in v["refunds"].values()) for v in want.values())
    assert {a: answer(second, f"/advocates/{a}")[1] for a in list(want)[:10]} == {
        a: want[a] for a in list(want)[:10]
    }

    # Each worker holds part of the advocates; the one asked merges the others' parts.
    parts = [orjson.loads(w.get("/advocates/_summary?limit=1000")[1]) for w in (first, second)]
    assert all(part["advocates"] > 0 for part in parts)
    assert sum(part["advocates"] for part in parts) == len(want)
    for currency in ("EUR", "GBP", "USD"):
        ranked = expected_leaders(want, currency)
        for worker, limit in ((first, 1000), (second, 3)):
            status, body = answer(worker, f"/advocates/top?currency={currency}&limit={limit}")
            assert status == 200
            assert [(e["advocate_id"], e["net_revenue"]) for e in body["advocates"]] == (
                ranked[:limit]
            )
            assert [e["rank"] for e in body["advocates"]] == list(range(1, len(ranked[:limit]) + 1))
    status, body = answer(first, "/advocates/top?currency=eur")  # default limit 20
    assert status == 200 and body["limit"] == 20 and len(body["advocates"]) == min(20, len(
        expected_leaders(want, "EUR")))  # fmt: skip

    # Bad input: JSON naming what is wrong, as documented.
    status, body = answer(first, "/advocates/nobody-here")
    assert (status, body["error"]) == (404, "unknown advocate")
    for query, parameter in (
        ("currency=EUR&limit=0", "limit"), ("currency=EUR&limit=1001", "limit"),
        ("currency=EUR&limit=ten", "limit"), ("currency=XYZ", "currency"),
        ("currency=EURO", "currency"), ("limit=5", "currency"),
    ):  # fmt: skip
        status, body = answer(second, f"/advocates/top?{query}")
        assert (status, body["parameter"]) == (400, parameter), query
    status, spec = second.get("/openapi.json")
    assert status == 200 and orjson.loads(spec)["paths"].keys() == OPENAPI["paths"].keys()


class _Numbers(HTMLParser):
    """The page's checked numbers: elements with ``data-total``, ``data-net-revenue``,
    ``data-net`` (leaderboard rows) and the chart's series."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[tuple[str, str], str] = {}
        self.leaders: dict[str, list[tuple[str, str]]] = {}
        self.series: list[str] = []
        self._open: tuple[str, str] | None = None
        self._table: str | None = None
        self._row: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and "data-currency" in attrs:
            self._table = attrs["data-currency"]
            self.leaders[self._table] = []
        if tag == "tr" and "data-advocate" in attrs:
            self._row = attrs["data-advocate"]
        if "data-net" in attrs and self._row:
            self.leaders[self._table].append((self._row, attrs["data-net"]))
        if tag == "polyline" and "data-series" in attrs:
            self.series.append(attrs["data-series"])
        for name in ("data-total", "data-net-revenue", "data-revenue", "data-refunds"):
            if name in attrs:
                self._open = (name, attrs[name])

    def handle_data(self, data):
        if self._open and data.strip():
            self.values[self._open] = data.strip()
            self._open = None


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("headless Chromium is needed (Debian: apt-get install chromium; .ci/run)")
    return found


def browse(profile: Path, url: str, *args: str) -> subprocess.CompletedProcess:
    """Headless Chromium with a profile of its own (a shared one is locked by other runs)."""
    return subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--user-data-dir={profile}", *args, url],
        capture_output=True, timeout=90, check=True,
    )  # fmt: skip


async def test_roi_page_in_headless_chromium_shows_the_expected_totals(pipeline, tmp_path):
    pipeline.env |= {"PENDING_TTL_SECONDS": "8"}
    workload = Workload.build(journeys=200, seed=61, invalid=0)
    sim = workload.expected()
    want = expected_advocates(sim)
    worker = await pipeline.start_worker()
    await run_phases(pipeline, workload)
    assert await wait_for_advocates(worker, want) == want

    page = await asyncio.to_thread(browse, tmp_path / "chromium", worker.url + "/roi", "--dump-dom")
    assert b'http-equiv="refresh"' in page.stdout  # it keeps itself current while it runs
    numbers = _Numbers()
    numbers.feed(page.stdout.decode())
    signed_up = sum(v["signed_up"] for v in want.values())
    converted = sum(v["converted"] for v in want.values())
    totals = {
        "advocates": len(want), "referrals": sum(v["referrals"] for v in want.values()),
        "signed_up": signed_up, "converted": converted,
        "orders": sum(v["orders"] for v in want.values()),
        "conversion_rate": f"{100 * converted / signed_up:.1f} %",
    }  # fmt: skip
    assert {n: numbers.values[("data-total", n)] for n in totals} == {
        n: str(v) for n, v in totals.items()
    }
    net: dict[str, Decimal] = {}
    for view in want.values():
        for currency, amount in view["net_revenue"].items():
            net[currency] = net.get(currency, Decimal(0)) + Decimal(amount)
    shown = {c: Decimal(v) for (name, c), v in numbers.values.items() if name == "data-net-revenue"}
    assert shown == net and len(net) >= 2
    for currency in net:
        top = expected_leaders(want, currency)[:10]
        assert numbers.leaders[currency] == top, currency
    assert sorted(numbers.series) == sorted(net)  # one line per currency in the chart

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "roi.png"
    shot.unlink(missing_ok=True)
    await asyncio.to_thread(
        browse,
        tmp_path / "chromium",
        worker.url + "/roi",
        f"--screenshot={shot}",
        "--window-size=1100,1500",
    )
    assert shot.exists() and shot.stat().st_size > 10_000

"""Worker HTTP endpoints of contract section 6 (on Faust's web server)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import aiohttp
import msgspec
import pycountry
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from yarl import URL

from agents.advocates import advocate_view, leaderboard, merge, summary
from agents.codec import decoder
from agents.ingest import INGEST
from agents.state import AdvocateState, ReferralState
from sinks.delivery.watch import stuck_sinks
from streams import tables
from streams.app import app, settings
from streams.broker_watch import broker_reachable
from streams.metrics import WORKER_READY
from streams.openapi import OPENAPI
from streams.producer import place
from streams.roi import render_roi

__all__ = ["is_ready", "program", "referral_view"]

_ADVOCATE_STATE = decoder(AdvocateState)
_REFERRAL_STATE = decoder(ReferralState)

SUMMARY_PATH = "/advocates/_summary"
"""Internal: one worker's summary of the advocates in its own partitions."""
PEER_TIMEOUT_SECONDS = 10.0
LIMIT_TEXT = re.compile(r"[0-9]{1,4}")
ROI_LEADERS = 10


def is_ready() -> bool:
    """The broker answers, partitions are assigned (the stages' and ingest's) and table
    recovery is complete (``/readyz``)."""
    return (
        broker_reachable()
        and not app.rebalancing
        and app.tables.recovery.completed.is_set()
        and not app.tables.recovery.in_recovery
        and bool(app.assignor.assigned_actives())
        and INGEST.assigned()
    )


WORKER_READY.set_function(lambda: float(is_ready()))


def referral_view(state: ReferralState) -> dict[str, Any]:
    """The lookup answer: section 5 field names plus status, signed_up_at, converted_at."""
    referral = state.referral
    assert referral is not None
    view = msgspec.to_builtins({
        "referral_id": state.referral_id,
        "campaign_id": referral.campaign_id,
        "advocate": referral.advocate,
        "occurred_at": referral.occurred_at,
        "last_kind": state.last_kind,
        "status": state.status,
        "friend": state.friend,
        "totals": state.totals,
        "signed_up_at": state.signed_up_at,
        "converted_at": state.converted_at,
    })  # fmt: skip
    return view


@app.page("/healthz")
async def healthz(self: View, request: Request) -> Response:
    return self.json({"status": "ok"})


@app.page("/readyz")
async def readyz(self: View, request: Request) -> Response:
    ready = is_ready()
    body: dict[str, Any] = {"ready": ready}
    if not broker_reachable():
        body["reason"] = "broker unreachable"
    if stuck := stuck_sinks(settings.sink_stuck_seconds):
        ready = False
        body |= {"ready": False, "stuck_sinks": stuck}
    return self.json(body, status=200 if ready else 503)


@app.page("/metrics")
async def metrics(self: View, request: Request) -> Response:
    # aiohttp refuses a charset in content_type=, so the full header goes in headers=.
    return self.bytes(generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


@app.page("/attributions/{referral_id}")
@app.table_route(table=tables.referrals, match_info="referral_id")
async def lookup(self: View, request: Request, referral_id: str) -> Response:
    stored = tables.referrals.get(referral_id.encode())
    state = _REFERRAL_STATE(stored) if stored is not None else None
    if state is None or state.referral is None:
        return self.json({"error": "unknown referral", "referral_id": referral_id}, status=404)
    return self.json(referral_view(state))


class BadParameter(ValueError):
    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter


def _limit(request: Request, default: int = 20) -> int:
    text = request.query.get("limit")
    if text is None:
        return default
    if not LIMIT_TEXT.fullmatch(text) or not 1 <= int(text) <= 1000:
        raise BadParameter("limit", "limit must be an integer from 1 to 1000")
    return int(text)


def _currency(request: Request) -> str:
    code = (request.query.get("currency") or "").upper()
    if not code:
        raise BadParameter("currency", "currency is required (an ISO 4217 code, e.g. EUR)")
    if len(code) != 3 or pycountry.currencies.get(alpha_3=code) is None:
        raise BadParameter("currency", f"unknown currency {code[:8]!r} (ISO 4217, e.g. EUR)")
    return code


def _local_advocates() -> Iterator[AdvocateState]:
    """The advocates of this worker's active partitions (standby copies are another
    worker's to answer for)."""
    topic = settings.topics.by_advocate
    actives = {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == topic}
    partitions = list(range(settings.partitions))
    for key, value in list(tables.advocates.items()):
        if place(key, partitions) in actives:
            yield _ADVOCATE_STATE(value)


def _peers() -> list[URL]:
    """The other workers that hold partitions of the advocates' table."""
    me = URL(app.conf.canonical_url)
    hosts = app.router.table_metadata(tables.advocates.name)
    urls = [URL(host) for host in hosts]
    return [url for url in urls if (url.host, url.port) != (me.host, me.port)]


async def program(limit: int) -> dict[str, Any]:
    """The whole programme: this worker's summary merged with every peer's."""
    parts = [summary(_local_advocates(), limit)]
    timeout = aiohttp.ClientTimeout(total=PEER_TIMEOUT_SECONDS)
    async with aiohttp.ClientSession(timeout=timeout) as http:

        async def ask(url: URL) -> dict[str, Any]:
            async with http.get(url.with_path(SUMMARY_PATH).with_query(limit=limit)) as answer:
                answer.raise_for_status()
                return await answer.json()

        parts += await asyncio.gather(*(ask(url) for url in _peers()))
    return merge(parts, limit)


def _bad(self: View, exc: BadParameter) -> Response:
    return self.json({"error": str(exc), "parameter": exc.parameter}, status=400)


@app.page("/openapi.json")
async def openapi(self: View, request: Request) -> Response:
    return self.json(OPENAPI)


@app.page(SUMMARY_PATH)
async def local_summary(self: View, request: Request) -> Response:
    try:
        limit = _limit(request)
    except BadParameter as exc:
        return _bad(self, exc)
    return self.json(summary(_local_advocates(), limit))


@app.page("/advocates/top")  # before /advocates/{advocate_id}, which would match it too
async def top_advocates(self: View, request: Request) -> Response:
    try:
        currency, limit = _currency(request), _limit(request)
    except BadParameter as exc:
        return _bad(self, exc)
    try:
        merged = await program(limit)
    except (aiohttp.ClientError, TimeoutError) as exc:
        return self.json({"error": f"a worker did not answer: {type(exc).__name__}"}, status=503)
    answer = {"currency": currency, "limit": limit,
              "advocates": leaderboard(merged, currency, limit)}  # fmt: skip
    return self.json(answer)


@app.page("/advocates/{advocate_id}")
@app.table_route(table=tables.advocates, match_info="advocate_id")
async def advocate(self: View, request: Request, advocate_id: str) -> Response:
    stored = tables.advocates.get(advocate_id.encode())
    state = _ADVOCATE_STATE(stored) if stored is not None else None
    if state is None or not state.referrals:
        return self.json({"error": "unknown advocate", "advocate_id": advocate_id}, status=404)
    return self.json(advocate_view(state))


@app.page("/roi")
async def roi(self: View, request: Request) -> Response:
    try:
        merged = await program(ROI_LEADERS)
    except (aiohttp.ClientError, TimeoutError) as exc:
        return self.text(f"a worker did not answer: {type(exc).__name__}", status=503)
    return self.html(render_roi(merged))

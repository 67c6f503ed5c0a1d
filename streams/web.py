"""Worker HTTP endpoints of contract section 6 (on Faust's web server)."""

from __future__ import annotations

from typing import Any

from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from agents.ingest import INGEST
from agents.state import ReferralState
from sinks.delivery.watch import stuck_sinks
from streams import tables
from streams.app import app, settings
from streams.broker_watch import broker_reachable
from streams.metrics import WORKER_READY

__all__ = ["is_ready", "referral_view"]


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
    view = state.model_dump(
        mode="json", include={"status", "friend", "totals", "signed_up_at", "converted_at"}
    )
    return {
        "referral_id": state.referral_id,
        "campaign_id": referral.campaign_id,
        "advocate": referral.advocate.model_dump(mode="json"),
        "occurred_at": referral.model_dump(mode="json")["occurred_at"],
        "last_kind": state.last_kind,
        **view,
    }


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
    state = ReferralState.model_validate_json(stored) if stored is not None else None
    if state is None or state.referral is None:
        return self.json({"error": "unknown referral", "referral_id": referral_id}, status=404)
    return self.json(referral_view(state))

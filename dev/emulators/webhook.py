"""A receiver for the webhook sink: checks the signature, dedups by notification id."""

from __future__ import annotations

import hmac
from typing import Any

from aiohttp import web

from dev.emulators.base import Emulator
from schemas.attribution import AdvocateTotals, AttributionEvent, AttributionKind
from sinks.webhook import signature

__all__ = ["WebhookEmulator"]


class WebhookEmulator(Emulator):
    name = "webhook"
    spec_file = None  # no published spec: the receiver checks the shape itself
    route = "/notify"

    def __init__(self, secret: str = "webhook-test-secret") -> None:
        super().__init__()
        self.secret = secret
        self.notifications: dict[str, dict[str, Any]] = {}

    def env(self, url: str) -> dict[str, str]:
        return {"WEBHOOK_URL": url + self.route, "WEBHOOK_SECRET": self.secret}

    def held(self) -> dict[str, str]:
        return {id_: note["kind"] for id_, note in self.notifications.items()}

    @staticmethod
    def expect(emitted: list[AttributionEvent], advocates: list[AdvocateTotals]) -> dict:
        """A notification per conversion or attributed order that has an advocate."""
        notify = {AttributionKind.REFERRAL_CONVERTED, AttributionKind.ORDER_ATTRIBUTED}
        return {
            event.attribution_event_id: event.kind.value
            for event in emitted
            if event.kind in notify and event.advocate is not None
        }

    def state(self) -> dict[str, Any]:
        return {**super().state(), "notifications": list(self.notifications.values())}

    def authorised(self, request: web.Request) -> bool:
        return True  # checked in handle(): the signature covers the body

    async def handle(self, request: web.Request, body: Any) -> web.Response:
        raw = await request.read()
        timestamp = request.headers.get("X-Refstream-Timestamp", "")
        given = request.headers.get("X-Refstream-Signature", "")
        if not hmac.compare_digest(given, signature(self.secret, timestamp, raw)):
            return web.json_response({"error": "bad signature"}, status=401)
        ids = {note["id"] for note in body.get("notifications", [])}
        if refused := ids & self.faults.reject:
            self.rejected.extend(sorted(refused))
            return web.json_response({"error": "invalid notification"}, status=400)
        for note in body.get("notifications", []):
            if note["id"] in self.notifications:
                self.duplicates += 1
            else:
                self.notifications[note["id"]] = note
        return web.json_response({"received": len(body.get("notifications", []))})

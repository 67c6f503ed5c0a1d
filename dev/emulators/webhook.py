"""A receiver for the webhook sink: checks the signature, dedups by notification id."""

from __future__ import annotations

import hmac
from typing import Any

from aiohttp import web

from dev.emulators.base import Emulator
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
        for note in body.get("notifications", []):
            if note["id"] in self.notifications:
                self.duplicates += 1
            else:
                self.notifications[note["id"]] = note
        return web.json_response({"received": len(body.get("notifications", []))})

"""Segment's HTTP tracking API, ``POST /v1/batch`` (no published spec: the documented shape
is checked here). Like Segment, it answers 200 to a batch whose calls it then drops (no
``userId`` or ``anonymousId``, a message over 32 KB) and counts them in ``dropped``: a
sink must never rely on a 200 to know its calls were valid."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

import orjson
from aiohttp import web

from dev.emulators.base import Emulator
from schemas.attribution import AdvocateTotals, AttributionEvent

__all__ = ["SegmentEmulator"]

MAX_BATCH_BYTES = 500 * 1000
MAX_MESSAGE_BYTES = 32 * 1000


def _problem(call: Any) -> str | None:
    """Why Segment would drop this call, or ``None``."""
    if not isinstance(call, dict) or call.get("type") != "track":
        return "not a track call"
    if not (call.get("userId") or call.get("anonymousId")):
        return "no userId or anonymousId"
    if not isinstance(call.get("event"), str) or not call["event"]:
        return "no event name"
    if not isinstance(call.get("messageId"), str) or not call["messageId"]:
        return "no messageId"
    if not isinstance(call.get("properties", {}), dict):
        return "properties is not an object"
    try:
        datetime.fromisoformat(call["timestamp"])
    except (KeyError, TypeError, ValueError):
        return "timestamp is not ISO 8601"
    if len(orjson.dumps(call)) > MAX_MESSAGE_BYTES:
        return "message larger than 32 KB"
    return None


class SegmentEmulator(Emulator):
    name = "segment"
    spec_file = None
    route = "/v1/batch"

    def __init__(self, write_key: str = "segment-test-write-key") -> None:
        super().__init__()
        self.write_key = write_key
        self.calls: dict[str, dict[str, Any]] = {}
        self.dropped: list[str] = []

    def env(self, url: str) -> dict[str, str]:
        return {"SEGMENT_API_URL": url, "SEGMENT_WRITE_KEY": self.write_key}

    def held(self) -> dict[str, str]:
        return {message_id: call["event"] for message_id, call in self.calls.items()}

    @staticmethod
    def expect(emitted: list[AttributionEvent], advocates: list[AdvocateTotals]) -> dict:
        """A track call per attribution, by ``messageId``, named after its kind."""
        return {
            event.attribution_event_id: "Referral " + event.kind.value.replace("_", " ").title()
            for event in emitted
        }

    def state(self) -> dict[str, Any]:
        return {**super().state(), "calls": list(self.calls.values()), "dropped": self.dropped}

    def authorised(self, request: web.Request) -> bool:
        expected = base64.b64encode(f"{self.write_key}:".encode()).decode()
        return request.headers.get("Authorization") == f"Basic {expected}"

    def invalid(self, message: str) -> web.Response:
        return web.json_response({"success": False, "message": message}, status=400)

    async def handle(self, request: web.Request, body: Any) -> web.Response:
        if (request.content_length or 0) > MAX_BATCH_BYTES:
            return self.invalid("batch larger than 500 KB")
        calls = body.get("batch") if isinstance(body, dict) else None
        if not isinstance(calls, list):
            return self.invalid("body must be {'batch': [...]}")
        refused = [c.get("messageId") for c in calls if isinstance(c, dict)]
        if self.faults.reject.intersection(refused):
            self.rejected.extend(self.faults.reject.intersection(refused))
            return self.invalid("malformed batch (the emulator's fault settings)")
        for call in calls:
            if problem := _problem(call):
                self.dropped.append(problem)  # Segment answers 200 all the same
                continue
            if call["messageId"] in self.calls:
                self.duplicates += 1
            else:
                self.calls[call["messageId"]] = call
                self.accepted(call["messageId"])
        return web.json_response({"success": True})

"""Klaviyo Create Event (only the first event per unique_id, profile and metric counts)."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from dev.emulators.base import Emulator

__all__ = ["KlaviyoEmulator"]

JSON_API = "application/vnd.api+json"


class KlaviyoEmulator(Emulator):
    name = "klaviyo"
    spec_file = "klaviyo-create-event.json"
    route = "/api/events"
    documented_limits = ((350, 1.0), (3500, 60.0))  # burst and steady

    def __init__(self, api_key: str = "klaviyo-test-key") -> None:
        super().__init__()
        self.api_key = api_key
        self.events: dict[tuple[str, str, str], dict[str, Any]] = {}

    def state(self) -> dict[str, Any]:
        events = [
            {"unique_id": u, "profile": p, "metric": m, **e} for (u, p, m), e in self.events.items()
        ]
        return {**super().state(), "events": events}

    def authorised(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Klaviyo-API-Key {self.api_key}"

    def _errors(self, status: int, code: str, detail: str, headers=None) -> web.Response:
        body = {
            "errors": [{"id": str(uuid.uuid4()), "code": code, "title": code, "detail": detail}]
        }
        return web.json_response(body, status=status, content_type=JSON_API, headers=headers)

    def invalid(self, message: str) -> web.Response:
        return self._errors(400, "invalid", message)

    def rate_limited(self, retry_after: str) -> web.Response:
        return self._errors(
            429, "throttled", "Request was throttled.", {"Retry-After": retry_after}
        )

    async def handle(self, request: web.Request, body: Any) -> web.Response:
        attributes = body["data"]["attributes"]
        profile = attributes["profile"]["data"]["attributes"]
        email = profile.get("email") or ""
        unique_id = attributes.get("unique_id") or attributes.get("time", "")
        metric = attributes["metric"]["data"]["attributes"]["name"]
        if unique_id in self.faults.reject or "@" not in email:
            self.rejected.append(unique_id)
            return self.invalid("profile email is not valid")
        key = (unique_id, email, metric)
        if key in self.events:
            self.duplicates += 1  # Klaviyo keeps only the first
        else:
            self.events[key] = {
                "properties": attributes["properties"],
                "time": attributes.get("time"),
            }
            self.accepted(unique_id)
        return web.Response(status=202)

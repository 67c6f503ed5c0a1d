"""HubSpot CRM contacts batch upsert (upsert by email)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from dev.emulators.base import Emulator

__all__ = ["HubSpotEmulator"]


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class HubSpotEmulator(Emulator):
    name = "hubspot"
    spec_file = "hubspot-crm-contacts-v3.json"
    route = "/crm/v3/objects/contacts/batch/upsert"
    documented_limits = ((100, 10.0),)  # per private app

    def __init__(self, token: str = "hubspot-test-token") -> None:
        super().__init__()
        self.token = token
        self.contacts: dict[str, dict[str, str]] = {}
        self.upserts = 0

    def state(self) -> dict[str, Any]:
        return {**super().state(), "contacts": self.contacts, "upserts": self.upserts}

    def authorised(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.token}"

    def invalid(self, message: str) -> web.Response:
        return web.json_response(
            {"status": "error", "message": message, "category": "VALIDATION_ERROR",
             "correlationId": str(uuid.uuid4())}, status=400,
        )  # fmt: skip

    def rate_limited(self, retry_after: str) -> web.Response:
        return web.json_response(
            {"status": "error", "message": "You have reached your secondly limit.",
             "errorType": "RATE_LIMIT", "correlationId": str(uuid.uuid4()),
             "policyName": "SECONDLY", "category": "RATE_LIMITS"},
            status=429, headers={"Retry-After": retry_after},
        )  # fmt: skip

    async def handle(self, request: web.Request, body: Any) -> web.Response:
        inputs = body["inputs"]
        if len(inputs) > 100 or len({i["id"] for i in inputs}) != len(inputs):
            return self.invalid("at most 100 inputs, each id once")
        started = _now()
        results, errors = [], []
        for item in inputs:
            email = item["id"]
            bad = [k for k, v in item["properties"].items() if not isinstance(v, str)]
            if email in self.faults.reject or "@" not in email or bad:
                self.rejected.append(email)
                errors.append({
                    "status": "error", "category": "VALIDATION_ERROR",
                    "message": f"Property values were not valid for {email}",
                    "context": {"ids": [email]}, "errors": [], "links": {},
                })  # fmt: skip
                continue
            new = email not in self.contacts
            self.contacts.setdefault(email, {}).update(item["properties"])
            self.upserts += 1
            self.accepted(email)
            results.append({
                "id": str(abs(hash(email)) % 10**9), "properties": self.contacts[email],
                "createdAt": started, "updatedAt": started, "archived": False, "new": new,
            })  # fmt: skip
        payload = {"status": "COMPLETE", "results": results, "startedAt": started,
                   "completedAt": _now()}  # fmt: skip
        if errors:
            payload |= {"errors": errors, "numErrors": len(errors)}
            return web.json_response(payload, status=207)
        return web.json_response(payload, status=200)

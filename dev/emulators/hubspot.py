"""HubSpot CRM contacts batch upsert (upsert by email)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from dev.emulators.base import Emulator
from schemas.attribution import AdvocateTotals, AttributionEvent
from sinks.hubspot import ORDER_KINDS, advocate_properties, friend_properties

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

    def env(self, url: str) -> dict[str, str]:
        return {"HUBSPOT_API_URL": url, "HUBSPOT_ACCESS_TOKEN": self.token}

    def held(self) -> dict[str, dict[str, str]]:
        return self.contacts

    @staticmethod
    def expect(emitted: list[AttributionEvent], advocates: list[AdvocateTotals]) -> dict:
        """The contacts once everything is delivered: friends' and advocates' properties."""
        contacts: dict[str, dict[str, str]] = {}
        for event in emitted:
            mapped = event.kind == "friend_signed_up" or event.kind in ORDER_KINDS
            if mapped and event.friend and event.friend.email:
                contacts.setdefault(event.friend.email, {}).update(friend_properties(event))
        for totals in advocates:
            if totals.advocate.email:
                contacts.setdefault(totals.advocate.email, {}).update(advocate_properties(totals))
        return contacts

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

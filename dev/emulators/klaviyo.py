"""Klaviyo Create Event and Bulk Create Events (only the first event per unique_id, profile
and metric counts; a bulk job that repeats one within itself is refused whole)."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from dev.emulators.base import Emulator, Endpoint, load_spec
from schemas.attribution import AdvocateTotals, AttributionEvent
from sinks.klaviyo import METRICS, profile_of

__all__ = ["KlaviyoEmulator"]

JSON_API = "application/vnd.api+json"


class KlaviyoEmulator(Emulator):
    name = "klaviyo"
    spec_file = "klaviyo-create-event.json"
    route = "/api/events"
    documented_limits = ((350, 1.0), (3500, 60.0))  # burst and steady

    bulk_documented_limits = ((10, 1.0), (150, 60.0))
    MAX_BULK_EVENTS = 1000
    MAX_BULK_BYTES = 5 * 1000**2
    MAX_STRING = 100 * 1024

    def __init__(self, api_key: str = "klaviyo-test-key") -> None:
        super().__init__()
        self.api_key = api_key
        self.events: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.bulk = Endpoint(
            "/api/event-bulk-create-jobs", load_spec("klaviyo-bulk-create-events.json"),
            self.handle_bulk, self.bulk_documented_limits,
        )  # fmt: skip
        self.endpoints.append(self.bulk)
        self.bulk_jobs = 0

    def env(self, url: str) -> dict[str, str]:
        return {"KLAVIYO_API_URL": url, "KLAVIYO_API_KEY": self.api_key}

    def held(self) -> set[tuple[str, str, str]]:
        return set(self.events)

    @staticmethod
    def expect(emitted: list[AttributionEvent], advocates: list[AdvocateTotals]) -> set:
        """(unique_id, profile email, metric): the welcome and the advocate's reward."""
        return {
            (event.attribution_event_id, person.email, METRICS[event.kind])
            for event in emitted
            if event.kind in METRICS and (person := profile_of(event)) and person.email
        }

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
        if problem := self._refused(profile, attributes):
            return self.invalid(problem)
        self._store(profile, attributes)
        return web.Response(status=202)

    async def handle_bulk(self, request: web.Request, body: Any) -> web.Response:
        """All or nothing: one bad event, or one ``unique_id`` given twice for a profile and
        metric, and "no events will be processed"."""
        if (request.content_length or 0) > self.MAX_BULK_BYTES:
            return self.invalid("payload larger than 5 MB")
        entries = body["data"]["attributes"]["events-bulk-create"]["data"]
        pairs = [
            (entry["attributes"]["profile"]["data"]["attributes"], event["attributes"])
            for entry in entries
            for event in entry["attributes"]["events"]["data"]
        ]
        if len(pairs) > self.MAX_BULK_EVENTS:
            return self.invalid("at most 1,000 events per request")
        keys = [self._key(profile, attributes) for profile, attributes in pairs]
        if len(set(keys)) != len(keys):
            return self.invalid("duplicate unique_id for a profile and metric in one request")
        for profile, attributes in pairs:
            if problem := self._refused(profile, attributes):
                return self.invalid(problem)
        for profile, attributes in pairs:
            self._store(profile, attributes)
        self.bulk_jobs += 1
        return web.Response(status=202)

    @staticmethod
    def _key(profile: dict, attributes: dict) -> tuple[str, str, str]:
        unique_id = attributes.get("unique_id") or attributes.get("time", "")
        metric = attributes["metric"]["data"]["attributes"]["name"]
        return unique_id, profile.get("email") or "", metric

    def _refused(self, profile: dict, attributes: dict) -> str | None:
        unique_id, email, _ = self._key(profile, attributes)
        if unique_id in self.faults.reject or "@" not in email:
            self.rejected.append(unique_id)
            return "profile email is not valid"
        strings = [*profile.values(), *attributes["properties"].values()]
        if any(isinstance(v, str) and len(v.encode()) > self.MAX_STRING for v in strings):
            return "a string is larger than 100 KB"
        return None

    def _store(self, profile: dict, attributes: dict) -> None:
        key = self._key(profile, attributes)
        if key in self.events:
            self.duplicates += 1  # Klaviyo keeps only the first
            return
        self.events[key] = {"properties": attributes["properties"], "time": attributes.get("time")}
        self.accepted(key[0])

"""Mixpanel /import?strict=1 (dedup by $insert_id; invalid records listed, the rest kept)."""

from __future__ import annotations

import base64
import re
from typing import Any

from aiohttp import web

from dev.emulators.base import Emulator
from schemas.attribution import AdvocateTotals, AttributionEvent
from sinks.mixpanel import insert_id

__all__ = ["MixpanelEmulator"]

INSERT_ID = re.compile(r"^[A-Za-z0-9-]{1,36}$")


class MixpanelEmulator(Emulator):
    name = "mixpanel"
    spec_file = "mixpanel-ingestion.openapi.yaml"
    route = "/import"

    def __init__(self, token: str = "mixpanel-test-token", project_id: str = "4242") -> None:
        super().__init__()
        self.token = token
        self.project_id = project_id
        self.events: dict[str, dict[str, Any]] = {}

    def env(self, url: str) -> dict[str, str]:
        return {
            "MIXPANEL_API_URL": url,
            "MIXPANEL_PROJECT_TOKEN": self.token,
            "MIXPANEL_PROJECT_ID": self.project_id,
        }

    def held(self) -> set[str]:
        return set(self.events)

    @staticmethod
    def expect(emitted: list[AttributionEvent], advocates: list[AdvocateTotals]) -> set[str]:
        """Every attribution, by ``$insert_id``."""
        return {insert_id(event) for event in emitted}

    def state(self) -> dict[str, Any]:
        return {**super().state(), "events": list(self.events.values())}

    def authorised(self, request: web.Request) -> bool:
        expected = base64.b64encode(f"{self.token}:".encode()).decode()
        return (
            request.headers.get("Authorization") == f"Basic {expected}"
            and request.query.get("project_id") == self.project_id
        )

    def invalid(self, message: str) -> web.Response:
        return web.json_response(
            {"code": 400, "error": message, "status": "Bad Request"}, status=400
        )

    async def handle(self, request: web.Request, body: Any) -> web.Response:
        if len(body) > 2000 or (request.content_length or 0) > 2 * 1024**2:
            return web.json_response({"code": 413, "error": "too large"}, status=413)
        failed, imported = [], 0
        for index, event in enumerate(body):
            props = event["properties"]
            insert_id = str(props.get("$insert_id", ""))
            problem = None
            if not INSERT_ID.match(insert_id):
                problem = ("properties.$insert_id", "must be 1-36 chars of [A-Za-z0-9-]")
            elif insert_id in self.faults.reject:
                problem = ("properties", "rejected by the emulator's fault settings")
            if problem:
                self.rejected.append(insert_id)
                failed.append({"index": index, "insert_id": insert_id, "field": problem[0],
                               "message": problem[1]})  # fmt: skip
                continue
            if insert_id in self.events:
                self.duplicates += 1
            else:
                self.events[insert_id] = event
                self.accepted(insert_id)
            imported += 1
        if failed:
            return web.json_response(
                {"code": 400, "error": "some data points in the request failed validation",
                 "status": "Bad Request", "num_records_imported": imported,
                 "failed_records": failed}, status=400,
            )  # fmt: skip
        return web.json_response({"code": 200, "num_records_imported": imported, "status": "OK"})

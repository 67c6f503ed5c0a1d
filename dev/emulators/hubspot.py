"""HubSpot CRM: contacts and deals batch upsert, deal → contact associations (v4) and
property creation, validated against the project's own spec (``hubspot-refstream.yaml``).

Like HubSpot, it refuses an upsert that sets a property that does not exist (the sink must
create its custom properties first), an upsert of deals by a property that is not unique,
and it counts requests per app: every endpoint draws on one rate limit.
"""

from __future__ import annotations

import bisect
import itertools
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from dev.emulators.base import Emulator, Endpoint
from schemas.attribution import AdvocateTotals, AttributionEvent
from sinks.hubspot import (
    ASSOCIATIONS_PATH,
    DEAL_ID_PROPERTY,
    DEALS_PATH,
    ORDER_KINDS,
    PATH,
    advocate_properties,
    deal_properties,
    friend_properties,
    is_deal,
)

__all__ = ["HubSpotEmulator"]

# HubSpot's own properties that the sink sets (the accounts have many more).
DEFAULT_PROPERTIES = {
    "contacts": {"email", "firstname", "lastname", "lifecyclestage"},
    "deals": {"dealname", "amount", "deal_currency_code", "dealstage", "pipeline", "closedate"},
}


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _error(message: str, ids: list[str], key: str = "ids") -> dict:
    return {"status": "error", "category": "VALIDATION_ERROR", "message": message,
            "context": {key: ids}}  # fmt: skip


class HubSpotEmulator(Emulator):
    name = "hubspot"
    spec_file = "hubspot-refstream.yaml"
    route = PATH
    documented_limits = ((100, 10.0),)  # per private app, whichever endpoint
    documented_daily_limit = 250_000  # Free and Starter; Professional 625,000

    def __init__(self, token: str = "hubspot-test-token") -> None:
        super().__init__()
        self.token = token
        self.contacts: dict[str, dict[str, str]] = {}
        self.contact_ids: dict[str, str] = {}
        self.deals: dict[str, dict[str, str]] = {}
        """By ``refstream_order_id``."""
        self.deal_ids: dict[str, str] = {}
        self.associations: set[tuple[str, str]] = set()
        """(deal id, contact id)."""
        self.properties: dict[str, dict[str, dict]] = {"contacts": {}, "deals": {}}
        self.refuse_deal_batches_with: set[str] = set()
        """Order ids whose deal makes HubSpot refuse the whole deals request (400)."""
        self.upserts = 0
        """Contact inputs applied (``deal_upserts``: deal inputs)."""
        self.deal_upserts = 0
        self.daily_limit: int | None = None
        """Requests the account may make today (None: not enforced); a test's new day sets
        ``daily_used`` back to 0. Requests refused as unauthenticated or rate limited, and
        the faults' 5xx, do not count."""
        self.daily_used = 0
        self.over_daily = 0
        self._ids = itertools.count(1001)
        arrivals = self.endpoints[0].arrivals  # one app, one count of requests
        for route, handle in (
            (DEALS_PATH, self.handle_deals),
            (ASSOCIATIONS_PATH, self.handle_associations),
            ("/crm/v3/properties/{object_type}", self.handle_property),
        ):
            self.endpoints.append(
                Endpoint(route, self.openapi, handle, self.documented_limits, arrivals=arrivals)
            )

    @property
    def limits(self) -> tuple[tuple[int, float], ...]:
        return self.endpoints[0].limits

    @limits.setter
    def limits(self, value: tuple[tuple[int, float], ...]) -> None:
        for endpoint in self.endpoints:
            endpoint.limits = value

    def enforce_documented_limits(self) -> None:
        super().enforce_documented_limits()
        self.daily_limit = self.documented_daily_limit

    async def _answer(self, endpoint: Endpoint, request: web.Request, raw: bytes) -> web.Response:
        """HubSpot's answer, with its daily limit and the rate-limit headers every answer
        carries."""
        daily = self.daily_limit
        if daily is not None and self.daily_used >= daily and self.authorised(request):
            self.over_daily += 1
            response = self.rate_limited("", policy="DAILY")
        else:
            response = await super()._answer(endpoint, request, raw)
            if response.status < 500 and response.status not in (401, 429):
                self.daily_used += 1
        burst, seconds = (self.limits or self.documented_limits)[0]
        arrivals = self.endpoints[0].arrivals  # counted only while the limits are enforced
        recent = len(arrivals) - bisect.bisect_right(arrivals, time.monotonic() - seconds)
        daily = daily if daily is not None else self.documented_daily_limit
        response.headers.update({
            "X-HubSpot-RateLimit-Max": str(burst),
            "X-HubSpot-RateLimit-Remaining": str(max(0, burst - recent)),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(seconds * 1000)),
            "X-HubSpot-RateLimit-Daily": str(daily),
            "X-HubSpot-RateLimit-Daily-Remaining": str(max(0, daily - self.daily_used)),
        })  # fmt: skip
        return response

    def env(self, url: str) -> dict[str, str]:
        return {"HUBSPOT_API_URL": url, "HUBSPOT_ACCESS_TOKEN": self.token}

    def held(self) -> dict[str, Any]:
        """Contacts by email, deals by order id, and each deal's contacts' emails."""
        emails = {contact_id: email for email, contact_id in self.contact_ids.items()}
        orders = {deal_id: order_id for order_id, deal_id in self.deal_ids.items()}
        associated: dict[str, list[str]] = {}
        for deal_id, contact_id in sorted(self.associations):
            associated.setdefault(orders[deal_id], []).append(emails[contact_id])
        return {"contacts": self.contacts, "deals": self.deals, "associations": associated}

    @staticmethod
    def expect(emitted: list[AttributionEvent], advocates: list[AdvocateTotals]) -> dict:
        """Friends' and advocates' contacts; a deal per attributed order, net of its
        refunds, associated with the friend's contact."""
        contacts: dict[str, dict[str, str]] = {}
        deals: dict[str, dict[str, str]] = {}
        associations: dict[str, list[str]] = {}
        for event in emitted:
            mapped = event.kind == "friend_signed_up" or event.kind in ORDER_KINDS
            if not (mapped and event.friend and event.friend.email):
                continue
            contacts.setdefault(event.friend.email, {}).update(friend_properties(event))
            if is_deal(event):
                order_id = event.order.order_id
                deal = deals.setdefault(order_id, {DEAL_ID_PROPERTY: order_id})
                deal.update(deal_properties(event))
                associations[order_id] = [event.friend.email]
        for totals in advocates:
            if totals.advocate.email:
                contacts.setdefault(totals.advocate.email, {}).update(advocate_properties(totals))
        return {"contacts": contacts, "deals": deals, "associations": associations}

    @staticmethod
    def count(held: dict[str, Any]) -> int:
        return len(held["contacts"]) + len(held["deals"])

    @staticmethod
    def nothing() -> dict[str, Any]:
        """What an account holds before any delivery."""
        return {"contacts": {}, "deals": {}, "associations": {}}

    def state(self) -> dict[str, Any]:
        return {**super().state(), "contacts": self.contacts, "deals": self.deals,
                "upserts": self.upserts}  # fmt: skip

    def authorised(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.token}"

    def invalid(self, message: str) -> web.Response:
        return web.json_response(
            {"status": "error", "message": message, "category": "VALIDATION_ERROR",
             "correlationId": str(uuid.uuid4())}, status=400,
        )  # fmt: skip

    def rate_limited(self, retry_after: str, policy: str = "TEN_SECONDLY_ROLLING") -> web.Response:
        """A 429 of the burst limit, or (``DAILY``, no ``Retry-After``) of the daily one."""
        which = "daily" if policy == "DAILY" else "secondly"
        return web.json_response(
            {"status": "error", "message": f"You have reached your {which} limit.",
             "errorType": "RATE_LIMIT", "correlationId": str(uuid.uuid4()),
             "policyName": policy, "category": "RATE_LIMITS"},
            status=429, headers={"Retry-After": retry_after} if retry_after else None,
        )  # fmt: skip

    def _refused_batch(self, object_type: str, inputs: list[dict]) -> str | None:
        """Why HubSpot refuses a whole upsert batch: too many inputs, an id twice, or a
        property the account does not have."""
        if len(inputs) > 100 or len({i["id"] for i in inputs}) != len(inputs):
            return "at most 100 inputs, each id once"
        known = DEFAULT_PROPERTIES[object_type] | set(self.properties[object_type])
        if unknown := sorted({name for i in inputs for name in i["properties"]} - known):
            return f"Property values were not valid: {unknown} do not exist"
        return None

    def _batch(
        self, results: list[dict], errors: list[dict], started: str, ok: int = 200
    ) -> web.Response:
        """A batch answer: ``ok`` when every input applied, else 207 with the errors."""
        payload = {"status": "COMPLETE", "results": results, "startedAt": started,
                   "completedAt": _now()}  # fmt: skip
        if errors:
            payload |= {"errors": errors, "numErrors": len(errors)}
            return web.json_response(payload, status=207)
        return web.json_response(payload, status=ok)

    def _result(self, object_id: str, properties: dict, started: str, new: bool) -> dict:
        return {"id": object_id, "properties": properties, "createdAt": started,
                "updatedAt": started, "archived": False, "new": new}  # fmt: skip

    async def handle(self, request: web.Request, body: Any) -> web.Response:
        inputs = body["inputs"]
        if problem := self._refused_batch("contacts", inputs):
            return self.invalid(problem)
        started = _now()
        results, errors = [], []
        for item in inputs:
            email = item["id"]
            if email in self.faults.reject or "@" not in email:
                self.rejected.append(email)
                errors.append(_error(f"Property values were not valid for {email}", [email]))
                continue
            new = email not in self.contacts
            self.contacts.setdefault(email, {}).update(item["properties"])
            contact_id = self.contact_ids.setdefault(email, str(next(self._ids)))
            self.upserts += 1
            self.accepted(email)
            properties = {"email": email, **self.contacts[email]}
            results.append(self._result(contact_id, properties, started, new))
        return self._batch(results, errors, started)

    async def handle_deals(self, request: web.Request, body: Any) -> web.Response:
        inputs = body["inputs"]
        unique = {n for n, p in self.properties["deals"].items() if p.get("hasUniqueValue")}
        if any(i["idProperty"] not in unique for i in inputs):
            return self.invalid("idProperty must be a property with unique values")
        if problem := self._refused_batch("deals", inputs):
            return self.invalid(problem)
        if refused := sorted(self.refuse_deal_batches_with & {i["id"] for i in inputs}):
            return self.invalid(f"Property values were not valid for deals {refused}")
        started = _now()
        results, errors = [], []
        for item in inputs:
            order_id = item["id"]
            if order_id in self.faults.reject:
                self.rejected.append(order_id)
                errors.append(_error(f"Property values were not valid for deal {order_id}",
                                     [order_id]))  # fmt: skip
                continue
            new = order_id not in self.deals
            deal = self.deals.setdefault(order_id, {DEAL_ID_PROPERTY: order_id})
            deal.update(item["properties"])
            deal_id = self.deal_ids.setdefault(order_id, str(next(self._ids)))
            self.deal_upserts += 1
            self.accepted(order_id)
            results.append(self._result(deal_id, dict(deal), started, new))
        return self._batch(results, errors, started)

    async def handle_associations(self, request: web.Request, body: Any) -> web.Response:
        inputs = body["inputs"]
        if len(inputs) > 100:
            return self.invalid("at most 100 inputs")
        deal_ids, contact_ids = set(self.deal_ids.values()), set(self.contact_ids.values())
        started = _now()
        results, errors = [], []
        for item in inputs:
            deal, contact = item["from"]["id"], item["to"]["id"]
            types = {(t["associationCategory"], t["associationTypeId"]) for t in item["types"]}
            if types != {("HUBSPOT_DEFINED", 3)}:
                return self.invalid("deal to contact is HUBSPOT_DEFINED type 3")
            if deal not in deal_ids or contact not in contact_ids:
                errors.append(_error(f"no such deal {deal} or contact {contact}", [deal],
                                     key="fromObjectId"))  # fmt: skip
                continue
            self.associations.add((deal, contact))
            results.append({"fromObjectId": deal, "toObjectId": contact})
        return self._batch(results, errors, started, ok=201)

    async def handle_property(self, request: web.Request, body: Any) -> web.Response:
        defined = self.properties[request.match_info["object_type"]]
        if body["name"] in defined:
            return web.json_response(
                {"status": "error", "category": "OBJECT_ALREADY_EXISTS",
                 "message": f"A property named '{body['name']}' already exists.",
                 "correlationId": str(uuid.uuid4())}, status=409,
            )  # fmt: skip
        defined[body["name"]] = body
        return web.json_response(body, status=201)

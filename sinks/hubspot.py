"""CRM: HubSpot contacts batch upsert by email (sinks.md, vendor mapping), and a deal per
attributed order, upserted by its ``refstream_order_id`` and associated with the friend's
contact (hubspot-facts.md).

One ``write`` makes three kinds of requests, in this order: the contacts' upserts, the
deals' upserts and the deal → contact associations, each with the ids the previous answers
returned (no search calls); the calls of one kind go out at once. Every one of them is an
upsert or idempotent, so a retried or redelivered batch repeats them harmlessly. The custom
properties are created by the first ``write`` (409: it exists), so that too goes through the
delivery layer's retries and limits.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Coroutine, Iterable
from dataclasses import replace
from typing import Any, TypeVar

import orjson
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.attribution import AdvocateTotals, AttributionEvent, AttributionKind
from schemas.events import decimal_text
from sinks.base import Sink, WriteResult
from sinks.batch import Batch, Item
from sinks.delivery.http import check_status, translate_transport_errors
from sinks.delivery.policy import DeliveryPolicy
from sinks.errors import PermanentError, RateLimited
from streams.metrics import SINK_DAILY_REMAINING

T = TypeVar("T")

__all__ = ["HUBSPOT_POLICY", "HubSpotSettings", "HubSpotSink", "deal_properties", "is_deal"]

# At most 100 inputs per batch call. HubSpot: 100 requests per 10 s (private apps, Free and
# Starter tiers; HUBSPOT_RATE_LIMIT_PER_10S for others). No margin is needed: the limiter counts a
# request until a full period after its answer, later than HubSpot can have counted it.
# A 0.5 s linger fills batches enough that a steady stream stays under the limit instead of
# queueing at it (100 events/s: attribution -> HubSpot p99 1.37 s with 0.2 s, 0.55 s).
# A write takes up to 400 contacts, in calls of 100: its deals and their associations then
# go in calls of up to 100 deals, not one pair per 100 contacts (a thick stream's writes
# were 3 requests per 100 contacts, at the Professional tier's limit at 1,000 events/s).
# Eight requests at once: a HubSpot batch call answers in a few hundred ms, and four at a
# time cannot spend the Professional tier (at 0.3 s per call, 1,000 events/s: attribution
# → HubSpot p50 5.3 s, p99 10.8 s with four; 1.4 s and 2.5 s with eight).
CALL_INPUTS = 100
HUBSPOT_POLICY = DeliveryPolicy(
    batch_size=4 * CALL_INPUTS, linger=0.5, limits=((100, 10.0),), max_in_flight=8
)
PATH = "/crm/v3/objects/contacts/batch/upsert"
DEALS_PATH = "/crm/v3/objects/deals/batch/upsert"
ASSOCIATIONS_PATH = "/crm/v4/associations/deals/contacts/batch/create"
PROPERTIES_PATH = "/crm/v3/properties/{object_type}"
DAILY_REMAINING_HEADER = "X-HubSpot-RateLimit-Daily-Remaining"
DAILY_RETRY_SECONDS = 30.0
"""How long delivery pauses when HubSpot says the account's daily limit is spent (a 429 with
``policyName: DAILY``, which resets at midnight in the account's time zone), instead of the
short backoff of a burst's 429: each waiting write asks again after each pause."""
DEAL_TO_CONTACT = [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 3}]
DEAL_ID_PROPERTY = "refstream_order_id"
K = AttributionKind
ORDER_KINDS = {K.REFERRAL_CONVERTED, K.ORDER_ATTRIBUTED, K.ORDER_REFUNDED}
DEAL_KINDS = ORDER_KINDS  # attributed orders make deals; refunds update them

# The custom properties the sink writes: (object type, name, label, group, unique).
CONTACT_PROPERTIES = (
    ("lead_source", "Lead source"), ("referral_id", "Referral ID"),
    ("referred_by", "Referred by"), ("referral_orders", "Referral orders"),
    ("referral_revenue", "Referral revenue"),
    ("referral_revenue_generated", "Referral revenue generated"),
)  # fmt: skip
DEAL_PROPERTIES = (
    (DEAL_ID_PROPERTY, "refstream order ID"), ("referral_id", "Referral ID"),
    ("referral_advocate_id", "Referral advocate ID"),
    ("referral_advocate_email", "Referral advocate email"),
)  # fmt: skip


def property_definitions(deals: bool) -> list[tuple[str, dict]]:
    """``(object type, body)`` of each custom property to create (hubspot-facts.md)."""
    definitions = [
        ("contacts", {"name": name, "label": label, "type": "string", "fieldType": "text",
                      "groupName": "contactinformation"})
        for name, label in CONTACT_PROPERTIES
    ]  # fmt: skip
    if deals:
        for name, label in DEAL_PROPERTIES:
            body = {"name": name, "label": label, "type": "string", "fieldType": "text",
                    "groupName": "dealinformation"}  # fmt: skip
            if name == DEAL_ID_PROPERTY:
                body["hasUniqueValue"] = True
            definitions.append(("deals", body))
    return definitions


def friend_properties(event: AttributionEvent) -> dict[str, str]:
    """HubSpot property values are strings; absent values are left out."""
    friend = event.friend
    if event.kind == K.FRIEND_SIGNED_UP:
        props = {
            "lead_source": "Referral",
            "referral_id": event.referral_id,
            "referred_by": event.advocate.email if event.advocate else None,
            "firstname": friend.first_name if friend else None,
            "lastname": friend.last_name if friend else None,
        }
    else:
        revenue = "; ".join(f"{amount} {cur}" for cur, amount in event.totals.revenue.items())
        props = {"referral_orders": str(event.totals.orders), "referral_revenue": revenue}
        if event.kind == K.REFERRAL_CONVERTED:
            props["lifecyclestage"] = "customer"
    return {k: v for k, v in props.items() if v is not None}


def advocate_properties(totals: AdvocateTotals) -> dict[str, str]:
    revenue = totals.referral_revenue_generated
    return {"referral_revenue_generated": "; ".join(f"{v} {c}" for c, v in revenue.items())}


def is_deal(event: AttributionEvent | AdvocateTotals) -> bool:
    """An attributed order (a deal) or a refund of one (an update of its deal). A refund
    written before refunds carried ``net_amount`` updates the friend's contact only."""
    if not isinstance(event, AttributionEvent) or event.kind not in DEAL_KINDS:
        return False
    order = event.order
    return order is not None and (event.kind != K.ORDER_REFUNDED or order.net_amount is not None)


def deal_properties(event: AttributionEvent) -> dict[str, str]:
    """The deal of an attributed order, or what a refund changes on it: the amount net of
    every refund so far, and ``closedlost`` once nothing is left."""
    order = event.order
    if event.kind == K.ORDER_REFUNDED:
        stage = "closedlost" if order.net_amount == 0 else "closedwon"
        return {"amount": decimal_text(order.net_amount), "dealstage": stage}
    advocate = event.advocate
    props = {
        "dealname": f"Referral order {order.order_id}",
        "amount": decimal_text(order.amount),
        "deal_currency_code": order.currency,
        "dealstage": "closedwon",
        "pipeline": "default",
        "closedate": event.model_dump(mode="json", include={"occurred_at"})["occurred_at"],
        "referral_id": event.referral_id,
        "referral_advocate_id": advocate.id if advocate else None,
        "referral_advocate_email": advocate.email if advocate else None,
    }
    return {k: v for k, v in props.items() if v is not None}


def contact(event: AttributionEvent | AdvocateTotals) -> tuple[str | None, dict[str, str]]:
    """The contact an event updates (its email) and the properties it sets."""
    if isinstance(event, AdvocateTotals):
        return event.advocate.email, advocate_properties(event)
    return (event.friend.email if event.friend else None), friend_properties(event)


class HubSpotSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HUBSPOT_", frozen=True)

    access_token: SecretStr
    api_url: str = "https://api.hubapi.com"
    rate_limit_per_10s: int = Field(100, ge=1)
    """The account's tier (hubspot-facts.md): 100 Free/Starter, 190 Professional/Enterprise,
    250 with the limit increase; the workers share it."""
    deals: bool = True
    """A deal per attributed order (``HUBSPOT_DEALS=false`` for accounts without deals)."""


def _policy(text: str) -> str | None:
    """The ``policyName`` of a 429's body: ``DAILY``, or a burst limit's name."""
    try:
        body = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return body.get("policyName") if isinstance(body, dict) else None


def _error_message(error: dict) -> str:
    return f"{error.get('category', 'ERROR')}: {error.get('message', '')}"[:300]


def _error_status(error: dict) -> int:
    return int(error["status"]) if str(error.get("status")).isdigit() else 400


class _Rejections:
    """The items HubSpot refused, each once (a record can fail as a contact and a deal)."""

    def __init__(self) -> None:
        self.by_item: dict[int, tuple[Item, PermanentError]] = {}

    def add(self, items: list[Item], error: dict) -> None:
        for item in items:
            self.by_item.setdefault(
                id(item),
                (item, PermanentError(_error_message(error), status=_error_status(error),
                                      reason="rejected")),
            )  # fmt: skip

    def refuse(self, items: list[Item], message: str) -> None:
        """Refused here, not by HubSpot (no HTTP status)."""
        for item in items:
            self.by_item.setdefault(id(item), (item, PermanentError(message, reason="rejected")))

    def __contains__(self, item: Item) -> bool:
        return id(item) in self.by_item

    def errors_of(self, text: str, owners: dict[str, list[Item]], context_key: str) -> None:
        for error in orjson.loads(text).get("errors", []):
            for key in (error.get("context") or {}).get(context_key, []):
                self.add(owners.get(key, []), error)


class HubSpotSink(Sink):
    name = "crm"
    Settings = HubSpotSettings
    emulator = "dev.emulators.hubspot:HubSpotEmulator"
    consumes_advocate_totals = True

    def __init__(self, settings: HubSpotSettings) -> None:
        super().__init__(settings)
        base = settings.api_url.rstrip("/")
        self.url = base + PATH
        self.base = base
        self.deals = settings.deals
        self.policy = replace(HUBSPOT_POLICY, limits=((settings.rate_limit_per_10s, 10.0),))
        self.properties_ready = False
        self._headers = {
            "Authorization": f"Bearer {settings.access_token.get_secret_value()}",
            "Content-Type": "application/json",
        }

    def accepts(self, item: Item) -> bool:
        event = item.event
        if isinstance(event, AdvocateTotals):
            return event.advocate.email is not None
        is_mapped = event.kind == K.FRIEND_SIGNED_UP or event.kind in ORDER_KINDS
        return is_mapped and event.friend is not None and event.friend.email is not None

    def ordering_key(self, item: Item) -> str | None:
        return contact(item.event)[0]  # a friend's deals go with their contact

    def encode(self, item: Item) -> bytes:
        email, properties = contact(item.event)
        if self.deals and is_deal(item.event):
            deal_properties(item.event)  # a record that cannot be a deal: unmappable, not a stall
        return orjson.dumps({"idProperty": "email", "id": email, "properties": properties})

    def requests_per_write(self, batch: Batch) -> int:
        contacts = math.ceil(len({contact(item.event)[0] for item in batch}) / CALL_INPUTS)
        if not self.deals:
            return contacts
        orders = {item.event.order.order_id for item in batch if is_deal(item.event)}
        return contacts + 2 * math.ceil(len(orders) / CALL_INPUTS)

    def setup_requests(self) -> int:
        return 0 if self.properties_ready else len(property_definitions(self.deals))

    async def _post(self, path: str, body: dict, exists_ok: bool = False) -> tuple[int, str]:
        with translate_transport_errors():
            async with self.session.post(
                self.base + path, data=orjson.dumps(body), headers=self._headers
            ) as response:
                text = await response.text()
        remaining = response.headers.get(DAILY_REMAINING_HEADER, "")
        if remaining.isdigit():
            SINK_DAILY_REMAINING.labels(self.name).set(int(remaining))
        if response.status == 429 and _policy(text) == "DAILY":
            raise RateLimited(
                "429: the account's daily request limit is spent",
                retry_after=DAILY_RETRY_SECONDS, reason="daily_limit",
            )  # fmt: skip
        if not (exists_ok and response.status == 409):
            check_status(response.status, response.headers, text)
        return response.status, text

    async def ensure_properties(self) -> None:
        """Create the custom properties; 409 means one exists already."""
        for object_type, body in property_definitions(self.deals):
            await self._post(PROPERTIES_PATH.format(object_type=object_type), body, exists_ok=True)
        self.properties_ready = True

    async def write(self, batch: Batch) -> WriteResult:
        if not self.properties_ready:
            await self.ensure_properties()
        # One input per email per call (HubSpot refuses duplicate ids); later events win.
        inputs: dict[str, dict[str, str]] = {}
        owners: dict[str, list[Item]] = {}
        for item in batch:
            email, properties = contact(item.event)
            inputs.setdefault(email, {}).update(properties)
            owners.setdefault(email, []).append(item)
        emails = list(inputs)
        answers = await _at_once(
            self._post(PATH, {"inputs": [
                {"idProperty": "email", "id": email, "properties": inputs[email]}
                for email in emails[start : start + CALL_INPUTS]
            ]})
            for start in range(0, len(emails), CALL_INPUTS)
        )  # fmt: skip
        rejected = _Rejections()
        contact_ids: dict[str, str] = {}
        status = 200
        for answer, text in answers:
            status = max(status, answer)
            if answer == 207:  # partial: errors[] name the inputs that failed
                rejected.errors_of(text, owners, "ids")
            for result in orjson.loads(text).get("results", []):
                email = (result.get("properties") or {}).get("email")
                if email:
                    contact_ids[email.lower()] = result["id"]
        if self.deals:
            status = max(status, await self._write_deals(batch, contact_ids, rejected))
        return WriteResult(status=status, rejected=list(rejected.by_item.values()))

    async def _write_deals(
        self, batch: Batch, contact_ids: dict[str, str], rejected: _Rejections
    ) -> int:
        """Upsert the batch's deals, then associate each with its friend's contact."""
        deals: dict[str, dict[str, str]] = {}
        owners: dict[str, list[Item]] = {}
        friend: dict[str, str] = {}
        for item in batch:
            if not is_deal(item.event) or item in rejected:
                continue
            order_id = item.event.order.order_id
            deals.setdefault(order_id, {}).update(deal_properties(item.event))
            owners.setdefault(order_id, []).append(item)
            friend[order_id] = item.event.friend.email
        for order_id in [o for o in deals if friend[o] not in contact_ids]:
            # A deal that cannot be associated would break the loop unseen: dead-letter it.
            rejected.refuse(owners[order_id], "HubSpot returned no id for the friend's contact")
            del deals[order_id]
        order_ids = list(deals)
        chunks = [order_ids[start : start + CALL_INPUTS]
                  for start in range(0, len(order_ids), CALL_INPUTS)]  # fmt: skip
        # Each chunk's associations need its own deals' ids only: the chunks go at once.
        statuses = await _at_once(
            self._write_deal_chunk(
                {o: deals[o] for o in chunk}, {o: contact_ids[friend[o]] for o in chunk},
                owners, rejected,
            )
            for chunk in chunks
        )  # fmt: skip
        return max(statuses, default=200)

    async def _write_deal_chunk(
        self,
        deals: dict[str, dict[str, str]],
        contact_of: dict[str, str],
        owners: dict[str, list[Item]],
        rejected: _Rejections,
    ) -> int:
        """Up to 100 deals' upsert, then their associations with their contacts."""
        body = {
            "inputs": [
                {"idProperty": DEAL_ID_PROPERTY, "id": order_id, "properties": properties}
                for order_id, properties in deals.items()
            ]
        }
        status, text = await self._post(DEALS_PATH, body)
        if status == 207:
            rejected.errors_of(text, owners, "ids")
        deal_ids: dict[str, str] = {}
        for result in orjson.loads(text).get("results", []):
            order_id = (result.get("properties") or {}).get(DEAL_ID_PROPERTY)
            if order_id in contact_of:
                deal_ids[order_id] = result["id"]
        if not deal_ids:
            return status
        body = {
            "inputs": [
                {"from": {"id": deal_id}, "to": {"id": contact_of[order_id]},
                 "types": DEAL_TO_CONTACT}
                for order_id, deal_id in deal_ids.items()
            ]
        }  # fmt: skip
        answer, text = await self._post(ASSOCIATIONS_PATH, body)
        if answer == 207:
            by_deal = {deal_id: owners[order_id] for order_id, deal_id in deal_ids.items()}
            rejected.errors_of(text, by_deal, "fromObjectId")
        return max(status, answer)


async def _at_once(calls: Iterable[Coroutine[Any, Any, T]]) -> list[T]:
    """Await ``calls`` together. The first error cancels the others and is raised as itself:
    the delivery layer tells a retryable one from a refusal by its type."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(call) for call in calls]
    except BaseExceptionGroup as errors:
        raise errors.exceptions[0] from None
    return [task.result() for task in tasks]

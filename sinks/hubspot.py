"""CRM: HubSpot contacts batch upsert by email (sinks.md, vendor mapping)."""

from __future__ import annotations

from dataclasses import replace

import orjson
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.attribution import AdvocateTotals, AttributionEvent, AttributionKind
from sinks.base import Sink, WriteResult
from sinks.batch import Batch, Item
from sinks.delivery.http import check_status, translate_transport_errors
from sinks.delivery.policy import DeliveryPolicy
from sinks.errors import PermanentError

__all__ = ["HUBSPOT_POLICY", "HubSpotSettings", "HubSpotSink"]

# At most 100 inputs per batch call. HubSpot: 100 requests per 10 s (private apps, Free and
# Starter tiers; HUBSPOT_RATE_LIMIT_PER_10S for others). No margin is needed: the limiter counts a
# request until a full period after its answer, later than HubSpot can have counted it.
# A 0.5 s linger fills batches enough that a steady stream stays under the limit instead of
# queueing at it (100 events/s: attribution -> HubSpot p99 1.37 s with 0.2 s, 0.55 s).
HUBSPOT_POLICY = DeliveryPolicy(batch_size=100, linger=0.5, limits=((100, 10.0),), max_in_flight=4)
PATH = "/crm/v3/objects/contacts/batch/upsert"
K = AttributionKind
ORDER_KINDS = {K.REFERRAL_CONVERTED, K.ORDER_ATTRIBUTED, K.ORDER_REFUNDED}


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


class HubSpotSink(Sink):
    name = "crm"
    Settings = HubSpotSettings
    emulator = "dev.emulators.hubspot:HubSpotEmulator"
    consumes_advocate_totals = True

    def __init__(self, settings: HubSpotSettings) -> None:
        super().__init__(settings)
        self.url = settings.api_url.rstrip("/") + PATH
        self.policy = replace(HUBSPOT_POLICY, limits=((settings.rate_limit_per_10s, 10.0),))
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
        return contact(item.event)[0]

    def encode(self, item: Item) -> bytes:
        email, properties = contact(item.event)
        return orjson.dumps({"idProperty": "email", "id": email, "properties": properties})

    async def write(self, batch: Batch) -> WriteResult:
        # One input per email per call (HubSpot refuses duplicate ids); later events win.
        inputs: dict[str, dict[str, str]] = {}
        owners: dict[str, list[Item]] = {}
        for item in batch:
            email, properties = contact(item.event)
            inputs.setdefault(email, {}).update(properties)
            owners.setdefault(email, []).append(item)
        body = {
            "inputs": [
                {"idProperty": "email", "id": email, "properties": props}
                for email, props in inputs.items()
            ]
        }
        with translate_transport_errors():
            async with self.session.post(
                self.url, data=orjson.dumps(body), headers=self._headers
            ) as response:
                text = await response.text()
        check_status(response.status, response.headers, text)
        result = WriteResult(status=response.status)
        if response.status == 207:  # partial: errors[] name the inputs that failed
            for error in orjson.loads(text).get("errors", []):
                message = f"{error.get('category', 'ERROR')}: {error.get('message', '')}"[:300]
                status = (
                    int(error.get("status") or 400) if str(error.get("status")).isdigit() else 400
                )
                for email in (error.get("context") or {}).get("ids", []):
                    for item in owners.get(email, []):
                        result.rejected.append(
                            (item, PermanentError(message, status=status, reason="rejected"))
                        )
        return result

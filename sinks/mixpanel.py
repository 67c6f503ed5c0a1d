"""Analytics: Mixpanel ``/import?strict=1`` with ``$insert_id`` for dedup (sinks.md)."""

from __future__ import annotations

import orjson
from aiohttp import encode_basic_auth
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.attribution import AttributionEvent
from sinks.analytics import event_name, properties
from sinks.base import Sink, WriteResult
from sinks.batch import Batch, Item
from sinks.delivery.http import check_status, translate_transport_errors
from sinks.delivery.policy import DeliveryPolicy
from sinks.errors import PermanentError

__all__ = ["MIXPANEL_POLICY", "MixpanelSettings", "MixpanelSink", "insert_id"]

# At most 2,000 events and 2 MB per call; a 413 splits the batch (shared mechanism).
MIXPANEL_POLICY = DeliveryPolicy(
    batch_size=2000, max_request_bytes=2 * 1024**2, max_item_bytes=1024**2,
    limits=((30, 1.0),), max_in_flight=4,
)  # fmt: skip
PATH = "/import"


def insert_id(event: AttributionEvent) -> str:
    """Mixpanel's dedup key: ≤ 36 chars of ``[A-Za-z0-9-]``; our ids are 32 hex chars."""
    return event.attribution_event_id


def mixpanel_event(event: AttributionEvent) -> dict:
    """No emails or names: analytics gets ids, kinds, amounts as decimal strings.

    ``time`` is seconds since the epoch (its spec): an event before 1970 has none and is
    refused here, so it is dead-lettered as unmappable.
    """
    time = int(event.occurred_at.timestamp())
    if time < 0:
        raise ValueError(f"Mixpanel takes no time before 1970: {event.occurred_at.isoformat()}")
    distinct = (event.friend.id if event.friend and event.friend.id else None) or (
        event.referral_id or event.source_event_id
    )
    return {
        "event": event_name(event),
        "properties": {
            "time": time,
            "distinct_id": distinct,
            "$insert_id": insert_id(event),
            **properties(event),
        },
    }


class MixpanelSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MIXPANEL_", frozen=True)

    project_token: SecretStr
    project_id: str
    """Mixpanel's /import requires ``project_id`` (its OpenAPI spec)."""
    api_url: str = "https://api.mixpanel.com"


class MixpanelSink(Sink):
    name = "analytics"
    Settings = MixpanelSettings
    emulator = "dev.emulators.mixpanel:MixpanelEmulator"
    policy = MIXPANEL_POLICY

    def __init__(self, settings: MixpanelSettings) -> None:
        super().__init__(settings)
        self.url = settings.api_url.rstrip("/") + PATH
        self.params = {"strict": "1", "project_id": settings.project_id}
        self._headers = {
            "Content-Type": "application/json",
            "Authorization": encode_basic_auth(settings.project_token.get_secret_value(), ""),
        }

    def encode(self, item: Item) -> bytes:
        return orjson.dumps(mixpanel_event(item.event))

    async def write(self, batch: Batch) -> WriteResult:
        body = b"[" + b",".join(batch.parts) + b"]"
        with translate_transport_errors():
            async with self.session.post(
                self.url, params=self.params, data=body, headers=self._headers
            ) as response:
                text = await response.text()
        if response.status == 400:
            failed = orjson.loads(text).get("failed_records") if text.startswith("{") else None
            if failed:  # strict mode: the valid records were imported
                result = WriteResult(status=400)
                for record in failed:
                    item = batch.items[int(record["index"])]
                    message = f"{record.get('field')}: {record.get('message')}"[:300]
                    result.rejected.append(
                        (item, PermanentError(message, status=400, reason="failed_record"))
                    )
                return result
        check_status(response.status, response.headers, text)
        return WriteResult(status=response.status)

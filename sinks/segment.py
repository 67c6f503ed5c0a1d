"""CDP: Segment's HTTP tracking API, ``POST /v1/batch``; ``messageId`` = attribution id.

Segment answers 200 and later drops a call it cannot use (no ``userId`` or ``anonymousId``,
a message over 32 KB), so the sink only builds valid ones: every call names a user, and the
delivery layer refuses an oversized record as ``too_large`` before it is sent.
"""

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

__all__ = ["SEGMENT_POLICY", "SegmentSettings", "SegmentSink", "track"]

# 500 KB per request and 32 KB per message (Segment's documented limits); no count limit,
# so the bytes cut the batch (~1,000 records). Segment publishes no request rate limit and
# answers 429 when pressed: 50 requests/s keeps well clear of it.
SEGMENT_POLICY = DeliveryPolicy(
    batch_size=2500, max_request_bytes=500 * 1000, max_item_bytes=32 * 1000,
    limits=((50, 1.0),), max_in_flight=4,
)  # fmt: skip
PATH = "/v1/batch"


def track(event: AttributionEvent) -> dict:
    """A track call: ids, kinds, amounts and currencies; no emails or names."""
    friend_id = event.friend.id if event.friend else None
    who = (
        {"userId": friend_id}
        if friend_id
        else {"anonymousId": event.referral_id or event.source_event_id}
    )
    return {
        "type": "track",
        "event": event_name(event),
        **who,
        "properties": properties(event, amount="revenue"),
        "timestamp": event.model_dump(mode="json")["occurred_at"],
        "messageId": event.attribution_event_id,
    }


class SegmentSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SEGMENT_", frozen=True)

    write_key: SecretStr
    api_url: str = "https://api.segment.io"


class SegmentSink(Sink):
    name = "segment"
    Settings = SegmentSettings
    emulator = "dev.emulators.segment:SegmentEmulator"
    policy = SEGMENT_POLICY

    def __init__(self, settings: SegmentSettings) -> None:
        super().__init__(settings)
        self.url = settings.api_url.rstrip("/") + PATH
        self._headers = {
            "Content-Type": "application/json",
            "Authorization": encode_basic_auth(settings.write_key.get_secret_value(), ""),
        }

    def encode(self, item: Item) -> bytes:
        return orjson.dumps(track(item.event))

    async def write(self, batch: Batch) -> WriteResult:
        body = b'{"batch":[' + b",".join(batch.parts) + b"]}"
        with translate_transport_errors():
            async with self.session.post(self.url, data=body, headers=self._headers) as answer:
                text = await answer.text()
        check_status(answer.status, answer.headers, text)
        return WriteResult(status=answer.status)

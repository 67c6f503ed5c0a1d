"""In-app advocate notifications: a signed generic webhook."""

from __future__ import annotations

import hashlib
import hmac
import time

import orjson
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.attribution import AttributionKind
from sinks.base import Sink, WriteResult
from sinks.batch import Batch, Item
from sinks.delivery.http import check_status, translate_transport_errors
from sinks.delivery.policy import DeliveryPolicy

__all__ = ["WEBHOOK_POLICY", "WebhookSettings", "WebhookSink", "signature"]

WEBHOOK_POLICY = DeliveryPolicy(
    batch_size=50, max_request_bytes=256 * 1024, limits=((20, 1.0),), max_in_flight=2
)
NOTIFY = {AttributionKind.REFERRAL_CONVERTED, AttributionKind.ORDER_ATTRIBUTED}


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 over ``timestamp.body``: the receiver recomputes it to trust the call."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class WebhookSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WEBHOOK_", frozen=True)

    url: str
    secret: SecretStr


class WebhookSink(Sink):
    name = "webhook"
    Settings = WebhookSettings
    emulator = "dev.emulators.webhook:WebhookEmulator"
    policy = WEBHOOK_POLICY

    def accepts(self, item: Item) -> bool:
        return item.event.kind in NOTIFY and item.event.advocate is not None

    def encode(self, item: Item) -> bytes:
        event = item.event
        return orjson.dumps({
            "id": event.attribution_event_id,  # the receiver's idempotency key
            "advocate_id": event.advocate.id,
            "referral_id": event.referral_id,
            "kind": event.kind.value,
            "order_id": event.order.order_id if event.order else None,
        })  # fmt: skip

    async def write(self, batch: Batch) -> WriteResult:
        body = b'{"notifications":[' + b",".join(batch.parts) + b"]}"
        timestamp = str(int(time.time()))
        secret = self.settings.secret.get_secret_value()
        headers = {
            "Content-Type": "application/json",
            "X-Refstream-Timestamp": timestamp,
            "X-Refstream-Signature": signature(secret, timestamp, body),
        }
        with translate_transport_errors():
            async with self.session.post(self.settings.url, data=body, headers=headers) as answer:
                text = await answer.text()
        check_status(answer.status, answer.headers, text)
        return WriteResult(status=answer.status)

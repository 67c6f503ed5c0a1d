"""In-app advocate notifications: a signed generic webhook (the worked example sink)."""

from __future__ import annotations

import hashlib
import hmac
import time

import orjson
from pydantic import SecretStr

from schemas.attribution import AttributionKind
from sinks.base import Sink, WriteResult
from sinks.batch import Batch, Item
from sinks.delivery.http import check_status, translate_transport_errors
from sinks.delivery.policy import DeliveryPolicy

__all__ = ["WEBHOOK_POLICY", "WebhookSink", "signature"]

WEBHOOK_POLICY = DeliveryPolicy(batch_size=50, limits=((20, 1.0),), max_in_flight=2)
NOTIFY = {AttributionKind.REFERRAL_CONVERTED, AttributionKind.ORDER_ATTRIBUTED}


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 over ``timestamp.body``: the receiver recomputes it to trust the call."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class WebhookSink(Sink):
    name = "webhook"

    def __init__(self, url: str, secret: SecretStr, policy: DeliveryPolicy = WEBHOOK_POLICY):
        super().__init__()
        self.url = url
        self.secret = secret
        self.policy = policy

    def accepts(self, item: Item) -> bool:
        return item.event.kind in NOTIFY and item.event.advocate is not None

    async def write(self, batch: Batch) -> WriteResult:
        notifications = [
            {
                "id": item.event.attribution_event_id,  # the receiver's idempotency key
                "advocate_id": item.event.advocate.id,
                "referral_id": item.event.referral_id,
                "kind": item.event.kind.value,
                "order_id": item.event.order.order_id if item.event.order else None,
            }
            for item in batch
        ]
        body = orjson.dumps({"notifications": notifications})
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Refstream-Timestamp": timestamp,
            "X-Refstream-Signature": signature(self.secret.get_secret_value(), timestamp, body),
        }
        with translate_transport_errors():
            async with self.session.post(self.url, data=body, headers=headers) as response:
                text = await response.text()
        check_status(response.status, response.headers, text)
        return WriteResult(status=response.status)

"""Analytics: Mixpanel ``/import?strict=1`` with ``$insert_id`` for dedup (sinks.md)."""

from __future__ import annotations

import orjson
from aiohttp import encode_basic_auth
from pydantic import SecretStr

from schemas.attribution import AttributionEvent
from sinks.base import Sink, WriteResult
from sinks.batch import Batch
from sinks.delivery.http import check_status, translate_transport_errors
from sinks.delivery.policy import DeliveryPolicy
from sinks.errors import PermanentError

__all__ = ["MIXPANEL_POLICY", "MixpanelSink", "insert_id"]

# At most 2,000 events and 2 MB per call; a 413 splits the batch (shared mechanism).
MIXPANEL_POLICY = DeliveryPolicy(batch_size=2000, limits=((30, 1.0),), max_in_flight=4)
PATH = "/import"


def insert_id(event: AttributionEvent) -> str:
    """Mixpanel's dedup key: ≤ 36 chars of ``[A-Za-z0-9-]``; our ids are 32 hex chars."""
    return event.attribution_event_id


def mixpanel_event(event: AttributionEvent) -> dict:
    """No emails or names: analytics gets ids, kinds, amounts as decimal strings."""
    distinct = (event.friend.id if event.friend and event.friend.id else None) or (
        event.referral_id or event.source_event_id
    )
    properties = {
        "time": int(event.occurred_at.timestamp()),
        "distinct_id": distinct,
        "$insert_id": insert_id(event),
        "kind": event.kind.value,
        "referral_id": event.referral_id,
        "campaign_id": event.campaign_id,
        "reason": event.reason,
        "advocate_id": event.advocate.id if event.advocate else None,
        "referral_orders": event.totals.orders,
    }
    if event.order is not None:
        properties |= {
            "order_id": event.order.order_id,
            "amount": str(event.order.amount),
            "currency": event.order.currency,
        }
    name = "Referral " + event.kind.value.replace("_", " ").title()
    return {"event": name, "properties": {k: v for k, v in properties.items() if v is not None}}


class MixpanelSink(Sink):
    name = "analytics"

    def __init__(
        self, base_url: str, token: SecretStr, project_id: str,
        policy: DeliveryPolicy = MIXPANEL_POLICY,
    ) -> None:  # fmt: skip
        super().__init__()
        self.url = base_url.rstrip("/") + PATH
        self.params = {"strict": "1", "project_id": project_id}
        self.policy = policy
        self._headers = {
            "Content-Type": "application/json",
            "Authorization": encode_basic_auth(token.get_secret_value(), ""),
        }

    async def write(self, batch: Batch) -> WriteResult:
        body = orjson.dumps([mixpanel_event(item.event) for item in batch])
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

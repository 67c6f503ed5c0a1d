"""Email: Klaviyo events, ``unique_id`` = attribution event id (sinks.md).

A thin stream goes out as single Create Event calls (350/s burst, 3,500/min steady); a
thick one as Bulk Create Events jobs (1,000 events and 5 MB per call, 10/s burst, 150/min
steady), which refuse a whole job that carries a ``unique_id`` twice for one profile and
metric: the delivery layer sends each record once per delivery, and a job redelivered
after Klaviyo took it is deduplicated by Klaviyo, not refused.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.attribution import AttributionEvent, AttributionKind, Party
from sinks.base import Sink, WriteResult
from sinks.batch import Batch, Item
from sinks.delivery.http import check_status, translate_transport_errors
from sinks.delivery.policy import DeliveryPolicy

__all__ = ["KLAVIYO_POLICY", "KlaviyoSettings", "KlaviyoSink"]

# Both documented limits of each endpoint hold at once. A quiet minute's allowance absorbs a
# burst at once, which a single 58/s window would queue (100 events/s: signup -> Klaviyo p99
# 8.2 s with 55/s alone, 0.46 s). Below 12 records a poll (at most 5 polls/s at the 0.2 s
# linger: 55 events/s) single calls stay within 3,500/min; above, one job per poll, and
# while jobs wait for their limit the poll goes on collecting. With 8, a steady 100
# events/s made jobs of 8-11 records at their limit (attribution → Klaviyo p99 4.5 s; 0.65
# s). 100 KB per record bounds Klaviyo's 100 KB per string.
KLAVIYO_POLICY = DeliveryPolicy(
    batch_size=1000, max_request_bytes=5 * 1000**2, max_item_bytes=100 * 1024, bulk_from=12,
    limits=((350, 1.0), (3500, 60.0)), bulk_limits=((10, 1.0), (150, 60.0)), max_in_flight=16,
)  # fmt: skip
EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)
PATH = "/api/events"
BULK_PATH = "/api/event-bulk-create-jobs"
K = AttributionKind
METRICS = {
    K.FRIEND_SIGNED_UP: "Referral Friend Signed Up",
    K.REFERRAL_CONVERTED: "Referral Reward Earned",
}


def profile_of(event: AttributionEvent) -> Party | None:
    """The friend hears of their signup; the advocate hears that the friend bought."""
    return event.friend if event.kind == K.FRIEND_SIGNED_UP else event.advocate


def _profile(event: AttributionEvent) -> dict:
    person = profile_of(event)
    profile = {"email": person.email}
    if person.first_name:
        profile["first_name"] = person.first_name
    return {"data": {"type": "profile", "attributes": profile}}


def _event(event: AttributionEvent) -> dict:
    """The event's attributes, without the profile (bulk nests events under profiles).

    Klaviyo takes times "after the year 1990 and up to 1 year in the future" (its spec): any
    other is refused here, so the record is dead-lettered as unmappable instead of failing a
    whole bulk job.
    """
    if not EARLIEST < event.occurred_at <= datetime.now(UTC) + timedelta(days=365):
        raise ValueError(f"Klaviyo takes no event time {event.occurred_at.isoformat()}")
    properties = {
        "referral_id": event.referral_id,
        "campaign_id": event.campaign_id,
        "attribution_event_id": event.attribution_event_id,
    }
    if event.kind == K.FRIEND_SIGNED_UP and event.advocate and event.advocate.first_name:
        properties["advocate_first_name"] = event.advocate.first_name
    if event.kind == K.REFERRAL_CONVERTED:
        properties["friend_first_name"] = event.friend.first_name if event.friend else None
        properties["order_id"] = event.order.order_id if event.order else None
    return {
        "properties": properties,
        "time": event.model_dump(mode="json")["occurred_at"],
        "unique_id": event.attribution_event_id,
        "metric": {"data": {"type": "metric", "attributes": {"name": METRICS[event.kind]}}},
    }


def event_body(event: AttributionEvent) -> dict:
    """A Create Event request."""
    attributes = _event(event) | {"profile": _profile(event)}
    return {"data": {"type": "event", "attributes": attributes}}


def bulk_entry(event: AttributionEvent) -> dict:
    """One profile's entry in a Bulk Create Events job, with this one event."""
    events = {"data": [{"type": "event", "attributes": _event(event)}]}
    return {
        "type": "event-bulk-create",
        "attributes": {"profile": _profile(event), "events": events},
    }


class KlaviyoSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KLAVIYO_", frozen=True)

    api_key: SecretStr
    api_url: str = "https://a.klaviyo.com"
    revision: str = "2026-07-15"


class KlaviyoSink(Sink):
    name = "email"
    Settings = KlaviyoSettings
    emulator = "dev.emulators.klaviyo:KlaviyoEmulator"
    policy = KLAVIYO_POLICY

    def __init__(self, settings: KlaviyoSettings) -> None:
        super().__init__(settings)
        base = settings.api_url.rstrip("/")
        self.url, self.bulk_url = base + PATH, base + BULK_PATH
        self._headers = {
            "Authorization": f"Klaviyo-API-Key {settings.api_key.get_secret_value()}",
            "revision": settings.revision,
            "Content-Type": "application/vnd.api+json",
            "Accept": "application/vnd.api+json",
        }

    def accepts(self, item: Item) -> bool:
        person = profile_of(item.event) if item.event.kind in METRICS else None
        return person is not None and person.email is not None

    def encode(self, item: Item) -> bytes:
        return orjson.dumps(bulk_entry(item.event))

    async def write(self, batch: Batch) -> WriteResult:
        if len(batch) == 1:
            url, body = self.url, orjson.dumps(event_body(batch.items[0].event))
        else:
            url = self.bulk_url
            body = (
                b'{"data":{"type":"event-bulk-create-job","attributes":'
                b'{"events-bulk-create":{"data":[' + b",".join(batch.parts) + b"]}}}}"
            )
        with translate_transport_errors():
            async with self.session.post(url, data=body, headers=self._headers) as response:
                text = await response.text()
        check_status(response.status, response.headers, text)
        return WriteResult(status=response.status)

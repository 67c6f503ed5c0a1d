"""The sinks' mappings on every attribution event the join can emit from valid input at the
contract's edges (issue 17, item 3): a request built from one validates against the spec the
vendor's emulator validates against, and keeps the rules the specs state only in prose.

A mapping may instead refuse a record by raising (the delivery layer dead-letters it as
``unmappable``); it may never build a request the vendor refuses.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from openapi_core.testing import MockRequest

from dev.emulators.base import HOST, load_spec
from dev.emulators.hubspot import HubSpotEmulator
from dev.emulators.klaviyo import KlaviyoEmulator
from dev.emulators.mixpanel import MixpanelEmulator
from schemas.attribution import (
    AdvocateTotals,
    AttributionEvent,
    AttributionKind,
    OrderRef,
    Party,
    attribution_event_id,
)
from schemas.events import decimal_text
from sinks import hubspot, klaviyo, mixpanel
from sinks.batch import Item
from tests.strategies import (
    FUZZ,
    SENTINEL,
    advocate_totals,
    amounts,
    attribution_events,
    rfc3339,
)

pytestmark = pytest.mark.filterwarnings("ignore:Unsupported scheme type:UserWarning")  # oauth2

HUBSPOT = load_spec(HubSpotEmulator.spec_file)
KLAVIYO = load_spec(KlaviyoEmulator.spec_file)
KLAVIYO_BULK = load_spec("klaviyo-bulk-create-events.json")
MIXPANEL = load_spec(MixpanelEmulator.spec_file)
INSERT_ID = re.compile(r"[A-Za-z0-9-]{1,36}")  # sinks.md, Mixpanel's $insert_id
KLAVIYO_EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)  # "must be after the year 1990"
KLAVIYO_STRING = 100 * 1024  # "each string cannot be larger than 100 KB"
K = AttributionKind


def at(text: str) -> tuple[str, datetime]:
    return text, datetime.fromisoformat(text)


AUTHORIZATION = {
    "application/json": "Bearer token",
    "application/vnd.api+json": "Klaviyo-API-Key key",
}


def validate(spec, path: str, body: bytes, content_type: str, **query: str) -> None:
    """Raises what openapi-core finds wrong with the request, as the emulator would."""
    auth = "Basic dG9rZW46" if query else AUTHORIZATION[content_type]  # Mixpanel: query
    headers = {"Content-Type": content_type, "Authorization": auth, "revision": "2026-07-15"}
    request = MockRequest(HOST, "post", path, args=query, data=body, headers=headers,
                          content_type=content_type)  # fmt: skip
    spec.validate_request(request)


def item(event: AttributionEvent | AdvocateTotals) -> Item:
    return Item(event, "attributions", 0, 0, b"")


def accepts(sink_class: type, event: AttributionEvent | AdvocateTotals) -> bool:
    """The sink's own choice of what it sends (``accepts`` reads the event alone)."""
    return sink_class.accepts(sink_class.__new__(sink_class), item(event))


def strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [k, *strings(v)]]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []


# --- HubSpot ----------------------------------------------------------------------------------


@settings(FUZZ, max_examples=150)
@given(event=attribution_events())
def test_hubspot_deal_upserts_validate_against_the_spec(event):
    if not accepts(hubspot.HubSpotSink, event) or not hubspot.is_deal(event):
        return
    properties = hubspot.deal_properties(event)
    body = {"inputs": [{"idProperty": hubspot.DEAL_ID_PROPERTY, "id": event.order.order_id,
                        "properties": properties}]}  # fmt: skip
    validate(HUBSPOT, hubspot.DEALS_PATH, orjson.dumps(body), "application/json")
    assert properties["dealstage"] in ("closedwon", "closedlost")
    assert Decimal(properties["amount"]) >= 0


@settings(FUZZ, max_examples=150)
@given(event=st.one_of(attribution_events(), advocate_totals()))
def test_hubspot_upserts_validate_against_the_spec(event):
    if not accepts(hubspot.HubSpotSink, event):
        return
    email, properties = hubspot.contact(event)
    body = {"inputs": [{"idProperty": "email", "id": email, "properties": properties}]}
    validate(HUBSPOT, hubspot.PATH, orjson.dumps(body), "application/json")
    person = event.advocate if isinstance(event, AdvocateTotals) else event.friend
    assert email == person.email and "@" in email  # the contact is upserted by email
    assert properties and all(isinstance(v, str) for v in properties.values())


# --- Klaviyo ----------------------------------------------------------------------------------


def klaviyo_events(event: AttributionEvent) -> list[dict]:
    """The event's attributes as Create Event sends them (and as a bulk job does)."""
    single = klaviyo.event_body(event)["data"]["attributes"]
    bulk = getattr(klaviyo, "bulk_entry", None)
    if bulk is None:
        return [single]
    entry = bulk(event)
    return [single, *(e["attributes"] for e in entry["attributes"]["events"]["data"])]


@settings(FUZZ, max_examples=150)
@given(event=attribution_events())
def test_klaviyo_events_validate_against_the_spec(event):
    if not accepts(klaviyo.KlaviyoSink, event):
        return
    if not KLAVIYO_EARLIEST < event.occurred_at <= datetime.now(UTC) + timedelta(days=365):
        with pytest.raises(ValueError, match="Klaviyo takes no event time"):
            klaviyo.event_body(event)  # dead-lettered as unmappable, never sent
        return
    body = orjson.dumps(klaviyo.event_body(event))
    validate(KLAVIYO, klaviyo.PATH, body, "application/vnd.api+json")
    if hasattr(klaviyo, "bulk_entry"):  # a job of this one event, as ``write`` wraps them
        jobs = {"events-bulk-create": {"data": [klaviyo.bulk_entry(event)]}}
        job = {"data": {"type": "event-bulk-create-job", "attributes": jobs}}
        body = orjson.dumps(job)
        validate(KLAVIYO_BULK, klaviyo.BULK_PATH, body, "application/vnd.api+json")
    for attributes in klaviyo_events(event):
        assert attributes["unique_id"] == event.attribution_event_id
        assert len(attributes["metric"]["data"]["attributes"]["name"]) < 128
        assert len(attributes["properties"]) <= 400
        assert all(len(s.encode()) <= KLAVIYO_STRING for s in strings(attributes))


def template(kind: str, occurred_at: datetime, amount: Decimal = Decimal("49.90")):
    """A friend's attribution event of ``kind``, as the join emits it."""
    return AttributionEvent(
        attribution_event_id=attribution_event_id("ref_1", kind, "evt_1"), kind=kind,
        referral_id="ref_1", advocate=Party(id="adv", email="adv@example.com", first_name="A"),
        friend=Party(id="cus", email="friend@example.com", first_name="F"),
        order=OrderRef(order_id="ord_1", amount=amount, currency="EUR"),
        source_event_id="evt_1", occurred_at=occurred_at,
    )  # fmt: skip


@settings(FUZZ, max_examples=100)
@given(kind=st.sampled_from(sorted(klaviyo.METRICS)), time=rfc3339())
@example(kind=K.FRIEND_SIGNED_UP, time=at("1989-12-31T23:59:59Z"))
@example(kind=K.REFERRAL_CONVERTED, time=at("2100-01-01T00:00:00Z"))
def test_klaviyo_event_times_are_ones_klaviyo_accepts(kind, time):
    """Create Event: "The time must be after the year 1990 and can only be up to 1 year in
    the future" (spec, ``time``)."""
    event = template(kind, time[1])
    try:
        events = klaviyo_events(event)
    except Exception:  # refused by the mapping: dead-lettered, never sent
        return
    latest = datetime.now(UTC) + timedelta(days=365)
    for attributes in events:
        time = attributes.get("time")
        if time is None:  # Klaviyo takes the time it receives the event
            continue
        moment = datetime.fromisoformat(time)
        assert KLAVIYO_EARLIEST < moment <= latest, f"Klaviyo refuses time {time}"


# --- Mixpanel ---------------------------------------------------------------------------------


@settings(FUZZ, max_examples=150)
@given(event=attribution_events())
def test_mixpanel_imports_validate_against_the_spec(event):
    if event.occurred_at < datetime(1970, 1, 1, tzinfo=UTC):
        return  # refused by the mapping: test_mixpanel_times_are_seconds_since_the_epoch
    body = orjson.dumps([mixpanel.mixpanel_event(event)])
    validate(MIXPANEL, mixpanel.PATH, body, "application/json", strict="1", project_id="4242")
    assert len(body) <= 2 * 1024**2
    (sent,) = orjson.loads(body)
    properties = sent["properties"]
    assert INSERT_ID.fullmatch(properties["$insert_id"])
    assert isinstance(properties["distinct_id"], str) and properties["distinct_id"]
    assert SENTINEL not in body.decode(), "analytics gets no emails or names"


@settings(FUZZ, max_examples=100)
@given(kind=st.sampled_from(list(AttributionKind)), time=rfc3339())
@example(kind=K.SIGNUP_UNATTRIBUTED, time=at("1969-12-31T23:59:59Z"))
def test_mixpanel_times_are_seconds_since_the_epoch(kind, time):
    """``time``: "in seconds or milliseconds since UTC epoch" (spec); an event before 1970
    has none."""
    event = template(kind, time[1])
    if event.occurred_at < datetime(1970, 1, 1, tzinfo=UTC):
        with pytest.raises(ValueError, match="before 1970"):  # dead-lettered as unmappable
            mixpanel.mixpanel_event(event)
        return
    properties = mixpanel.mixpanel_event(event)["properties"]
    assert properties["time"] == int(event.occurred_at.timestamp()) >= 0


@settings(FUZZ, max_examples=100)
@given(kind=st.sampled_from(list(AttributionKind)), amount=amounts())
@example(kind=K.REFERRAL_CONVERTED, amount=("0.0000001", Decimal("0.0000001")))
def test_mixpanel_amounts_are_the_exact_decimal_strings(kind, amount):
    """Contract section 5: amounts are decimal strings ("0.0000001", never "1E-7")."""
    event = template(kind, datetime(2026, 11, 22, 12, tzinfo=UTC), amount[1])
    properties = mixpanel.mixpanel_event(event)["properties"]
    assert properties["amount"] == decimal_text(event.order.amount)

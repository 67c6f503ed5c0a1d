"""Property: whatever an authentic body holds, a source maps it, ignores it or raises
Unmappable (dead letter), never anything else (a 500 would make the platform retry forever),
and what it publishes passes the worker's validator."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict

from gateway.pipeline import Prepared, prepare
from gateway.sources import SOURCES, Ignored, Unmappable, WebhookRequest
from schemas.events import parse_event
from streams.settings import Topics

from . import vectors as v
from .conftest import gateway_settings

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)  # fmt: skip

EXAMPLES = {
    "/v1/webhooks/shopify": [v.SHOPIFY_CUSTOMER, v.SHOPIFY_ORDER, v.SHOPIFY_REFUND],
    "/v1/webhooks/stripe": [v.STRIPE_SESSION],
    "/v1/webhooks/referralcandy": [v.REFERRALCANDY],
    "/v1/webhooks/rewardful": [v.REWARDFUL],
    "/v1/events/signups": [v.INTERNAL],
}
TOPICS = {"/v1/webhooks/shopify": ["customers/create", "orders/paid", "orders/create",
                                   "refunds/create"]}  # fmt: skip
SOURCES_BY_PATH = {source.path: source for source in SOURCES}


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    paths = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            paths += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            paths += _paths(child, (*prefix, index))
    return paths


def _replace(value: Any, path: tuple, new: Any) -> Any:
    if not path:
        return new
    copy = value.copy()
    copy[path[0]] = _replace(value[path[0]], path[1:], new)
    return copy


@st.composite
def bodies(draw) -> tuple[str, str, bytes]:
    path = draw(st.sampled_from(sorted(EXAMPLES)))
    example = orjson.loads(draw(st.sampled_from(EXAMPLES[path])))
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(_paths(example)))
        example = _replace(example, where, draw(JSON))
    topic = draw(st.sampled_from(TOPICS.get(path, [""])))
    try:
        body = orjson.dumps(example)
    except orjson.JSONEncodeError:  # integers beyond 64 bits: send Python's JSON
        import json

        body = json.dumps(example).encode()
    return path, topic, body


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=bodies())
def test_any_authentic_body_maps_ignores_or_dead_letters(case):
    path, topic, body = case
    config = gateway_settings()
    source = SOURCES_BY_PATH[path](config)
    headers = CIMultiDict({"X-Shopify-Topic": topic, "X-Shopify-Shop-Domain": v.SHOP})
    try:
        result = prepare(
            source, WebhookRequest(path, headers, body), Topics(), "2026-01-01T00:00:00.000Z"
        )
    except Unmappable as exc:
        assert exc.reason in {"invalid_json", "missing_header", "missing_field", "invalid_field",
                              "mixed_currency", "schema_invalid", "type_mismatch",
                              "empty_batch", "too_many_events", "reserved_event_id"}  # fmt: skip
        return
    assert isinstance(result, Prepared | Ignored)
    if isinstance(result, Prepared):
        for record in result.records:
            parse_event(record.value)  # published values pass the worker's validator

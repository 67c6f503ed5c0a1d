"""The canonical endpoint for in-house systems (gateway.md §8.5): contract §4 events,
validated by the worker's own validator and published byte for byte as sent."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import ClassVar

from gateway.signatures import timestamped_valid
from gateway.sources.base import Mapped, Source, Unmappable, WebhookRequest
from schemas.events import InvalidEvent, parse_event

__all__ = ["MAX_EVENTS", "CanonicalOrders", "CanonicalReferrals", "CanonicalSignups"]

MAX_EVENTS = 500
RESERVED_PREFIX = "gw_"
_WHITESPACE = " \t\n\r"
_REASONS = {
    "invalid_json": "invalid_json", "unknown_type": "type_mismatch",
    "unexpected_type": "type_mismatch",
}  # fmt: skip
"""parse_event's reasons as the endpoint's codes; every other failure is schema_invalid."""


def _elements(body: bytes) -> tuple[bool, list[bytes]]:
    """Whether the body is an array, and the raw bytes of each element (of the one object),
    found with the JSON decoder's own positions so that each is published unchanged."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Unmappable("invalid_json", "body is not UTF-8") from None
    decoder = json.JSONDecoder()
    position = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        if not text.startswith("[", position):
            decoder.raw_decode(text, position)
            return False, [body.strip()]
        spans: list[bytes] = []
        position += 1
        while True:
            position = len(text) - len(text[position:].lstrip(_WHITESPACE))
            if text.startswith("]", position) and not spans:
                position += 1
                break
            _, end = decoder.raw_decode(text, position)
            spans.append(text[position:end].encode("utf-8"))
            position = len(text) - len(text[end:].lstrip(_WHITESPACE))
            if text.startswith("]", position):
                position += 1
                break
            if not text.startswith(",", position):
                raise ValueError("expected , or ]")
            position += 1
        if text[position:].strip(_WHITESPACE):
            raise ValueError("extra data after the array")
        return True, spans
    except (ValueError, RecursionError):
        raise Unmappable("invalid_json", "body is not JSON") from None


class _Canonical(Source):
    name = "internal"
    secret_setting = "internal_secret"
    vendor = False
    types: ClassVar[frozenset[str]]

    def verify(self, headers: Mapping[str, str], body: bytes, now: float) -> bool:
        return timestamped_valid(self.secret, body, headers.get("X-Refstream-Signature"), now,
                                 self.settings.signature_tolerance_seconds)  # fmt: skip

    def map(self, request: WebhookRequest) -> Mapped:
        is_array, elements = _elements(request.body)
        if is_array and not elements:
            raise Unmappable("empty_batch", "the array is empty")
        if len(elements) > MAX_EVENTS:
            raise Unmappable("too_many_events", f"at most {MAX_EVENTS} events per request")
        failures: list[tuple[int, str]] = []
        messages: list[str] = []
        kinds: list[str] = []
        for index, raw in enumerate(elements):
            try:
                event = parse_event(raw, self.types)
            except InvalidEvent as exc:
                reason = _REASONS.get(exc.reason, "schema_invalid")
                failures.append((index, reason))
                messages.append(f"[{index}] {exc.message}")
                continue
            if event.event_id.startswith(RESERVED_PREFIX):
                failures.append((index, "reserved_event_id"))
                messages.append(f"[{index}] event ids starting with gw_ are reserved")
            kinds.append(event.type)
        if failures:
            first_reason = failures[0][1]
            raise Unmappable(first_reason, "; ".join(messages)[:1000], failures=failures)
        vendor_event = kinds[0] if len(set(kinds)) == 1 else "batch"
        return Mapped([], vendor_event, raw=elements)


class CanonicalReferrals(_Canonical):
    path = "/v1/events/referrals"
    types = frozenset({"referral.created"})


class CanonicalSignups(_Canonical):
    path = "/v1/events/signups"
    types = frozenset({"signup.completed"})


class CanonicalOrders(_Canonical):
    path = "/v1/events/orders"
    types = frozenset({"order.completed", "order.refunded"})

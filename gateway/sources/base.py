"""The extension point: a webhook source is one class that declares its name, path, secret
setting and signature scheme, and maps a verified body to canonical events (gateway.md §8).

A mapping returns :class:`Mapped` or :class:`Ignored`, or raises :class:`Unmappable`
(dead-lettered with its reason). It never publishes and never looks at the network.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson

from gateway.ids import email_id
from gateway.settings import GatewaySettings, Identity

__all__ = [
    "Ignored",
    "Mapped",
    "Source",
    "Unmappable",
    "WebhookRequest",
    "compact",
    "first",
    "labelled",
    "load_json_object",
    "need",
    "obj",
    "outcome",
    "person",
]


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """A received request, as a mapping sees it; ``headers`` are case-insensitive."""

    path: str
    headers: Mapping[str, str]
    body: bytes


@dataclass(slots=True)
class Mapped:
    """Canonical events (contract §4 dicts, absent fields omitted) to publish."""

    events: list[dict[str, Any]]
    vendor_event: str
    delivery_id: str = ""
    raw: list[bytes] | None = None
    """The canonical endpoint's events as the caller sent them (published unchanged)."""


@dataclass(slots=True)
class Ignored:
    reason: str
    vendor_event: str = ""
    delivery_id: str = ""


class Unmappable(Exception):
    """An authentic body the gateway cannot map: dead-lettered with ``reason``.
    ``failures`` lists ``(index, reason)`` for a canonical batch."""

    def __init__(
        self,
        reason: str,
        message: str,
        vendor_event: str = "",
        delivery_id: str = "",
        failures: list[tuple[int, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.vendor_event = vendor_event
        self.delivery_id = delivery_id
        self.failures = failures or []


class Source(abc.ABC):
    """A webhook source.

    Class attributes: ``name`` (the ``source`` label of metrics and DLQ records), ``path``,
    ``secret_setting`` (the :class:`GatewaySettings` field whose non-empty value enables
    it) and ``vendor`` (False for the canonical endpoint, which answers bad input with 400).
    """

    name: ClassVar[str]
    path: ClassVar[str]
    secret_setting: ClassVar[str]
    vendor: ClassVar[bool] = True
    mapped_headers: ClassVar[tuple[str, ...]] = ()
    """Request headers the mapping reads (kept with a dead letter, for replay)."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        secret = getattr(settings, self.secret_setting)
        self.secret: str = secret.get_secret_value() if secret is not None else ""

    @property
    def enabled(self) -> bool:
        return bool(self.secret)

    @abc.abstractmethod
    def verify(self, headers: Mapping[str, str], body: bytes, now: float) -> bool:
        """Whether the raw ``body`` carries a valid signature (§5); never raises."""

    @abc.abstractmethod
    def map(self, request: WebhookRequest) -> Mapped | Ignored:
        """The canonical events of a verified request; raises :class:`Unmappable`."""

    def person(self, platform_id: str | None, email: object) -> dict[str, Any]:
        return person(self.settings.identity, platform_id, email)


@contextmanager
def labelled(vendor_event: str, delivery_id: str = "") -> Iterator[None]:
    """Give an :class:`Unmappable` raised inside the vendor event and delivery it concerns."""
    try:
        yield
    except Unmappable as exc:
        exc.vendor_event, exc.delivery_id = vendor_event, delivery_id
        raise


def outcome(
    result: dict[str, Any] | list[dict[str, Any]] | str, vendor_event: str, delivery_id: str = ""
) -> Mapped | Ignored:
    """A mapping's result: events, or the reason code (a string) it is ignored for."""
    if isinstance(result, str):
        return Ignored(result, vendor_event, delivery_id)
    return Mapped(result if isinstance(result, list) else [result], vendor_event, delivery_id)


def person(identity: Identity, platform_id: str | None, email: object) -> dict[str, Any]:
    """``id`` (and ``platform_id``) of a customer or advocate per gateway.md §11.2. An email
    that is not text derives nothing: the event then fails validation (dead letter)."""
    email = email if isinstance(email, str) and email.strip() else None
    if identity is Identity.EMAIL and email:
        return {"id": email_id(email), "platform_id": platform_id}
    if platform_id:
        return {"id": platform_id}
    return {"id": email_id(email)} if email else {}


def first(*values: Any) -> Any:
    """``a ?? b``: the first value present and non-empty."""
    for value in values:
        if value is not None and value != "":
            return value
    return None


def compact(value: Any) -> Any:
    """``value`` without None fields (absent fields are omitted, never null) or empty objects."""
    if isinstance(value, dict):
        out = {k: compact(v) for k, v in value.items() if v is not None}
        return {k: v for k, v in out.items() if v != {}}
    return value


def load_json_object(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise Unmappable("invalid_json", "body is not UTF-8 JSON") from None
    if not isinstance(data, dict):
        raise Unmappable("invalid_json", "body must be a JSON object")
    return data


def obj(value: Any, where: str) -> dict[str, Any]:
    """``value`` as a JSON object, absent → {}; anything else is ``invalid_field``."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Unmappable("invalid_field", f"{where} must be an object")
    return value


def need(data: Mapping[str, Any], key: str, where: str) -> Any:
    value = data.get(key)
    if value is None or value == "":
        raise Unmappable("missing_field", f"{where}.{key} is missing")
    return value


def text(value: Any, where: str) -> str | None:
    """An id or string field as text (vendors send numeric ids); None stays None."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise Unmappable("invalid_field", f"{where} must be a string or an integer")
    return str(value)

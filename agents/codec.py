"""JSON for the join's states and messages (msgspec structs, ``agents.state`` and
``agents.messages``): one decoder per type, built once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

__all__ = ["decoder", "from_object", "to_json"]

_ENCODER = msgspec.json.Encoder()


def decoder(model: type) -> Callable[[bytes | str], Any]:
    """A function that parses JSON text into ``model`` and validates it (raising
    ``msgspec.ValidationError``, a ``ValueError``, or ``msgspec.DecodeError``)."""
    return msgspec.json.Decoder(model).decode


def from_object(model: type, data: object) -> Any:
    """``model`` from parsed JSON (a dict), validated as :func:`decoder` does."""
    return msgspec.convert(data, model)


def to_json(value: Any) -> bytes:
    return _ENCODER.encode(value)

"""JSON for the join's states and messages, whichever library defines their type.

Most are pydantic models; the advocate stage's are msgspec structs (``agents.state``). The
stages read and write both through these three functions, so a type can move from one
library to the other without touching the plumbing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

__all__ = ["decoder", "from_object", "to_json"]

_ENCODER = msgspec.json.Encoder()


def decoder(model: type) -> Callable[[bytes | str], Any]:
    """A function that parses JSON text into ``model`` and validates it (raising
    ``pydantic.ValidationError`` or ``msgspec.ValidationError``, both ``ValueError``)."""
    if issubclass(model, msgspec.Struct):
        return msgspec.json.Decoder(model).decode
    return model.model_validate_json


def from_object(model: type, data: object) -> Any:
    """``model`` from parsed JSON (a dict), validated as :func:`decoder` does."""
    if issubclass(model, msgspec.Struct):
        return msgspec.convert(data, model)
    return model.model_validate(data)


def to_json(value: Any) -> bytes:
    if isinstance(value, msgspec.Struct):
        return _ENCODER.encode(value)
    return value.model_dump_json().encode()

"""The stage topics' wire format: one record carries many keyed messages for one partition.

Every record that crosses Faust's stream machinery costs about as much as parsing it (the
floor in README, performance), and most of the join's records are internal hops between
stages. So the stages' own topics carry envelopes: a JSON array of ``{"k": key, "ts": source
timestamp, "t": kind, "m": message}`` entries, all of whose keys hash to the record's
partition. Keys keep their order (one partition, one envelope after another), and a stage
applies an envelope's entries exactly as it would apply records, so the rules do not change.

A message travels as its JSON *text* (a JSON string), named by its kind: reading an envelope
then builds four small objects per entry, and pydantic parses each message's text straight
into its model, about half the work of building the message as Python objects first and
validating those (README, performance).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import orjson

__all__ = ["ATTRIBUTION", "EXPIRE", "MAX_ENVELOPE_BYTES", "entry", "pack", "unpack"]

MAX_ENVELOPE_BYTES = 256 * 1024
ATTRIBUTION = "attribution"
"""The kind of an attribution event folded back into the referral stage (the events'
messages are named by their ``type``; attribution events have none)."""
EXPIRE = "expire"
"""The kind of a stage's expire tick."""


def entry(key: str, kind: str, message: str, timestamp: float | None) -> bytes:
    """One keyed message of ``kind`` (its JSON text) with the timestamp of the input that
    caused it."""
    return orjson.dumps({"k": key, "ts": timestamp, "t": kind, "m": message})


def pack(entries: Iterable[bytes], limit: int = MAX_ENVELOPE_BYTES) -> Iterator[bytes]:
    """Envelopes of at most ``limit`` bytes (one entry alone may exceed it)."""
    chunk: list[bytes] = []
    size = 0
    for item in entries:
        if chunk and size + len(item) + 1 > limit:
            yield b"[" + b",".join(chunk) + b"]"
            chunk, size = [], 0
        chunk.append(item)
        size += len(item) + 1
    if chunk:
        yield b"[" + b",".join(chunk) + b"]"


def unpack(value: bytes | None) -> list[dict[str, Any]]:
    """The entries of an envelope; ``ValueError`` if it is not a JSON array. (Entries are
    checked one by one where they are used, so one bad entry costs only itself.)"""
    entries = orjson.loads(value or b"")
    if not isinstance(entries, list):
        raise ValueError("not an envelope: a JSON array of {k, ts, t, m} entries")
    return entries

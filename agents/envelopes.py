"""The stage topics' wire format: one record carries many keyed messages for one partition.

Every record that crosses Faust's stream machinery costs about as much as parsing it (the
floor in README, performance), and most of the join's records are internal hops between
stages. So the stages' own topics carry envelopes: a JSON array of ``{"k": key, "ts": source
timestamp, "t": kind, "m": message}`` entries, all of whose keys hash to the record's
partition. Keys keep their order (one partition, one envelope after another), and a stage
applies an envelope's entries exactly as it would apply records, so the rules do not change.

Each message is embedded as its JSON (``m``), named by its kind (``t``), and msgspec reads a
whole envelope in one call into :class:`Entry` structs whose messages stay raw bytes; a
stage then parses each message straight into its struct. Earlier versions wrote the message
as a JSON *string* of its text (about twice the work to write and read: every quote escaped
and unescaped), and before that as an object naming its own ``type`` without ``t``; both
forms are still read, and a worker of either earlier version reads this one as the second.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import msgspec
from msgspec import Raw, Struct

__all__ = [
    "ATTRIBUTION",
    "EXPIRE",
    "MAX_ENVELOPE_BYTES",
    "Entry",
    "entry",
    "entry_bytes",
    "pack",
    "unpack",
]

MAX_ENVELOPE_BYTES = 256 * 1024
ATTRIBUTION = "attribution"
"""The kind of an attribution event folded back into the referral stage (the events'
messages are named by their ``type``; attribution events have none)."""
EXPIRE = "expire"
"""The kind of a stage's expire tick."""


class Entry(Struct, kw_only=True):
    """One keyed message of an envelope."""

    k: str
    ts: float | None = None
    """The timestamp of the input that caused it (seconds since the epoch)."""
    t: str | None = None
    """Its kind; ``None`` in entries of the oldest form, whose message names its ``type``."""
    m: Raw
    """The message's JSON (a JSON string of its text in entries of the older form)."""


_ENCODER = msgspec.json.Encoder()
_ENVELOPE = msgspec.json.Decoder(list[Entry])
_ENTRIES = msgspec.json.Decoder(list[Raw])
_ENTRY = msgspec.json.Decoder(Entry)


def entry(key: str, kind: str, message: bytes | Struct, timestamp: float | None) -> bytes:
    """One keyed message of ``kind`` with the timestamp of the input that caused it; the
    message is its JSON, or a struct, written in the same call as the entry (one encoding
    pass, no intermediate bytes)."""
    written = Raw(message) if isinstance(message, bytes) else message
    return _ENCODER.encode(Entry(k=key, ts=timestamp, t=kind, m=written))  # type: ignore[arg-type]


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


def unpack(value: bytes | None) -> list[Entry | Raw]:
    """The entries of an envelope; ``ValueError`` if it is not a JSON array. An entry that
    is not an :class:`Entry` comes back as its raw JSON: entries are checked one by one
    where they are used, so one bad entry costs only itself."""
    try:
        return _ENVELOPE.decode(value or b"")  # type: ignore[return-value]
    except (msgspec.DecodeError, RecursionError):  # msgspec nests at most ~1,000 deep
        pass
    try:
        raws = _ENTRIES.decode(value or b"")
    except (msgspec.DecodeError, RecursionError):
        raise ValueError("not an envelope: a JSON array of {k, ts, t, m} entries") from None
    return [_entry_or_raw(raw) for raw in raws]


def entry_bytes(value: bytes, index: int) -> bytes:
    """The ``index``-th entry of an envelope as it was written (for its dead letter)."""
    return bytes(_ENTRIES.decode(value)[index])


def _entry_or_raw(raw: Raw) -> Entry | Raw:
    try:
        return _ENTRY.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return raw

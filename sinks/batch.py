"""A batch of attribution events on its way to one vendor."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from schemas.attribution import AdvocateTotals, AttributionEvent

__all__ = ["Batch", "Item"]


@dataclass(frozen=True, slots=True)
class Item:
    """One record to deliver and where it came from (for commits and DLQ headers): an
    attribution event, or (CRM only) an advocate's revenue total."""

    event: AttributionEvent | AdvocateTotals
    topic: str
    partition: int
    offset: int
    raw: bytes


@dataclass(frozen=True, slots=True)
class Batch:
    """Records for one vendor request. ``parts`` holds each record's encoding by the sink
    (:meth:`sinks.base.Sink.encode`), made once by the delivery layer, which sized the
    batch by it; a batch built by hand has none."""

    items: tuple[Item, ...]
    parts: tuple[bytes, ...] = ()

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Item]:
        return iter(self.items)

    def pairs(self) -> Iterator[tuple[Item, bytes]]:
        return zip(self.items, self.parts, strict=True)

    def split(self) -> tuple[Batch, Batch]:
        half = len(self.items) // 2
        return (
            Batch(self.items[:half], self.parts[:half]),
            Batch(self.items[half:], self.parts[half:]),
        )

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
    items: tuple[Item, ...]

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Item]:
        return iter(self.items)

    def chunks(self, size: int) -> Iterator[Batch]:
        """Slices of at most ``size`` items, for vendors' per-request limits."""
        for start in range(0, len(self.items), size):
            yield Batch(self.items[start : start + size])

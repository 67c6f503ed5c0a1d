"""A batch of attribution events on its way to one vendor."""

from __future__ import annotations

from collections.abc import Callable, Iterator
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

    def split(self, key: Callable[[Item], object] = lambda item: None) -> tuple[Batch, Batch]:
        """Two halves, cut where the ordering ``key`` changes nearest the middle, so that
        one key's records stay together where they can (they are contiguous: the delivery
        layer groups them). Records without a key (``None``) may be cut anywhere."""
        keys = [key(item) for item in self.items]
        count, middle = len(keys), len(keys) // 2
        cut = middle
        for distance in range(count):
            candidates = (c for c in (middle - distance, middle + distance) if 0 < c < count)
            found = [c for c in candidates if keys[c - 1] is None or keys[c - 1] != keys[c]]
            if found:
                cut = found[0]
                break
        return self.cut(cut)

    def cut(self, index: int) -> tuple[Batch, Batch]:
        """The first ``index`` records, and the rest."""
        return (
            Batch(self.items[:index], self.parts[:index]),
            Batch(self.items[index:], self.parts[index:]),
        )

"""The join's changelog-backed tables, one per keyed stage (see agents/rules.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import faust
from faust.types import FutureMessage

from streams.app import app, settings

__all__ = ["DurableTable", "customers", "emails", "referrals"]


class DurableTable(faust.Table):
    """A Table whose changelog writes can be awaited.

    Faust sends table writes through its ``send_soon`` buffer and, before committing
    offsets, "flushes" it; but a record the buffer has dequeued and not yet handed to the
    Kafka client is in neither queue, so a flush can return before it is sent. A crash then
    loses state for input whose offsets are committed. Stages await :meth:`written` before
    they ack a batch.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._unwritten: list[FutureMessage] = []

    def send_changelog(self, *args: Any, **kwargs: Any) -> FutureMessage:
        future = super().send_changelog(*args, **kwargs)
        self._unwritten.append(future)
        return future

    async def written(self) -> None:
        """Return once every changelog write so far is acknowledged by the broker."""
        unwritten, self._unwritten = self._unwritten, []
        if unwritten:
            await asyncio.gather(*unwritten)


def _table(name: str, help: str) -> DurableTable:
    # bytes types mean the "raw" codec: values are our own JSON, encoded by pydantic. Keys must
    # be bytes too, always: the memory store keeps keys as given, and recovery from the
    # changelog restores them as bytes, so a str key written live would never be found again.
    table = DurableTable(
        app=app, name=name, help=help, partitions=settings.partitions,
        key_type=bytes, value_type=bytes,
    )  # fmt: skip
    return app.tables.add(table)


referrals = _table("join-referrals", "referral_id → ReferralState")
customers = _table("join-customers", "customer id → CustomerState")
emails = _table("join-emails", "friend email → EmailState")

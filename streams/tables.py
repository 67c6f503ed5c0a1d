"""The join's changelog-backed tables, one per keyed stage (see agents/rules.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import NamedTuple

import faust
from faust.stores.rocksdb import Store as RocksDBStore
from faust.types import TP, StoreT

from streams.app import app, settings
from streams.producer import BatchProducer, OutRecord
from streams.rocksdb_budget import BudgetedOptions

__all__ = ["DurableTable", "advocates", "customers", "emails", "orders", "referrals"]


class _Message(NamedTuple):
    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes | None

    @property
    def tp(self) -> TP:
        return TP(self.topic, self.partition)


class _ChangelogEvent(NamedTuple):
    """What a store's ``apply_changelog_batch`` reads of a changelog event."""

    message: _Message

    @property
    def key(self) -> bytes:
        return self.message.key

    @property
    def value(self) -> bytes | None:
        return self.message.value


class DurableTable(faust.Table):
    """A Table whose batch writes go to the changelog first and to the store second.

    ``table[key] = value`` writes the store at once and queues the changelog record in
    Faust's ``send_soon`` buffer, one future per key, and the RocksDB store moves its
    persisted offset whenever a record is acknowledged. :meth:`write` instead sends one
    batch per changelog partition, waits for the broker, and then applies the acknowledged
    records to the store the way recovery does (data and persisted offset together). A
    crash at any point leaves the store at or behind its changelog, never ahead of it, and
    recovery fills the gap.
    """

    def _new_store(self) -> StoreT:
        store = super()._new_store()
        if isinstance(store, RocksDBStore) and store.use_rocksdict:
            store.rocksdb_options = BudgetedOptions(settings.rocksdb_memory_bytes, **ROCKSDB_SIZES)
        return store

    def read(self, key: bytes, partition: int) -> bytes | None:
        """The stored value of ``key``, which lives in ``partition``; counted by the sensors
        as a table get.

        Outside a stream event Faust's RocksDB store looks for a key in every partition's
        database (``key_may_exist`` on each, then a get); a batch knows each key's
        partition, so this reads that one database.
        """
        self.on_key_get(key)
        db_for_partition = getattr(self.data, "_db_for_partition", None)
        if db_for_partition is None:  # the memory store: one dict for all partitions
            return self.data.get(key)
        return db_for_partition(partition).get(key)

    def scan(self) -> Iterator[tuple[bytes, bytes, Callable[[bytes], bytes | None]]]:
        """Every key and value of this worker's active partitions, each with a function that
        reads the key's value as it is now.

        RocksDB's iterators read a snapshot (and the memory store's items are copied), so a
        caller that gives the event loop back between items sees the stages' later writes
        only through that function. Each partition's database is read directly: Faust's
        ``items()`` passes every item through several generators and the codecs.
        """
        store = self.data
        dbs_for_actives = getattr(store, "_dbs_for_actives", None)
        if dbs_for_actives is None:  # the memory store: one dict for all partitions
            for key, value in list(store.items()):
                yield key, value, store.get
            return
        offset_key = store.offset_key
        for db in list(dbs_for_actives()):
            for key, value in db.items():
                if key != offset_key:
                    yield key, value, db.get

    async def write(
        self, producer: BatchProducer, items: Sequence[tuple[bytes, bytes | None, int]]
    ) -> None:
        """Write ``(key, value, partition)`` items; ``partition`` is the key's partition of
        the stage's input topic (co-partitioned with the changelog)."""
        if not items:
            return
        topic = self.changelog_topic_name
        records = [OutRecord(topic, key, value, partition=part) for key, value, part in items]
        await producer.send_all(records)
        for key, value, _ in items:
            self._sensor_on_set(self, key, value)
        self.data.apply_changelog_batch(
            [_ChangelogEvent(_Message(topic, r.partition, r.offset, r.key, r.value))
             for r in records],
            to_key=self._to_key, to_value=self._to_value,
        )  # fmt: skip


ROCKSDB_SIZES = {"write_buffer_size": 4 * 1024 * 1024, "max_write_buffer_number": 2}
"""Memtables per partition database; all of them together stay within the worker's budget
(streams/rocksdb_budget.py). Faust's defaults are three of 64 MB each."""


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
advocates = _table("join-advocates", "advocate id → AdvocateState")
orders = _table("join-orders", "order_id → OrderIndexState")

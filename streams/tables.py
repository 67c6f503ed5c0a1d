"""The join's changelog-backed tables, one per keyed stage (see agents/rules.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import faust
from faust.stores.rocksdb import Store as RocksDBStore
from faust.types import TP, StoreT
from rocksdict import Rdict, WriteBatch

from streams.app import app, settings
from streams.producer import BatchProducer
from streams.rocksdb_budget import BudgetedOptions

__all__ = [
    "DurableTable",
    "advocates",
    "customers",
    "emails",
    "orders",
    "referrals",
    "write_acknowledged",
]


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


_READER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rocksdb-read")
"""Runs the tables' RocksDB multi-gets: rocksdict releases the GIL for them, so the event
loop's thread goes on with other stages' work meanwhile (one thread: the loop has the other
core of a two-core machine's worker)."""


class DurableTable(faust.Table):
    """A Table whose batch writes go to the changelog first and to the store second.

    ``table[key] = value`` writes the store at once and queues the changelog record in
    Faust's ``send_soon`` buffer, one future per key, and the RocksDB store moves its
    persisted offset whenever a record is acknowledged. :meth:`write` instead sends one
    batch per changelog partition, waits for the broker, and then applies the acknowledged
    records to the store the way recovery does (data and persisted offset together). A
    crash at any point leaves the store at or behind its changelog, never ahead of it, and
    recovery fills the gap.

    Reads go to the store, on a thread of their own (:meth:`read_many`). Earlier versions
    kept the values written last in memory as well (20 MB over five tables); once reads
    left the event loop's thread, keeping them cost that thread more than it saved.
    """

    def _new_store(self) -> StoreT:
        store = super()._new_store()
        if isinstance(store, RocksDBStore) and store.use_rocksdict:
            store.rocksdb_options = BudgetedOptions(settings.rocksdb_memory_bytes, **ROCKSDB_SIZES)
        return store

    def _sensed(self) -> bool:
        """Whether Faust has sensors to tell of reads and writes (none with
        ``REFSTREAM_FAUST_SENSOR=false``, where telling them was two calls a key for
        nothing)."""
        return next(iter(self.app.sensors), None) is not None

    async def read(self, key: bytes, partition: int) -> bytes | None:
        """The stored value of ``key``, which lives in ``partition`` (see :meth:`read_many`)."""
        return (await self.read_many([(key, partition)]))[key]

    async def read_many(self, keys: Sequence[tuple[bytes, int]]) -> dict[bytes, bytes | None]:
        """The stored values of ``(key, partition)`` pairs; each read is counted by the
        sensors as a table get.

        They are read with one multi-get per partition's database (RocksDB's
        ``MultiGet``: about 1.4 µs a key found, against 3.3 µs for a get each), on the
        ``_READER`` thread: the worker's event loop is its busiest thread, and the reads
        were 7 % of its time. Outside a stream event Faust's RocksDB store looks for a key
        in every partition's database (``key_may_exist`` on each, then a get); a batch knows
        each key's partition, so this reads that one database.

        Only the table's stage writes it, and it waits for its reads, so what is read is
        current; a database that a rebalance drops meanwhile stays open until its read
        ends (Faust never closes one, it lets it go).
        """
        found: dict[bytes, bytes | None] = {}
        missing: dict[int, list[bytes]] = {}
        if self._sensed():
            for key, _ in keys:
                self.on_key_get(key)
        for key, partition in keys:
            wanted = missing.get(partition)
            if wanted is None:
                missing[partition] = [key]
            else:
                wanted.append(key)
        if not missing:
            return found
        store = self.data
        db_for_partition = getattr(store, "_db_for_partition", None)
        if db_for_partition is None:  # the memory store: one dict for all partitions
            for wanted in missing.values():
                found.update((key, store.get(key)) for key in wanted)
            return found
        reads = [(db_for_partition(partition), wanted) for partition, wanted in missing.items()]
        values = await asyncio.get_running_loop().run_in_executor(_READER, _multi_get, reads)
        for (_, wanted), got in zip(reads, values, strict=True):
            found.update(zip(wanted, got, strict=True))
        return found

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
        last_offsets = await producer.send_keyed(topic, items)
        if self._sensed():
            for key, value, _ in items:
                self._sensor_on_set(self, key, value)
        store = self.data
        if isinstance(store, RocksDBStore) and store.use_rocksdict:
            write_acknowledged(store._db_for_partition, store.offset_key, items, last_offsets)
        else:  # the memory store keeps no offsets
            store.apply_changelog_batch(
                [_ChangelogEvent(_Message(topic, part, last_offsets[part], key, value))
                 for key, value, part in items],
                to_key=self._to_key, to_value=self._to_value,
            )  # fmt: skip


def _multi_get(reads: list[tuple[Rdict, list[bytes]]]) -> list[list[bytes | None]]:
    return [db.get(wanted) for db, wanted in reads]


def write_acknowledged(
    db_for_partition: Callable[[int], Rdict],
    offset_key: bytes,
    items: Sequence[tuple[bytes, bytes | None, int]],
    last_offsets: dict[int, int],
) -> None:
    """Apply acknowledged changelog records, ``(key, value, partition)`` with each
    partition's last offset, to RocksDB as Faust's recovery does: each partition's records
    and its persisted offset (read back by ``Store.persisted_offset``) in one write batch, so
    a crash keeps both or neither.

    What ``Store.apply_changelog_batch`` does, without an event object per record and with
    the offset in the batch rather than a write of its own.
    """
    batches = {partition: WriteBatch(raw_mode=True) for partition in last_offsets}
    for key, value, partition in items:
        if value is None:
            batches[partition].delete(key)
        else:
            batches[partition].put(key, value)
    for partition, batch in batches.items():
        batch.put(offset_key, str(last_offsets[partition]).encode())
        db_for_partition(partition).write(batch)


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

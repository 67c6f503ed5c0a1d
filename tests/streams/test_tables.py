"""Acknowledged changelog records applied to RocksDB (``streams.tables.write_acknowledged``):
what Faust's own store then reads, the values and each partition's persisted offset."""

from __future__ import annotations

import asyncio

import pytest
from rocksdict import Options, Rdict

from streams.tables import write_acknowledged

OFFSET_KEY = b"__faust\0offset__"  # faust.stores.rocksdb.Store.offset_key


def test_records_and_each_partition_s_offset_are_written_together(tmp_path):
    dbs = {p: Rdict(str(tmp_path / f"p{p}"), options=Options(raw_mode=True)) for p in (0, 1)}
    dbs[0][b"gone"] = b"old"
    items = [(b"a", b"1", 0), (b"b", b"2", 1), (b"gone", None, 0), (b"a", b"3", 0)]
    write_acknowledged(dbs.__getitem__, OFFSET_KEY, items, {0: 12, 1: 4})
    assert dbs[0].get(b"a") == b"3"  # the later record of a key wins
    assert dbs[0].get(b"gone") is None
    assert dbs[1].get(b"b") == b"2"
    # as Store.persisted_offset reads it: int() of the stored bytes
    assert [int(dbs[p][OFFSET_KEY]) for p in (0, 1)] == [12, 4]
    for db in dbs.values():
        db.close()


class AckingProducer:
    """Acknowledges every record with the next offset, as the broker would."""

    def __init__(self) -> None:
        self.offset = 0

    async def send_keyed(self, topic: str, items: list) -> dict[int, int]:
        last = {}
        for _, _, partition in items:
            last[partition], self.offset = self.offset, self.offset + 1
        return last


@pytest.fixture
def table(monkeypatch):
    """The orders table on a memory store (a RocksDB store would open files in ./data)."""
    from faust.stores.memory import Store as MemoryStore

    from streams import tables
    from streams.app import app

    table = tables.orders
    monkeypatch.setattr(table, "_data", MemoryStore("memory://", app=app, table=table))
    return table


def test_a_table_reads_what_it_wrote_and_nothing_else(table):
    asyncio.run(table.write(AckingProducer(), [(b"o1", b"v1", 0), (b"o2", b"v2", 1)]))
    assert (asyncio.run(table.read(b"o1", 0)), asyncio.run(table.read(b"o2", 1))) == (b"v1", b"v2")
    asyncio.run(table.write(AckingProducer(), [(b"o1", None, 0)]))  # a deletion
    assert asyncio.run(table.read_many([(b"o1", 0), (b"o2", 1), (b"o3", 0)])) == {
        b"o1": None, b"o2": b"v2", b"o3": None,
    }  # fmt: skip


def test_many_keys_are_read_at_once_from_each_partition_s_database(tmp_path):
    """One multi-get per partition: each key is looked up in its own partition's database."""
    from streams import tables

    dbs = {p: Rdict(str(tmp_path / f"p{p}"), options=Options(raw_mode=True)) for p in (0, 1)}
    dbs[0][b"a"], dbs[1][b"b"], dbs[1][b"a"] = b"a0", b"b1", b"a in the wrong partition"

    class Store:
        def _db_for_partition(self, partition: int) -> Rdict:
            return dbs[partition]

    table = tables.orders
    real = table._data
    table._data = Store()
    try:
        got = asyncio.run(table.read_many([(b"a", 0), (b"b", 1), (b"c", 1), (b"d", 0), (b"e", 1)]))
    finally:
        table._data = real
        for db in dbs.values():
            db.close()
    assert got == {b"a": b"a0", b"b": b"b1", b"c": None, b"d": None, b"e": None}


def test_faust_sensors_see_each_read_and_write_when_there_are_any(table):
    """With no sensor (``REFSTREAM_FAUST_SENSOR=false``) the per-key calls are skipped; a
    sensor, when there is one, is told of every key read and written."""
    from faust.sensors import Sensor

    class Recording(Sensor):
        def __init__(self) -> None:
            super().__init__()
            self.gets: list[bytes] = []
            self.sets: list[tuple[bytes, bytes | None]] = []

        def on_table_get(self, table, key) -> None:
            self.gets.append(key)

        def on_table_set(self, table, key, value) -> None:
            self.sets.append((key, value))

    sensors = table.app.sensors
    before = list(sensors)
    for sensor in before:
        sensors.remove(sensor)
    assert not table._sensed()
    recording = Recording()
    sensors.add(recording)
    try:
        asyncio.run(table.write(AckingProducer(), [(b"o1", b"v1", 0), (b"o2", None, 1)]))
        asyncio.run(table.read_many([(b"o1", 0), (b"o3", 1)]))
    finally:
        sensors.remove(recording)
        for sensor in before:
            sensors.add(sensor)
    assert recording.sets == [(b"o1", b"v1"), (b"o2", None)]
    assert recording.gets == [b"o1", b"o3"]

"""The worker's table sizes, read from the stores themselves."""

from types import SimpleNamespace

from rocksdict import Rdict

from streams.monitor import table_keys


def test_table_keys_sum_every_partition_database_or_count_the_memory_store(tmp_path):
    dbs = {0: Rdict(str(tmp_path / "p0")), 3: Rdict(str(tmp_path / "p3"))}
    for n in range(30):
        dbs[0 if n % 3 else 3][f"key-{n}".encode()] = b"{}"
    try:
        assert table_keys(SimpleNamespace(_dbs=dbs)) == 30  # RocksDB's estimate: exact here
    finally:
        for db in dbs.values():
            db.close()
    assert table_keys(SimpleNamespace(data={b"a": b"1", b"b": b"2"})) == 2

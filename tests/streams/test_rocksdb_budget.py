"""The worker's partition databases share one RocksDB memory budget."""

from __future__ import annotations

import os
import subprocess
import sys

from streams.rocksdb_budget import MEMTABLE_SHARE, BudgetedOptions, BudgetUsage, shared_memory

MB = 1024 * 1024


def test_databases_share_one_memtable_budget_and_keep_their_data(tmp_path):
    budget = 16 * MB
    options = BudgetedOptions(budget, write_buffer_size=4 * MB, max_write_buffer_number=2)
    databases = [options.open(tmp_path / f"p{i}") for i in range(12)]
    block_cache, memtables = shared_memory(budget)
    value = os.urandom(256)
    written = 0
    peak = 0
    for n in range(200_000):  # ~51 MB of values; on their own, 12 x 8 MB of memtables
        databases[n % len(databases)][f"key-{n}".encode()] = value
        written += len(value)
        if n % 1000 == 0:
            peak = max(peak, memtables.get_usage())
    assert written > 3 * budget
    # The limit is soft (flushes run in the background, each database keeps an arena block
    # of an eighth of write_buffer_size), but far under the 96 MB twelve would fill alone
    # and under what was written; and the memtables count against the shared block cache.
    assert budget * MEMTABLE_SHARE / 2 < peak <= 2 * budget
    assert block_cache.get_usage() >= memtables.get_usage()
    for n in (0, 99_999, 199_999):
        assert databases[n % len(databases)][f"key-{n}".encode()] == value
    for database in databases:
        database.close()
    reopened = options.open(tmp_path / "p0")
    assert reopened[b"key-0"] == value
    reopened.close()


def test_the_budget_is_one_cache_and_one_manager_per_size():
    assert shared_memory(32 * MB) is shared_memory(32 * MB)
    block_cache, memtables = shared_memory(32 * MB)
    assert memtables.get_buffer_size() == int(32 * MB * MEMTABLE_SHARE)
    assert shared_memory(48 * MB)[0] is not block_cache


def test_the_budget_usage_metric_reads_the_shared_cache_and_memtables(tmp_path):
    budget = 8 * MB
    database = BudgetedOptions(budget, write_buffer_size=4 * MB).open(tmp_path / "db")
    for n in range(5_000):
        database[f"key-{n}".encode()] = os.urandom(200)

    def sample(kind: str) -> float:
        [family] = BudgetUsage(budget).collect()
        return next(s.value for s in family.samples if s.labels["kind"] == kind)

    block_cache, memtables = shared_memory(budget)
    assert sample("budget") == budget
    assert sample("memtables") == memtables.get_usage() > 5_000 * 200 / 2
    assert sample("block_cache") == block_cache.get_usage() >= sample("memtables")


_WRITER = """
import os, sys
from rocksdict import WriteBatch
from streams.rocksdb_budget import BudgetedOptions
db = BudgetedOptions(8 * 1024 * 1024).open(sys.argv[1])
for n in range(3):  # as write_acknowledged writes: the data and the offset in one batch
    batch = WriteBatch(raw_mode=True)
    batch.put(b"key-%d" % n, b"value")
    batch.put(b"__offset__", b"%d" % n)
    db.write(batch)
if sys.argv[2] == "kill":
    os.kill(os.getpid(), 9)
del db  # as Faust lets go of a database on revocation and on stop
"""


def _write_then(tmp_path, end: str) -> dict[bytes, bytes | None]:
    path = tmp_path / "db"
    subprocess.run([sys.executable, "-c", _WRITER, str(path), end], check=False)
    database = BudgetedOptions(8 * MB).open(path)
    try:
        return {key: database.get(key) for key in (b"key-0", b"key-2", b"__offset__")}
    finally:
        database.close()


def test_a_crash_loses_the_unflushed_data_and_its_offset_together(tmp_path):
    """No write-ahead log: what a kill loses is the memtables, data and offset alike, so
    the store is behind its changelog (recovery reads it again), never inconsistent."""
    assert _write_then(tmp_path, "kill") == {b"key-0": None, b"key-2": None, b"__offset__": None}


def test_a_database_let_go_keeps_its_writes(tmp_path):
    assert _write_then(tmp_path, "drop") == {
        b"key-0": b"value",
        b"key-2": b"value",
        b"__offset__": b"2",
    }

"""One RocksDB memory budget for all of a worker's table-partition databases.

Faust opens one database per table partition (five tables of eight partitions), each with
its own block cache and memtables. A worker's RocksDB memory therefore grew with the data
until every database's cache and memtables were full, and with the number of partitions it
owned: about 8.6 MB per database, 385 MB for forty (README, performance), so a worker that
took over its partner's partitions after a kill settled hundreds of MB higher. Here every
database shares one LRU block cache, which also holds the index and filter blocks, and one
write-buffer manager whose memtables are charged to that cache, so RocksDB stays within
``REFSTREAM_ROCKSDB_MEMORY_MB`` however many partitions a worker owns (RocksDB wiki:
"Memory usage in RocksDB", "Write Buffer Manager").
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import rocksdict
from faust.stores.rocksdb import RocksDBOptions
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["BudgetUsage", "BudgetedOptions", "shared_memory"]

MEMTABLE_SHARE = 0.5
"""Of the budget, the part memtables may fill before the manager makes a database flush."""


@cache
def shared_memory(budget_bytes: int) -> tuple[rocksdict.Cache, rocksdict.WriteBufferManager]:
    """The process's block cache and write-buffer manager for ``budget_bytes``."""
    block_cache = rocksdict.Cache(budget_bytes)
    memtables = rocksdict.WriteBufferManager.new_write_buffer_manager_with_cache(
        int(budget_bytes * MEMTABLE_SHARE), False, block_cache
    )
    return block_cache, memtables


MEMTABLE_BLOOM_RATIO = 0.1
"""Of each memtable, the part its bloom filter takes (RocksDB's recommended 10 %)."""


class BudgetedOptions(RocksDBOptions):
    """Faust's RocksDB options (rocksdict driver), with the cache and memtables shared."""

    def __init__(self, budget_bytes: int, **options: Any) -> None:
        super().__init__(use_rocksdict=True, **options)
        self.budget_bytes = budget_bytes

    def open(self, path: Path, *, read_only: bool = False) -> rocksdict.Rdict:
        """Faust's database, writing without RocksDB's write-ahead log.

        The changelog is the table's log: a store's data and its persisted changelog offset
        are written in one batch (``streams.tables.write_acknowledged``), so a crash that
        loses the memtables loses both together and recovery reads the changelog from the
        older offset. A database that is closed or dropped (Faust drops it on revocation
        and on stop) flushes its memtables first. Kafka Streams' stores write the same way;
        the log cost about half of each write (1.6 of 2.9 µs a 700-byte value).
        """
        db = super().open(path, read_only=read_only)
        without_log = rocksdict.WriteOptions()
        without_log.disable_wal = True
        db.set_write_options(without_log)
        return db

    def as_options(self) -> rocksdict.Options:
        block_cache, memtables = shared_memory(self.budget_bytes)
        options = rocksdict.Options(raw_mode=True)
        options.create_if_missing(True)
        options.set_max_open_files(self.max_open_files)
        options.set_write_buffer_size(self.write_buffer_size)
        options.set_max_write_buffer_number(self.max_write_buffer_number)
        options.set_target_file_size_base(self.target_file_size_base)
        options.set_write_buffer_manager(memtables)
        # A bloom filter per memtable: most reads are of keys not written yet (a new
        # referral, email, customer or order), which would otherwise walk each memtable's
        # skip list (3.5 -> 2.8 us a key read in a worker, bench join).
        options.set_memtable_prefix_bloom_ratio(MEMTABLE_BLOOM_RATIO)
        options.set_memtable_whole_key_filtering(True)
        table = rocksdict.BlockBasedOptions()
        table.set_bloom_filter(self.bloom_filter_size, True)
        table.set_block_cache(block_cache)
        table.set_cache_index_and_filter_blocks(True)
        table.set_pin_l0_filter_and_index_blocks_in_cache(True)
        options.set_block_based_table_factory(table)
        return options


class BudgetUsage(Collector):
    """``refstream_rocksdb_memory_bytes{kind}``: the shared budget, what its block cache
    holds (memtables are charged to it, index and filter blocks live in it) and the
    memtables' part, so that an SRE can tell RocksDB's memory from the rest of the RSS."""

    def __init__(self, budget_bytes: int) -> None:
        self.budget_bytes = budget_bytes

    def collect(self) -> Iterator[GaugeMetricFamily]:
        block_cache, memtables = shared_memory(self.budget_bytes)
        family = GaugeMetricFamily(
            "refstream_rocksdb_memory_bytes",
            "RocksDB memory of this worker's table databases, all sharing one budget",
            labels=["kind"],
        )
        family.add_metric(["budget"], self.budget_bytes)
        family.add_metric(["block_cache"], block_cache.get_usage())
        family.add_metric(["memtables"], memtables.get_usage())
        yield family

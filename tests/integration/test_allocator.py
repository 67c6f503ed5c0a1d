"""A worker runs on jemalloc where it is installed, unless told otherwise (streams/allocator.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.allocator import LIBRARY, find_jemalloc

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(find_jemalloc() is None, reason="libjemalloc2 is not installed"),
]


def loaded(worker) -> bool:
    return LIBRARY in Path(f"/proc/{worker.process.pid}/maps").read_text()


async def test_a_worker_runs_on_jemalloc_and_on_glibc_when_told(pipeline):
    default = await pipeline.start_worker("default")
    system = await pipeline.start_worker("system", REFSTREAM_MALLOC="system")
    assert loaded(default)  # the pid the harness started: the worker executed itself again
    assert "memory allocator=jemalloc" in default.log_path.read_text()
    assert not loaded(system)
    assert "memory allocator=system malloc_setting=system" in system.log_path.read_text()

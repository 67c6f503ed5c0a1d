"""The worker's memory allocator: jemalloc where it is installed.

Under RocksDB's allocations glibc's malloc fragments: after one worker loaded 1M referrals
its heap held 392 MB of which 157 MB were in use (``mallinfo2``), and none of the rest went
back to the system (``malloc_trim`` freed nothing); capping its arenas did not help (README,
performance). jemalloc hands freed pages back: the same load peaked at 495 MB and settled
at 284 MB. RocksDB's users report the same (facebook/rocksdb#5222, samply/blaze#1030).

An allocator is chosen when a process starts (``LD_PRELOAD``), so ``refstream worker``
executes itself once more with jemalloc preloaded (``REFSTREAM_MALLOC``: ``auto``, the
default, uses it when installed; ``jemalloc`` requires it; ``system`` keeps glibc's).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path

from sinks.errors import ConfigurationError

__all__ = ["LIBRARY", "Malloc", "find_jemalloc", "in_use", "preload_environment", "reexec"]

LIBRARY = "libjemalloc.so.2"
_DIRECTORIES = (
    "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib",
    "/usr/local/lib",
)  # fmt: skip
"""Where Debian (``libjemalloc2``), Fedora and source builds install it."""


class Malloc(StrEnum):
    AUTO = "auto"
    JEMALLOC = "jemalloc"
    SYSTEM = "system"


def find_jemalloc(directories: tuple[str, ...] | None = None) -> str | None:
    for directory in _DIRECTORIES if directories is None else directories:
        path = Path(directory) / LIBRARY
        if path.is_file():
            return str(path)
    return None


def preload_environment(
    choice: Malloc, environ: Mapping[str, str], library: str | None
) -> dict[str, str] | None:
    """The environment to execute the worker again with, or None to go on as it is.

    ``library`` is jemalloc's path (None: not installed). Raises ``ConfigurationError``
    when ``REFSTREAM_MALLOC=jemalloc`` and it is not installed.
    """
    preloaded = environ.get("LD_PRELOAD", "")
    if choice is Malloc.SYSTEM or LIBRARY in preloaded:  # chosen, or done (by us or by hand)
        return None
    if library is None:
        if choice is Malloc.JEMALLOC:
            raise ConfigurationError(
                f"REFSTREAM_MALLOC=jemalloc but {LIBRARY} is not installed "
                "(Debian and Ubuntu: apt-get install libjemalloc2)"
            )
        return None
    return {**environ, "LD_PRELOAD": f"{library} {preloaded}".strip()}


def in_use() -> str:
    """``jemalloc`` when this process has it loaded, else ``system``."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return Malloc.SYSTEM.value
    return Malloc.JEMALLOC.value if LIBRARY in maps else Malloc.SYSTEM.value


def reexec(choice: Malloc) -> None:
    """Execute this same command again with jemalloc preloaded, if ``choice`` asks for it
    and it is not loaded yet; otherwise return."""
    environment = preload_environment(choice, os.environ, find_jemalloc())
    if environment is not None:
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], environment)

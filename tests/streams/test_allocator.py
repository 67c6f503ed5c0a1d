"""The worker picks its allocator before anything else is loaded (streams/allocator.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sinks.errors import ConfigurationError
from streams.allocator import LIBRARY, Malloc, find_jemalloc, preload_environment

JEMALLOC = f"/usr/lib/x86_64-linux-gnu/{LIBRARY}"


def test_auto_preloads_jemalloc_when_installed_and_keeps_what_was_preloaded():
    env = preload_environment(Malloc.AUTO, {"PATH": "/bin", "LD_PRELOAD": "libother.so"}, JEMALLOC)
    assert env == {"PATH": "/bin", "LD_PRELOAD": f"{JEMALLOC} libother.so"}


def test_nothing_to_do_once_preloaded_for_system_or_when_auto_finds_none():
    assert preload_environment(Malloc.AUTO, {"LD_PRELOAD": JEMALLOC}, JEMALLOC) is None
    assert preload_environment(Malloc.JEMALLOC, {"LD_PRELOAD": JEMALLOC}, JEMALLOC) is None
    assert preload_environment(Malloc.SYSTEM, {}, JEMALLOC) is None
    assert preload_environment(Malloc.AUTO, {}, None) is None


def test_required_but_missing_jemalloc_is_a_configuration_error_naming_the_setting():
    with pytest.raises(ConfigurationError, match=r"REFSTREAM_MALLOC=jemalloc.*libjemalloc2"):
        preload_environment(Malloc.JEMALLOC, {}, None)


def test_find_jemalloc_looks_in_the_given_directories(tmp_path):
    assert find_jemalloc((str(tmp_path),)) is None
    (tmp_path / LIBRARY).write_bytes(b"")
    assert find_jemalloc(("/nonexistent", str(tmp_path))) == str(tmp_path / LIBRARY)


@pytest.mark.skipif(find_jemalloc() is None, reason="libjemalloc2 is not installed")
def test_the_process_executes_itself_again_on_jemalloc():
    code = (
        "import os; from streams import allocator;"
        "print(os.getpid(), allocator.in_use(), flush=True);"
        "allocator.reexec(allocator.Malloc.AUTO)"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": "."}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout.split()  # fmt: skip
    # the same process (exec keeps the pid) ran twice: first on glibc, then on jemalloc
    assert out[1::2] == ["system", "jemalloc"]
    assert out[0] == out[2]


@pytest.mark.parametrize("value", ["tcmalloc", "jemalloc"])
def test_a_worker_refuses_a_wrong_or_unmet_setting_in_one_line(value, tmp_path):
    # an empty directory on the search path is not where jemalloc is: with "jemalloc" the
    # library must be missing for the refusal, so the test runs it with the search emptied
    code = (
        "import sys; from streams import allocator, cli;"
        "allocator._DIRECTORIES = ();"
        "sys.argv = ['refstream', 'worker']; cli.main()"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": ".", "REFSTREAM_MALLOC": value},
    )  # fmt: skip
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("refstream: configuration error: REFSTREAM_MALLOC")

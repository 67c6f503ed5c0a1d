"""The ``refstream`` console script (and ``python -m streams``).

A worker first makes sure it runs on the allocator ``REFSTREAM_MALLOC`` asks for
(:mod:`streams.allocator`); that may execute the process again, so it happens before the
app and everything it imports are loaded.
"""

from __future__ import annotations

import sys

from sinks.errors import ConfigurationError

__all__ = ["main"]


def main() -> None:
    if "worker" in sys.argv[1:]:
        from streams import allocator
        from streams.settings import load_settings

        try:
            allocator.reexec(load_settings().malloc)
        except ConfigurationError as exc:  # the same one line the app gives for any setting
            sys.stderr.write(f"refstream: configuration error: {exc}\n")
            sys.exit(2)
    from streams.app import main as app_main

    app_main()

"""``refstream gateway`` (also ``python -m gateway``): one gateway process."""

from __future__ import annotations

import asyncio
import logging
import sys

from gateway.server import serve
from gateway.settings import load_gateway_settings
from sinks.errors import ConfigurationError
from streams.logs import quiet_aiokafka
from streams.settings import load_settings

__all__ = ["main"]


def main() -> None:
    """Refuses to start, with one line naming the variables and exit status 2, when the
    settings are wrong or no source is enabled."""
    try:
        settings = load_settings()
        gateway = load_gateway_settings()
    except ConfigurationError as exc:
        sys.stderr.write(f"refstream: configuration error: {exc}\n")
        sys.exit(2)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    quiet_aiokafka()
    asyncio.run(serve(settings, gateway))


if __name__ == "__main__":
    main()

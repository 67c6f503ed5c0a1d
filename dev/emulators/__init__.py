"""Local emulators of the vendors' APIs (dev tooling: tests and ``make demo``)."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web

from dev.broker import free_port
from dev.emulators.base import Emulator, Faults
from dev.emulators.hubspot import HubSpotEmulator
from dev.emulators.klaviyo import KlaviyoEmulator
from dev.emulators.mixpanel import MixpanelEmulator
from sinks.registry import load, sink_class, sink_names

__all__ = [
    "Emulator",
    "Faults",
    "HubSpotEmulator",
    "KlaviyoEmulator",
    "MixpanelEmulator",
    "RunningEmulators",
    "emulator_for",
    "running_emulators",
]


@dataclass
class RunningEmulators:
    """One emulator per sink, by sink name; ``urls`` and attributes by emulator name
    (``emulators.klaviyo``, ``emulators.urls["klaviyo"]``)."""

    by_sink: dict[str, Emulator]
    urls: dict[str, str]

    def __getattr__(self, name: str) -> Emulator:
        for emulator in self.by_sink.values():
            if emulator.name == name:
                return emulator
        raise AttributeError(name)

    def env(self) -> dict[str, str]:
        """The worker settings that point every sink at its emulator."""
        env: dict[str, str] = {}
        for emulator in self.by_sink.values():
            env |= emulator.env(self.urls[emulator.name])
        return env


def emulator_for(sink: str) -> Emulator:
    """A fresh emulator of the vendor behind ``sink`` (the class the sink declares)."""
    return load(sink_class(sink).emulator)()


@asynccontextmanager
async def running_emulators(sinks: Iterable[str] | None = None, host: str = "127.0.0.1",
                            ports: dict[str, int] | None = None):  # fmt: skip
    """An emulator per sink (default: every registered one), each on its own port (free
    ones unless ``ports`` names them by emulator), in the current event loop."""
    by_sink = {sink: emulator_for(sink) for sink in (sinks or sink_names())}
    runners, urls = [], {}
    try:
        for emulator in by_sink.values():
            runner = web.AppRunner(emulator.app(), access_log=None)
            await runner.setup()
            port = (ports or {}).get(emulator.name) or free_port()
            await web.TCPSite(runner, host, port).start()
            runners.append(runner)
            urls[emulator.name] = f"http://{host}:{port}"
        yield RunningEmulators(by_sink, urls)
    finally:
        for runner in runners:
            await runner.cleanup()

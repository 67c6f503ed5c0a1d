"""Local emulators of the vendors' APIs (dev tooling: tests and ``make demo``)."""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web

from dev.broker import free_port
from dev.emulators.base import Emulator, Faults
from dev.emulators.hubspot import HubSpotEmulator
from dev.emulators.klaviyo import KlaviyoEmulator
from dev.emulators.mixpanel import MixpanelEmulator
from dev.emulators.webhook import WebhookEmulator

__all__ = [
    "Emulator",
    "Faults",
    "HubSpotEmulator",
    "KlaviyoEmulator",
    "MixpanelEmulator",
    "RunningEmulators",
    "WebhookEmulator",
    "running_emulators",
]


@dataclass
class RunningEmulators:
    hubspot: HubSpotEmulator
    klaviyo: KlaviyoEmulator
    mixpanel: MixpanelEmulator
    urls: dict[str, str]

    def env(self) -> dict[str, str]:
        """The worker settings that point every sink at its emulator."""
        return {
            "HUBSPOT_API_URL": self.urls["hubspot"],
            "HUBSPOT_ACCESS_TOKEN": self.hubspot.token,
            "KLAVIYO_API_URL": self.urls["klaviyo"],
            "KLAVIYO_API_KEY": self.klaviyo.api_key,
            "MIXPANEL_API_URL": self.urls["mixpanel"],
            "MIXPANEL_PROJECT_TOKEN": self.mixpanel.token,
            "MIXPANEL_PROJECT_ID": self.mixpanel.project_id,
        }


@asynccontextmanager
async def running_emulators():
    """All three emulators on free loopback ports, in the current event loop."""
    emulators = {"hubspot": HubSpotEmulator(), "klaviyo": KlaviyoEmulator(),
                 "mixpanel": MixpanelEmulator()}  # fmt: skip
    runners, urls = [], {}
    try:
        for name, emulator in emulators.items():
            runner = web.AppRunner(emulator.app(), access_log=None)
            await runner.setup()
            port = free_port()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            runners.append(runner)
            urls[name] = f"http://127.0.0.1:{port}"
        yield RunningEmulators(**emulators, urls=urls)
    finally:
        for runner in runners:
            await runner.cleanup()

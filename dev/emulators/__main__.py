"""``python -m dev.emulators``: the three vendor emulators as a standalone server (compose).

Each listens on its own port; credentials come from the same variables the worker reads,
so one ``.env`` wires both sides. Faults are set over HTTP (``POST /_control/faults``).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os

from aiohttp import web

from dev.emulators import HubSpotEmulator, KlaviyoEmulator, MixpanelEmulator

log = logging.getLogger("refstream.emulators")


async def serve(host: str, ports: dict[str, int]) -> None:
    env = os.environ
    emulators = {
        "hubspot": HubSpotEmulator(env.get("HUBSPOT_ACCESS_TOKEN", "hubspot-test-token")),
        "klaviyo": KlaviyoEmulator(env.get("KLAVIYO_API_KEY", "klaviyo-test-key")),
        "mixpanel": MixpanelEmulator(
            env.get("MIXPANEL_PROJECT_TOKEN", "mixpanel-test-token"),
            env.get("MIXPANEL_PROJECT_ID", "4242"),
        ),
    }
    for name, emulator in emulators.items():
        runner = web.AppRunner(emulator.app(), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, ports[name]).start()
        log.info("emulator listening vendor=%s url=http://%s:%d", name, host, ports[name])
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--hubspot-port", type=int, default=8101)
    parser.add_argument("--klaviyo-port", type=int, default=8102)
    parser.add_argument("--mixpanel-port", type=int, default=8103)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    ports = {"hubspot": args.hubspot_port, "klaviyo": args.klaviyo_port,
             "mixpanel": args.mixpanel_port}  # fmt: skip
    asyncio.run(serve(args.host, ports))


if __name__ == "__main__":
    main()

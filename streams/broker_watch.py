"""Does this worker still reach its broker? Its own client asks for metadata every
:data:`INTERVAL_SECONDS`, whatever the stages and sinks are doing.

The worker stays up while the broker is gone: aiokafka's consumers and producers reconnect
by themselves, nothing is committed past what was delivered, and a restart would only add a
table recovery to the outage. What an SRE and a load balancer need is to see it: the gauge
``refstream_broker_connected`` (alert ``RefstreamBrokerUnreachable``) and ``/readyz``, which
answers 503 once no contact has succeeded for :data:`STALE_SECONDS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from aiokafka.client import AIOKafkaClient

from streams.app import app, settings
from streams.metrics import BROKER_CONNECTED, BROKER_CONTACT_AGE

__all__ = ["broker_reachable", "watch_broker"]

INTERVAL_SECONDS = 2.0
STALE_SECONDS = 6.0

log = logging.getLogger(__name__)

_last_contact = time.monotonic()  # the pre-flight has just reached it
BROKER_CONNECTED.set(1)
BROKER_CONTACT_AGE.set_function(lambda: time.monotonic() - _last_contact)


def broker_reachable() -> bool:
    return time.monotonic() - _last_contact < STALE_SECONDS


@app.task
async def watch_broker() -> None:
    global _last_contact
    client = AIOKafkaClient(**settings.kafka.client_options(), request_timeout_ms=5000)
    connected = True
    try:
        while True:
            try:
                if not client.cluster.brokers():
                    await client.bootstrap()
                await asyncio.wait_for(client.fetch_all_metadata(), STALE_SECONDS - 1)
            except Exception as exc:  # any failure to get an answer is "not reached"
                if connected:
                    log.error("broker unreachable servers=%s error=%r",
                              settings.kafka_bootstrap_servers, exc)  # fmt: skip
                connected = False
            else:
                _last_contact = time.monotonic()
                if not connected:
                    log.info("broker reachable again servers=%s", settings.kafka_bootstrap_servers)
                connected = True
            BROKER_CONNECTED.set(1 if connected else 0)
            await asyncio.sleep(INTERVAL_SECONDS)
    finally:
        with contextlib.suppress(Exception):
            await client.close()

"""``refstream-dlq-gateway`` read back and replayed through the mapping (gateway.md §7.3).

A dead letter was authenticated when it arrived, so replay maps it without a signature, as
the source's mapping of the running version says (e.g. after a fix). Its event ids are the
ones the first delivery would have had: a replay that publishes twice is dropped by the join
(rule 1). A letter that still cannot be mapped stays where it is and is counted.
"""

from __future__ import annotations

import asyncio
from collections import Counter

from multidict import CIMultiDict

from gateway.pipeline import prepare, received_at
from gateway.publisher import Publisher
from gateway.settings import GatewaySettings
from gateway.sources import SOURCES, Ignored, Unmappable, WebhookRequest
from sinks.replay import DeadLetter, read_dead_letters
from streams.settings import Settings

__all__ = ["list_dead_letters", "replay_dead_letters"]

VENDOR_PREFIX = "vendor."
READY_TIMEOUT_SECONDS = 30.0
ACK_TIMEOUT_SECONDS = 30.0


async def list_dead_letters(settings: Settings, reason: str | None) -> list[DeadLetter]:
    return await read_dead_letters(settings.kafka, settings.topics.dlq_gateway, reason)


def _request(letter: DeadLetter) -> WebhookRequest:
    headers = CIMultiDict(
        (name.removeprefix(VENDOR_PREFIX), value)
        for name, value in letter.headers.items()
        if name.startswith(VENDOR_PREFIX)
    )
    if content_type := letter.headers.get("http.content_type"):
        headers["Content-Type"] = content_type
    return WebhookRequest(letter.headers.get("gateway.path", ""), headers, letter.record.value)


async def replay_dead_letters(
    settings: Settings, gateway: GatewaySettings, letters: list[DeadLetter]
) -> Counter[str]:
    """Outcome → count: ``published``, ``ignored``, ``unmappable:<reason>``,
    ``unknown_path`` or ``unavailable`` (the broker did not acknowledge)."""
    by_path = {source.path: source(gateway) for source in SOURCES}
    t = settings.topics
    publisher = Publisher(settings.kafka, [t.referrals, t.signups, t.orders])
    outcomes: Counter[str] = Counter()
    try:
        await asyncio.wait_for(publisher.run(), READY_TIMEOUT_SECONDS)
        for letter in letters:
            request = _request(letter)
            source = by_path.get(request.path)
            if source is None:
                outcomes["unknown_path"] += 1
                continue
            received = letter.headers.get("gateway.received_at") or received_at(0)
            try:
                prepared = prepare(source, request, t, received)
            except Unmappable as exc:
                outcomes[f"unmappable:{exc.reason}"] += 1
                continue
            if isinstance(prepared, Ignored):
                outcomes["ignored"] += 1
            elif await publisher.publish(prepared.records, ACK_TIMEOUT_SECONDS):
                outcomes["published"] += 1
            else:
                outcomes["unavailable"] += 1
    finally:
        await publisher.stop()
    return outcomes

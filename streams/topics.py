"""Topic declarations. Values travel as raw bytes: agents parse with orjson/pydantic."""

from __future__ import annotations

from faust.types import TopicT

from streams.app import app, settings

__all__ = [
    "STAGE_BUFFER_ENVELOPES",
    "STAGE_TOPICS",
    "by_advocate",
    "by_customer",
    "by_email",
    "by_order",
    "by_referral",
    "ensure_topic",
]

_t = settings.topics
_raw = {"key_serializer": "raw", "value_serializer": "raw"}
_internal = {"partitions": settings.partitions, "internal": True, **_raw}

STAGE_BUFFER_ENVELOPES = 32
"""Envelopes a stage's stream buffers ahead of its agent (Faust pauses fetching the topic
at 80 % of it). An envelope carries up to 256 KB of entries, and with Faust's buffer of
hundreds of records the envelopes queued behind busy stages, not the state, were what
made a loading worker's RSS climb (README, performance); 32 still hold tens of thousands
of entries, far more than a stage applies per batch."""


def _stage_topic(name: str) -> TopicT:
    topic = app.topic(name, **_internal)
    # ``App.topic`` takes ``maxsize`` but does not pass it on (faust-streaming 0.15.3); the
    # channel and its clones (the agent's stream) read the attribute.
    topic.maxsize = STAGE_BUFFER_ENVELOPES
    return topic


by_referral = _stage_topic(_t.by_referral)
"""The stages' inputs carry envelopes of keyed messages (:mod:`agents.envelopes`): the
referral stage's are re-keyed referrals and signups and every attribution with a referral."""
by_customer = _stage_topic(_t.by_customer)
by_email = _stage_topic(_t.by_email)
by_advocate = _stage_topic(_t.by_advocate)
by_order = _stage_topic(_t.by_order)

_declared: set[str] = set()


async def ensure_topic(name: str) -> None:
    """Create a topic the app produces to but never consumes, before its first record.

    Faust creates only the topics its agents read and its changelogs. Relying on broker
    auto-creation fails where it is disabled, and Tansu's auto-created partitions can come
    without a leader, which stalls the one producer every agent shares.
    """
    if name not in _declared:
        await app.topic(name, **_internal).maybe_declare()
        _declared.add(name)


STAGE_TOPICS = {
    "referral": _t.by_referral,
    "customer": _t.by_customer,
    "email": _t.by_email,
    "advocate": _t.by_advocate,
    "order": _t.by_order,
}
"""Stage → the topic that carries messages *to* it."""

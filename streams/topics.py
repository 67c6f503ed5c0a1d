"""Topic declarations. Values travel as raw bytes: agents parse with orjson/pydantic."""

from __future__ import annotations

from streams.app import app, settings

__all__ = [
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

by_referral = app.topic(_t.by_referral, **_internal)
"""The stages' inputs carry envelopes of keyed messages (:mod:`agents.envelopes`): the
referral stage's are re-keyed referrals and signups and every attribution with a referral."""
by_customer = app.topic(_t.by_customer, **_internal)
by_email = app.topic(_t.by_email, **_internal)
by_advocate = app.topic(_t.by_advocate, **_internal)
by_order = app.topic(_t.by_order, **_internal)

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

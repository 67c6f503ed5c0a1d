"""What each vendor must hold once every attribution is delivered once (tests and demo)."""

from __future__ import annotations

from collections.abc import Iterable

from dev.emulators import RunningEmulators
from schemas.attribution import AdvocateTotals, AttributionEvent
from sinks.hubspot import ORDER_KINDS, advocate_properties, friend_properties
from sinks.klaviyo import METRICS, profile_of
from sinks.mixpanel import insert_id

__all__ = ["expected_vendor_state", "vendor_state"]


def expected_vendor_state(
    emitted: Iterable[AttributionEvent], advocates: Iterable[AdvocateTotals] = ()
) -> dict:
    """:param advocates: each advocate's final total (``JoinSim.advocate_totals``)."""
    contacts: dict[str, dict[str, str]] = {}
    klaviyo, mixpanel = set(), set()
    for event in emitted:
        mixpanel.add(insert_id(event))
        if event.kind in METRICS and (person := profile_of(event)) and person.email:
            klaviyo.add((event.attribution_event_id, person.email, METRICS[event.kind]))
        mapped = event.kind == "friend_signed_up" or event.kind in ORDER_KINDS
        if mapped and event.friend and event.friend.email:
            contacts.setdefault(event.friend.email, {}).update(friend_properties(event))
    for totals in advocates:
        if totals.advocate.email:
            contacts.setdefault(totals.advocate.email, {}).update(advocate_properties(totals))
    return {"contacts": contacts, "klaviyo": klaviyo, "mixpanel": mixpanel}


def vendor_state(emulators: RunningEmulators) -> dict:
    events = emulators.klaviyo.state()["events"]
    return {
        "contacts": emulators.hubspot.contacts,
        "klaviyo": {(e["unique_id"], e["profile"], e["metric"]) for e in events},
        "mixpanel": set(emulators.mixpanel.events),
    }

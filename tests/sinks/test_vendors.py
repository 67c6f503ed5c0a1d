"""Each vendor sink against its emulator: mapping, spec validity, vendor dedup, partials."""

from __future__ import annotations

from sinks.delivery.deliverer import Deliverer

from .conftest import RecordingDLQ, attribution, items


def assert_spec_clean(emulator) -> None:
    assert emulator.invalid_requests == []
    assert emulator.response_violations == []


async def test_hubspot_upserts_friend_contacts_by_email(emulators, make_sink):
    sink = await make_sink("crm")
    dlq = RecordingDLQ("crm")
    batch = items(
        attribution(1), attribution(1, "referral_converted", source_event_id="evt_o1"),
        attribution(2), attribution(3, "signup_unattributed", friend=None),
    )  # fmt: skip
    await Deliverer(sink, dlq).deliver(batch)
    contacts = emulators.hubspot.contacts
    assert contacts["friend1@example.com"] == {
        "lead_source": "Referral", "referral_id": "ref_1", "referred_by": "adv1@example.com",
        "firstname": "Bob", "lifecyclestage": "customer", "referral_orders": "1",
        "referral_revenue": "49.90 EUR",
    }  # fmt: skip
    assert set(contacts) == {"friend1@example.com", "friend2@example.com"}
    assert emulators.hubspot.requests == 1  # one batch call, one input per email
    assert dlq.sent == []
    assert_spec_clean(emulators.hubspot)


async def test_hubspot_207_dead_letters_exactly_the_refused_inputs(emulators, make_sink):
    emulators.hubspot.faults.reject = {"friend2@example.com"}
    sink = await make_sink("crm")
    dlq = RecordingDLQ("crm")
    await Deliverer(sink, dlq).deliver(items(attribution(1), attribution(2), attribution(3)))
    assert set(emulators.hubspot.contacts) == {"friend1@example.com", "friend3@example.com"}
    assert len(dlq.sent) == 1
    topic, key, _, headers = dlq.sent[0]
    assert (topic, key) == ("refstream-dlq-crm", b"ref_2")
    assert headers["error.reason"] == b"rejected" and headers["sink"] == b"crm"
    assert headers["error.http_status"] == b"400"
    assert headers["source.offset"] == b"1"
    assert b"VALIDATION_ERROR" in headers["error.message"]
    assert emulators.hubspot.status_counts == {207: 1}
    assert_spec_clean(emulators.hubspot)


async def test_klaviyo_sends_welcome_and_reward_events_deduplicated_by_unique_id(
    emulators, make_sink
):
    sink = await make_sink("email")
    dlq = RecordingDLQ("email")
    signed = attribution(1)
    converted = attribution(1, "referral_converted", source_event_id="evt_o1")
    refunded = attribution(1, "order_refunded", source_event_id="evt_f1")
    deliverer = Deliverer(sink, dlq)
    await deliverer.deliver(items(signed, converted, refunded))
    await deliverer.deliver(items(signed))  # redelivery after a crash
    events = {(e["metric"], e["profile"]) for e in emulators.klaviyo.state()["events"]}
    assert events == {
        ("Referral Friend Signed Up", "friend1@example.com"),
        ("Referral Reward Earned", "adv1@example.com"),
    }
    assert emulators.klaviyo.duplicates == 1
    assert emulators.klaviyo.status_counts == {202: 3}
    assert_spec_clean(emulators.klaviyo)


async def test_mixpanel_imports_every_kind_and_dead_letters_failed_records(emulators, make_sink):
    bad = attribution(2)
    emulators.mixpanel.faults.reject = {bad.attribution_event_id}
    sink = await make_sink("analytics")
    dlq = RecordingDLQ("analytics")
    batch = items(
        attribution(1), bad, attribution(3, "referral_converted"),
        attribution(4, "order_unattributed", reason="window_expired"),
    )  # fmt: skip
    deliverer = Deliverer(sink, dlq)
    await deliverer.deliver(batch)
    await deliverer.deliver(batch)  # redelivered: $insert_id dedup
    stored = emulators.mixpanel.events
    assert len(stored) == 3 and bad.attribution_event_id not in stored
    assert emulators.mixpanel.duplicates == 3
    converted = stored[attribution(3, "referral_converted").attribution_event_id]
    assert converted["event"] == "Referral Referral Converted"
    assert converted["properties"]["amount"] == "49.90"
    assert "email" not in str(converted)  # no personal data in analytics
    assert [h["error.reason"] for _, _, _, h in dlq.sent] == [b"failed_record"] * 2
    assert_spec_clean(emulators.mixpanel)

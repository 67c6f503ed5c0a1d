"""Each vendor sink against its emulator: mapping, spec validity, vendor dedup, partials."""

from __future__ import annotations

from sinks import hubspot
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
    assert emulators.hubspot.requests_by_route[hubspot.PATH] == 1  # one call, one input per email
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
    assert emulators.hubspot.status_counts.get(207) == 1
    assert 400 not in emulators.hubspot.status_counts
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


def signups(count: int, start: int = 100) -> list:
    return [attribution(n) for n in range(start, start + count)]


async def test_klaviyo_sends_a_thick_stream_as_one_bulk_job_and_a_thin_one_as_single_events(
    emulators, make_sink
):
    sink = await make_sink("email")
    dlq = RecordingDLQ("email")
    deliverer = Deliverer(sink, dlq)
    thick = signups(300)
    await deliverer.deliver(items(*thick))
    assert emulators.klaviyo.bulk_jobs == 1 and emulators.klaviyo.requests == 1
    await deliverer.deliver(items(*signups(3, start=900)))  # thin: below bulk_from
    assert emulators.klaviyo.requests == 4 and emulators.klaviyo.bulk_jobs == 1
    assert len(emulators.klaviyo.events) == 303
    assert dlq.sent == [] and emulators.klaviyo.over_limit == 0
    assert_spec_clean(emulators.klaviyo)


async def test_klaviyo_bulk_never_carries_an_id_twice_and_a_redelivered_job_is_no_dead_letter(
    emulators, make_sink
):
    """The join re-emits after a crash: the same attribution twice in one fetch. A bulk job
    with a unique_id twice is refused whole by Klaviyo; the sink sends it once. A job that
    Klaviyo already took, sent again (kill -9 before the commit), is deduplicated."""
    sink = await make_sink("email")
    dlq = RecordingDLQ("email")
    deliverer = Deliverer(sink, dlq)
    batch = signups(40)
    await deliverer.deliver(items(*batch, *batch[:10]))
    await deliverer.deliver(items(*batch))
    assert emulators.klaviyo.status_counts == {202: 2}
    assert emulators.klaviyo.bulk_jobs == 2
    assert len(emulators.klaviyo.events) == 40 and emulators.klaviyo.duplicates == 40
    assert dlq.sent == []
    assert_spec_clean(emulators.klaviyo)


async def test_klaviyo_bulk_refused_for_one_bad_profile_delivers_the_rest(emulators, make_sink):
    batch = signups(50)
    bad = batch[17]
    emulators.klaviyo.faults.reject = {bad.attribution_event_id}
    sink = await make_sink("email")
    dlq = RecordingDLQ("email")
    await Deliverer(sink, dlq).deliver(items(*batch))
    assert len(emulators.klaviyo.events) == 49
    assert [key for _, key, _, _ in dlq.sent] == [bad.referral_id.encode()]
    assert_spec_clean(emulators.klaviyo)


async def test_segment_tracks_every_kind_once_without_personal_data(emulators, make_sink):
    sink = await make_sink("segment")
    dlq = RecordingDLQ("segment")
    anonymous = attribution(3, "signup_unattributed", friend=None, referral_id=None)
    batch = items(attribution(1), attribution(2, "referral_converted"), anonymous)
    deliverer = Deliverer(sink, dlq)
    await deliverer.deliver(batch)
    await deliverer.deliver(batch)  # redelivered: messageId dedup
    segment = emulators.segment
    assert set(segment.calls) == {item.event.attribution_event_id for item in batch}
    assert segment.duplicates == 3 and segment.requests == 2
    assert segment.dropped == [], "Segment answers 200 to calls it drops"
    converted = segment.calls[attribution(2, "referral_converted").attribution_event_id]
    assert converted["userId"] == "cus_2" and converted["event"] == "Referral Referral Converted"
    assert converted["properties"]["revenue"] == "49.90"
    assert segment.calls[anonymous.attribution_event_id]["anonymousId"] == "evt_3"
    assert "@" not in str(segment.calls)
    assert dlq.sent == []


async def test_segment_refuses_an_oversized_record_before_sending_it(emulators, make_sink):
    huge = attribution(2, campaign_id="x" * 40_000)
    sink = await make_sink("segment")
    dlq = RecordingDLQ("segment")
    await Deliverer(sink, dlq).deliver(items(attribution(1), huge, attribution(3)))
    assert len(emulators.segment.calls) == 2 and emulators.segment.dropped == []
    ((_, key, _, headers),) = dlq.sent
    assert key == b"ref_2" and headers["error.reason"] == b"too_large"
    assert headers["error.attempts"] == b"0"

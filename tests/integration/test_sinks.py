"""Fan-out to the vendors: real broker, worker subprocess, vendor emulators on loopback."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections import Counter

import orjson
import pytest

from dev.emulators.hubspot import HubSpotEmulator
from dev.expectations import expected_vendor_state as _expected
from dev.expectations import vendor_state
from dev.generator import Workload
from dev.kafka_io import produce, read_topic
from sinks.hubspot import ORDER_KINDS
from sinks.registry import sink_names

from .test_join import metric_samples, run_phases, total, unique_ids

pytestmark = pytest.mark.integration

SINKS = sink_names()
"""Every registered sink: these tests are the shared ones a new sink passes unchanged."""

CRM_KINDS = {"friend_signed_up", *(kind.value for kind in ORDER_KINDS)}

# Contract section 7 (sample names as scraped), plus a few of Faust's own sensor series.
FAMILIES = (
    "refstream_events_total", "refstream_attributions_total", "refstream_pending_events",
    "refstream_attribution_latency_seconds_bucket", "refstream_sink_requests_total",
    "refstream_sink_request_duration_seconds_bucket", "refstream_sink_retries_total",
    "refstream_sink_dlq_total", "refstream_sink_delivered_total",
    "refstream_sink_delivery_latency_seconds_bucket", "refstream_sink_circuit_open",
    "refstream_consumer_lag", "refstream_faust_messages_received_total",
    "refstream_faust_events_runtime_ms_bucket", "refstream_faust_table_operations_total",
)  # fmt: skip


def expected_vendor_state(expected) -> dict:
    return _expected(expected.emitted, expected.advocate_totals.values())


async def wait_for_vendors(emulators, want: dict, timeout: float = 120) -> None:
    """Until the vendors named in ``want`` hold what it says (or ``timeout`` passes)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = vendor_state(emulators)
        if {vendor: state[vendor] for vendor in want} == want:
            return
        await asyncio.sleep(0.5)


def assert_specs_clean(emulators) -> None:
    """Every request valid (against the spec, or the documented shape), every answer too,
    and none silently dropped (Segment answers 200 to calls it then drops)."""
    for emulator in emulators.by_sink.values():
        assert emulator.invalid_requests == [], emulator.name
        assert emulator.response_violations == [], emulator.name
        assert getattr(emulator, "dropped", []) == [], emulator.name


def assert_no_duplicates(emulators) -> None:
    for emulator in emulators.by_sink.values():
        assert emulator.duplicates == 0, emulator.name


async def dlq_records(pipeline, sink: str, expect: int = 0) -> list:
    topic = pipeline.env["REFSTREAM_TOPIC_DLQ_SINK_PREFIX"] + sink
    return await read_topic(
        pipeline.servers, topic, until=lambda r: len(r) >= expect, idle=1.0, timeout=15
    )


async def test_every_attribution_reaches_each_vendor_exactly_once(sink_pipeline, emulators):
    workload = Workload.build(journeys=250, seed=31, invalid=2)
    expected = workload.expected()
    want = expected_vendor_state(expected)
    await sink_pipeline.start_worker()

    await run_phases(sink_pipeline, workload)
    await wait_for_vendors(emulators, want)

    got = vendor_state(emulators)
    for vendor in want:
        assert got[vendor] == want[vendor], vendor
    assert_deals_cover_the_workload(want["hubspot"], expected)
    assert_no_duplicates(emulators)
    assert_specs_clean(emulators)
    for sink in SINKS:
        assert await dlq_records(sink_pipeline, sink) == []
    await assert_metrics_after_delivery(sink_pipeline, emulators, expected, want)


def assert_deals_cover_the_workload(hubspot: dict, expected) -> None:
    """The expected deals are not vacuous: one per attributed order, some partly and some
    fully refunded, each on its friend's contact (the comparison with the emulator's state
    then proves them exactly once, net, and associated right)."""
    orders = {a.order.order_id: a.friend.email for a in expected.emitted
              if a.kind.value in ("referral_converted", "order_attributed")}  # fmt: skip
    deals = hubspot["deals"]
    assert set(deals) == set(orders) and len(orders) > 20
    assert hubspot["associations"] == {order: [email] for order, email in orders.items()}
    stages = Counter(deal["dealstage"] for deal in deals.values())
    assert stages["closedlost"] > 0 and stages["closedwon"] > 0, stages
    refunded = {a.order.order_id for a in expected.emitted if a.kind.value == "order_refunded"}
    assert any(deals[o]["dealstage"] == "closedwon" for o in refunded), "no partial refund"


async def assert_metrics_after_delivery(pipeline, emulators, expected, want) -> None:
    """The worker's own account of the run, scraped from ``/metrics``."""
    worker = pipeline.workers[-1]
    samples = metric_samples(worker)
    names = {name for name, _ in samples}
    assert set(FAMILIES) <= names, set(FAMILIES) - names
    assert all("@" not in value for _, labels in samples for _, value in labels), "no emails"

    friends = sum(1 for a in expected.emitted if a.kind.value in CRM_KINDS and a.friend.email)
    # Advocate totals: one record per change of an advocate's revenue, each delivered once.
    totals = await read_topic(
        pipeline.servers, pipeline.topics["advocate_totals"], until=lambda r: True, idle=1.0
    )
    advocates = sum(1 for r in totals if orjson.loads(r.value)["advocate"].get("email"))
    assert advocates >= len(expected.advocate_totals) > 0
    crm = friends + advocates
    delivered = {
        sink: total(samples, "refstream_sink_delivered_total", sink=sink) for sink in SINKS
    }
    vendors = emulators.by_sink
    assert delivered == {
        sink: crm if sink == "crm" else len(want[vendors[sink].name]) for sink in SINKS
    }
    assert total(samples, "refstream_sink_delivery_latency_seconds_count", sink="email") == len(
        want["klaviyo"]
    )
    assert total(samples, "refstream_sink_dlq_total") == 0
    assert total(samples, "refstream_sink_circuit_open") == 0
    for sink in SINKS:  # every request answered 2xx: none refused, none repeated
        answered = {
            dict(labels)["status"]
            for (name, labels), value in samples.items()
            if name == "refstream_sink_requests_total" and dict(labels)["sink"] == sink and value
        }
        assert answered and all(status.startswith("2") for status in answered), (sink, answered)

    # Lag: every group (ingest's, the join's and one per sink) reports its partitions, and
    # all of them drain to zero once everything is delivered and committed.
    deadline = time.monotonic() + 20
    while True:
        lag = {
            labels: value
            for (name, labels), value in metric_samples(worker).items()
            if name == "refstream_consumer_lag"
        }
        groups = {dict(labels)["group"] for labels in lag}
        if sum(lag.values()) == 0 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    app_id = pipeline.env["REFSTREAM_APP_ID"]
    assert groups == {app_id, f"{app_id}-ingest", *(f"{app_id}-sink-{sink}" for sink in SINKS)}
    assert sum(lag.values()) == 0, {k: v for k, v in lag.items() if v}


async def test_outages_rate_limits_and_errors_all_at_once(sink_pipeline, emulators):
    """HubSpot down (at least 30 s), a Klaviyo 429 storm, Mixpanel 20 % 5xx with 2 s latency,
    the webhook receiver and Segment failing a third of their requests: the join and every
    other sink finish while HubSpot is still down; once it is back, everything is delivered,
    none twice, nothing dead-lettered."""
    workload = Workload.build(journeys=200, seed=37, invalid=0)
    expected = workload.expected()
    want = expected_vendor_state(expected)
    emulators.hubspot.faults.down = True
    # Each 429 pauses the whole sink for its Retry-After: 15 of them, a storm of several
    # seconds now that a busy stream goes out in a few bulk jobs rather than ~400 calls.
    emulators.klaviyo.faults.rate_limit = {"count": 15, "retry_after": 1}
    emulators.mixpanel.faults.status_5xx_rate = 0.2
    emulators.mixpanel.faults.status_5xx_first = 1  # few large batches: make sure one fails
    emulators.mixpanel.faults.latency = 2.0
    for other in (emulators.webhook, emulators.segment):
        other.faults.status_5xx_rate = 0.33
        other.faults.status_5xx_first = 1
    outage_started = time.monotonic()
    await sink_pipeline.start_worker()

    # HubSpot stays down until the others are done: whether they finish is the claim, not
    # how fast a loaded CI host gets there (the 30 s of an earlier version were exceeded).
    records = await run_phases(sink_pipeline, workload)
    assert unique_ids(records) == len(expected.emitted), "the join must not wait for HubSpot"
    others = {**want, "hubspot": HubSpotEmulator.nothing()}
    await wait_for_vendors(emulators, others, timeout=120)
    assert vendor_state(emulators) == others, "a dead vendor must not hold back the others"
    await asyncio.sleep(max(0.0, 30 - (time.monotonic() - outage_started)))
    emulators.hubspot.faults.down = False
    await wait_for_vendors(emulators, want, timeout=180)

    got = vendor_state(emulators)
    assert got == want
    assert_no_duplicates(emulators)
    assert emulators.hubspot.status_counts.get(503, 0) > 0
    assert emulators.webhook.status_counts.get(500, 0) > 0
    assert emulators.segment.status_counts.get(500, 0) > 0
    assert emulators.klaviyo.status_counts.get(429, 0) == 15
    assert emulators.mixpanel.status_counts.get(500, 0) > 0
    assert_specs_clean(emulators)
    for sink in SINKS:
        assert await dlq_records(sink_pipeline, sink) == []


async def test_kill_9_during_delivery_ends_with_exactly_the_expected_vendor_records(
    sink_pipeline, emulators
):
    workload = Workload.build(journeys=200, seed=41, invalid=0)
    want = expected_vendor_state(workload.expected())
    klaviyo = emulators.klaviyo
    emulators.mixpanel.faults.latency = 0.5
    first = await sink_pipeline.start_worker("worker")
    # A quarter first; once Klaviyo holds some of it, its answers take 3 s and the rest is
    # produced: the kill comes while a request of the rest is on the wire. (Killing after
    # a count of events raced the sink, which on a loaded host sent everything in one bulk
    # job before the count was seen.) The request still lands after the kill: the
    # restarted worker sends it again and Klaviyo's unique ids absorb it.
    head = len(workload.phase1) // 4
    await produce(workload.phase1[:head], sink_pipeline.servers, sink_pipeline.topics)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not klaviyo.events:
        await asyncio.sleep(0.05)
    klaviyo.faults.latency = 3.0
    await produce(workload.phase1[head:], sink_pipeline.servers, sink_pipeline.topics)
    while time.monotonic() < deadline and klaviyo.requests == sum(klaviyo.status_counts.values()):
        await asyncio.sleep(0.01)
    first.kill()
    in_flight = len(klaviyo.events)
    assert klaviyo.requests > sum(klaviyo.status_counts.values()), "no request on the wire"
    assert 0 < in_flight < len(want["klaviyo"]), "the kill must land mid-delivery"
    emulators.mixpanel.faults.latency = 0.0
    emulators.klaviyo.faults.latency = 0.0
    await sink_pipeline.start_worker("worker")
    await read_topic(sink_pipeline.servers, sink_pipeline.topics["attributions"],
                     until=lambda r: unique_ids(r) > 0, idle=0.5)  # fmt: skip
    await produce(workload.phase2, sink_pipeline.servers, sink_pipeline.topics)
    await wait_for_vendors(emulators, want, timeout=180)

    assert vendor_state(emulators) == want  # redelivery absorbed by upserts and dedup keys
    assert klaviyo.duplicates > 0, "the request on the wire at the kill landed, and again"
    assert_specs_clean(emulators)


async def test_enabled_sink_without_its_token_stops_the_worker_with_a_clear_message(pipeline):
    env = {**os.environ, **pipeline.env, "REFSTREAM_SINKS": "crm,analytics"}
    env.pop("HUBSPOT_ACCESS_TOKEN", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streams", "worker", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2
    assert stderr.decode().strip() == (
        "refstream: configuration error: sink 'crm' is enabled but HUBSPOT_ACCESS_TOKEN is not "
        "set (set it, or leave 'crm' out of REFSTREAM_SINKS)"
    )


async def test_permanent_errors_go_to_the_dlq_exactly_and_replay_delivers_them(
    sink_pipeline, emulators
):
    workload = Workload.build(journeys=150, seed=43, invalid=0)
    expected = workload.expected()
    want = expected_vendor_state(expected)
    friends = {a.friend.email for a in expected.emitted if a.kind.value == "friend_signed_up"}
    crm_bad = set(sorted(friends)[:2])
    email_bad = {u for u, _, _ in sorted(want["klaviyo"])[:2]}
    analytics_bad = set(sorted(want["mixpanel"])[:3])
    # Deals HubSpot refuses: each the last CRM record of its friend, so that replaying it
    # does not set the friend's contact back to an earlier total (the record carries both).
    last_crm: dict[str, object] = {}
    for a in expected.emitted:
        if a.kind.value in CRM_KINDS and a.friend and a.friend.email:
            last_crm[a.friend.email] = a
    deal_bad_events = sorted(
        (a for email, a in last_crm.items()
         if email not in crm_bad and a.kind.value in ("referral_converted", "order_attributed")),
        key=lambda a: a.order.order_id,
    )[:2]  # fmt: skip
    deal_bad = {a.order.order_id for a in deal_bad_events}
    assert len(deal_bad) == 2
    emulators.hubspot.faults.reject = crm_bad | deal_bad
    emulators.klaviyo.faults.reject = set(email_bad)
    emulators.mixpanel.faults.reject = set(analytics_bad)
    with_referral = {a.attribution_event_id for a in expected.emitted if a.referral_id}
    webhook_bad = set(sorted(want["webhook"])[:2])
    segment_bad = set(sorted(set(want["segment"]) & with_referral)[:3])
    emulators.webhook.faults.reject = set(webhook_bad)
    emulators.segment.faults.reject = set(segment_bad)
    partial = {
        "hubspot": {
            "contacts": {k: v for k, v in want["hubspot"]["contacts"].items() if k not in crm_bad},
            "deals": {
                k: v
                for k, v in want["hubspot"]["deals"].items()
                if k not in deal_bad and want["hubspot"]["associations"][k][0] not in crm_bad
            },
            "associations": {
                k: v
                for k, v in want["hubspot"]["associations"].items()
                if k not in deal_bad and v[0] not in crm_bad
            },
        },
        "klaviyo": {e for e in want["klaviyo"] if e[0] not in email_bad},
        "mixpanel": want["mixpanel"] - analytics_bad,
        "webhook": {k: v for k, v in want["webhook"].items() if k not in webhook_bad},
        "segment": {k: v for k, v in want["segment"].items() if k not in segment_bad},
    }
    crm_events = {
        a.attribution_event_id for a in expected.emitted
        if a.friend and a.friend.email in crm_bad and a.kind.value != "referral_rejected"
        and a.kind.value not in ("signup_unattributed", "order_unattributed")
    } | {a.attribution_event_id for a in deal_bad_events}  # fmt: skip
    await sink_pipeline.start_worker()

    await run_phases(sink_pipeline, workload)
    await wait_for_vendors(emulators, partial)
    assert vendor_state(emulators) == partial

    expectations = {
        "crm": (crm_events, b"rejected", b"400"),
        "email": (email_bad, b"rejected", b"400"),
        "analytics": (analytics_bad, b"failed_record", b"400"),
        "webhook": (webhook_bad, b"rejected", b"400"),
        "segment": (segment_bad, b"rejected", b"400"),
    }
    assert set(expectations) == set(SINKS), "a registered sink without refused records here"
    for sink, (ids, reason, status) in expectations.items():
        records = await dlq_records(sink_pipeline, sink, expect=len(ids))
        got = [orjson.loads(r.value)["attribution_event_id"] for r in records]
        assert sorted(got) == sorted(ids), sink
        for record in records:
            headers = dict(record.headers)
            assert headers["error.reason"] == reason and headers["sink"] == sink.encode()
            assert headers["error.http_status"] == status
            assert headers["error.message"] and int(headers["error.attempts"]) >= 1
            assert headers["error.first_failed_at"] <= headers["error.last_failed_at"]
            assert headers["source.topic"].decode() == sink_pipeline.topics["attributions"]
            assert int(headers["source.offset"]) >= 0 and int(headers["source.partition"]) >= 0
            assert record.key == orjson.loads(record.value)["referral_id"].encode()

    env = {**os.environ, **sink_pipeline.env}
    listing = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streams", "dlq-list", "--sink", "analytics", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(listing.communicate(), 60)
    assert b": 3 records {'failed_record': 3}" in output, output.decode()
    assert output.count(b"reason=failed_record status=400") == 3

    for emulator in emulators.by_sink.values():
        emulator.faults.reject = set()  # the vendor-side problem is fixed
    for sink in SINKS:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "streams", "dlq-replay", "--sink", sink, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        output, _ = await asyncio.wait_for(process.communicate(), 120)
        assert process.returncode == 0, output.decode()
        n = len(expectations[sink][0])
        assert f"replayed {n} records".encode() in output and b"0 dead-lettered again" in output
    assert vendor_state(emulators) == want
    assert_specs_clean(emulators)


async def test_a_sink_stuck_while_its_vendor_answers_is_named_by_readyz(sink_pipeline, emulators):
    """Klaviyo answers every request with 429: throttling is not failure, so its circuit
    stays closed and nothing is delivered. Past the threshold, the watchdog says so; once
    Klaviyo accepts again, the sink catches up and the worker is ready again."""
    sink_pipeline.env["REFSTREAM_SINK_STUCK_SECONDS"] = "3"
    emulators.klaviyo.faults.rate_limit = {"count": 10**9, "retry_after": 1}
    workload = Workload.build(journeys=40, seed=47, invalid=0)
    want = expected_vendor_state(workload.expected())
    worker = await sink_pipeline.start_worker()
    await run_phases(sink_pipeline, workload)

    deadline = time.monotonic() + 60
    while (answer := worker.get("/readyz"))[0] != 503:
        assert time.monotonic() < deadline, answer
        await asyncio.sleep(0.5)
    assert orjson.loads(answer[1])["stuck_sinks"] == ["email"]
    samples = metric_samples(worker)
    assert samples[("refstream_sink_oldest_pending_seconds", (("sink", "email"),))] > 3
    assert samples[("refstream_sink_oldest_pending_seconds", (("sink", "crm"),))] < 3
    assert samples[("refstream_sink_circuit_open", (("sink", "email"),))] == 0

    emulators.klaviyo.faults.rate_limit = {}
    await wait_for_vendors(emulators, {"klaviyo": want["klaviyo"]})
    assert vendor_state(emulators)["klaviyo"] == want["klaviyo"]
    deadline = time.monotonic() + 30
    while (answer := worker.get("/readyz"))[0] != 200:
        assert time.monotonic() < deadline, answer
        await asyncio.sleep(0.5)

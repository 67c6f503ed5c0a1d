"""Two workers in one group; one dies with ``kill -9`` mid-stream and the other finishes.

The survivor takes over the dead worker's join partitions (tables rebuilt from their
changelogs) and its sink partitions, and the end state is exact: every attribution, every
lookup, every vendor record.
"""

from __future__ import annotations

import asyncio

import pytest

from dev.expectations import expected_advocates, vendor_state
from dev.generator import Workload, attribution_records
from dev.kafka_io import produce

from .test_advocates import wait_for_advocates
from .test_join import Attributions, assert_attributions_exact, assert_lookups_match, run_phases
from .test_sinks import expected_vendor_state, wait_for_vendors

pytestmark = pytest.mark.integration


async def test_survivor_takes_over_a_killed_workers_partitions_exactly(sink_pipeline, emulators):
    # Held events expire in processing time. The takeover waits out the dead worker's
    # session (10 s on Kafka) before recovery: the suite's 12 s TTL released orders whose
    # signups sat in the dead worker's partitions (6 of 2,000 attributions changed).
    sink_pipeline.env |= {"REFSTREAM_STORE": "rocksdb://", "PENDING_TTL_SECONDS": "40"}
    workload = Workload.build(journeys=1200, seed=53, invalid=2)
    expected = workload.expected()
    n1 = len(workload.expected(phases=1).emitted)
    doomed = await sink_pipeline.start_worker("worker-a")
    survivor = await sink_pipeline.start_worker("worker-b")
    killed_at: list[int] = []

    async def kill_one() -> None:
        killed_at.append(await attributions.reach(40))
        doomed.kill()

    # One live follower of the topic: a fresh read from the start, as this test made before,
    # arrived after the whole first phase on Apache Kafka and the kill came too late.
    topic = sink_pipeline.topics["attributions"]
    async with Attributions(sink_pipeline.servers, topic) as attributions:
        records = await run_phases(sink_pipeline, workload, between=kill_one)

    assert killed_at[0] < n1, "the kill must land mid-stream"
    assert_attributions_exact(records, expected)
    assert_lookups_match(survivor, expected)  # every referral is now the survivor's
    vendors = expected_vendor_state(expected)
    await wait_for_vendors(emulators, vendors, timeout=120)
    assert vendor_state(emulators) == vendors
    # The advocate stage's state too: every advocate's API answer, now all the survivor's.
    advocates = expected_advocates(expected)
    assert await wait_for_advocates(survivor, advocates) == advocates


async def test_two_workers_stay_within_a_vendors_limit_together(sink_pipeline, emulators):
    """Klaviyo's limits (350/s burst, 3,500/min single events; 10/s, 150/min bulk jobs) are
    per account. Each of two workers owns half of the email sink's partitions and so may use
    half of them: with a backlog on both at once, the vendor never has to answer 429."""
    klaviyo = emulators.klaviyo
    klaviyo.enforce_documented_limits()
    klaviyo.validate = False  # the emulator must keep up with 350 requests/s
    sink_pipeline.env["REFSTREAM_SINKS"] = "email"
    workers = [await sink_pipeline.start_worker(name) for name in ("worker-a", "worker-b")]
    while not all("share=0.500" in w.log_path.read_text() for w in workers):
        await asyncio.sleep(0.2)  # each has half of the sink's partitions

    expected = Workload.build(journeys=1500, seed=59, invalid=0).expected()
    records = attribution_records(expected.emitted)
    await produce(records, sink_pipeline.servers, sink_pipeline.topics)

    want = expected_vendor_state(expected)["klaviyo"]
    assert len(want) > 1000, "a backlog that would take both workers over the burst limit"
    await wait_for_vendors(emulators, {"klaviyo": want}, timeout=90)
    assert vendor_state(emulators)["klaviyo"] == want
    assert klaviyo.over_limit == 0

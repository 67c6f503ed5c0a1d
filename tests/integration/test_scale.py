"""Two workers in one group; one dies with ``kill -9`` mid-stream and the other finishes.

The survivor takes over the dead worker's join partitions (tables rebuilt from their
changelogs) and its sink partitions, and the end state is exact: every attribution, every
lookup, every vendor record.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from dev.expectations import vendor_state
from dev.generator import Workload, attribution_records
from dev.kafka_io import produce, read_topic

from .test_join import assert_lookups_match, by_id, run_phases, unique_ids
from .test_sinks import expected_vendor_state, wait_for_vendors

pytestmark = pytest.mark.integration


async def test_survivor_takes_over_a_killed_workers_partitions_exactly(sink_pipeline, emulators):
    sink_pipeline.env["REFSTREAM_STORE"] = "rocksdb://"
    workload = Workload.build(journeys=1200, seed=53, invalid=2)
    expected = workload.expected()
    n1 = len(workload.expected(phases=1).emitted)
    doomed = await sink_pipeline.start_worker("worker-a")
    survivor = await sink_pipeline.start_worker("worker-b")
    killed_at: list[int] = []

    async def kill_one() -> None:
        records = await read_topic(
            sink_pipeline.servers, sink_pipeline.topics["attributions"],
            until=lambda r: unique_ids(r) >= 40, idle=0.0, timeout=60,
        )  # fmt: skip
        killed_at.append(unique_ids(records))
        doomed.kill()

    records = await run_phases(sink_pipeline, workload, between=kill_one)

    assert killed_at[0] < n1, "the kill must land mid-stream"
    got = by_id(records)
    want = {a.attribution_event_id: a.content_key() for a in expected.emitted}
    missing = Counter(want[i]["kind"] for i in set(want) - set(got))
    invented = Counter(got[i][0]["kind"] for i in set(got) - set(want))
    assert not missing and not invented, f"lost {missing}, invented {invented}"
    for attribution_id, copies in got.items():
        assert all(copy == want[attribution_id] for copy in copies), "a repeat must match"
    assert_lookups_match(survivor, expected)  # every referral is now the survivor's
    vendors = expected_vendor_state(expected)
    await wait_for_vendors(emulators, vendors, timeout=120)
    assert vendor_state(emulators) == vendors


async def test_two_workers_stay_within_a_vendors_limit_together(sink_pipeline, emulators):
    """Klaviyo's limits (350/s burst, 3,500/min) are per account. Each of two workers owns
    half of the email sink's partitions and so may use half of them: with a backlog on
    both at once, the vendor never has to answer 429."""
    klaviyo = emulators.klaviyo
    klaviyo.limits = klaviyo.documented_limits
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

"""Apache Kafka stopped for 30 s mid-stream and started again on the same data directory.

The worker stays up (streams/broker_watch.py says why), ``/readyz`` answers 503 while the
broker is gone and 200 once it is back, ``refstream_broker_connected`` goes 0 and back to 1,
and the end state is exact: every attribution, every lookup, every vendor record.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from dev.expectations import vendor_state
from dev.generator import Workload
from dev.kafka import ApacheKafka

from .brokers import broker_choice
from .conftest import Kafka
from .test_join import (
    Attributions,
    assert_attributions_exact,
    assert_lookups_match,
    metric_samples,
    run_phases,
)
from .test_sinks import expected_vendor_state, wait_for_vendors

pytestmark = pytest.mark.integration

OUTAGE_SECONDS = 30.0


@pytest.fixture(scope="module")
def restartable(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApacheKafka]:
    if broker_choice() != "kafka":
        pytest.skip("needs the Apache Kafka of dev/kafka.py, which the test stops and starts")
    with ApacheKafka(tmp_path_factory.mktemp("restartable")) as broker:
        yield broker


@pytest.fixture(scope="module")
def kafka(restartable: ApacheKafka) -> Kafka:
    """This module's own broker: the outage must not reach other tests."""
    return Kafka(restartable.bootstrap_servers, "kafka", restartable.label, restartable)


def readiness(worker) -> tuple[int, float]:
    status, _ = worker.get("/readyz")
    connected = metric_samples(worker)[("refstream_broker_connected", ())]
    return status, connected


async def test_a_broker_restart_mid_stream_loses_nothing(sink_pipeline, emulators, restartable):
    # Held events expire in processing time: the suite's 12 s would release orders whose
    # partners wait behind the outage (production holds them 24 h), so it must outlast it.
    sink_pipeline.env |= {"REFSTREAM_STORE": "rocksdb://", "PENDING_TTL_SECONDS": "60"}
    workload = Workload.build(journeys=1500, seed=61, invalid=2)
    expected = workload.expected()
    n1 = len(workload.expected(phases=1).emitted)
    worker = await sink_pipeline.start_worker()
    seen: dict[str, object] = {}

    async def outage() -> None:
        seen["at_stop"] = await attributions.reach(40)
        restartable.stop()
        stopped = time.monotonic()
        during = []
        while time.monotonic() - stopped < OUTAGE_SECONDS:
            await asyncio.sleep(1.0)
            assert worker.process.poll() is None, "the worker must ride out the outage"
            during.append(await asyncio.to_thread(readiness, worker))
        seen["during"] = during
        await asyncio.to_thread(restartable.start)
        deadline = time.monotonic() + 90
        while (after := await asyncio.to_thread(readiness, worker)) != (200, 1.0):
            assert time.monotonic() < deadline, f"not ready again: {after}"
            await asyncio.sleep(0.5)
        seen["ready_again_after"] = time.monotonic() - stopped - OUTAGE_SECONDS

    topic = sink_pipeline.topics["attributions"]
    async with Attributions(sink_pipeline.servers, topic) as attributions:
        records = await run_phases(sink_pipeline, workload, between=outage, timeout=240)

    assert seen["at_stop"] < n1, "the broker must stop mid-stream"
    during = seen["during"]
    # Unready within the watcher's staleness (6 s) and every second after that.
    assert all(status == 503 and connected == 0 for status, connected in during[8:]), during
    assert_attributions_exact(records, expected)
    assert_lookups_match(worker, expected)
    vendors = expected_vendor_state(expected)
    await wait_for_vendors(emulators, vendors, timeout=120)
    assert vendor_state(emulators) == vendors
    assert "SkippedRecords" not in worker.log_path.read_text(errors="replace")
    print(f"broker restart: stopped at {seen['at_stop']} of {n1} attributions; ready again "
          f"{seen['ready_again_after']:.1f} s after the broker started")  # fmt: skip

from __future__ import annotations

import asyncio
import os
import sys

import pytest

from dev.generator import Workload
from dev.kafka_io import read_topic

pytestmark = pytest.mark.integration


async def test_generate_produces_the_workload_onto_the_configured_topics(pipeline):
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streams", "generate", "--journeys", "40", "--seed", "3",
        env={**os.environ, **pipeline.env}, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode()
    workload = Workload.build(journeys=40, seed=3, invalid=5)
    assert f"sent {len(workload.records)} records".encode() in output
    produced = []
    for name in ("referrals", "signups", "orders"):
        want = sum(1 for r in workload.records if r.topic == name)
        records = await read_topic(
            pipeline.servers, pipeline.topics[name], until=lambda r, n=want: len(r) >= n, idle=0.5
        )
        produced += [r.value for r in records]
    assert sorted(produced) == sorted(r.value for r in workload.records)

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections import Counter

import orjson
import pytest

from dev.generator import Workload
from dev.kafka_io import read_topic

pytestmark = pytest.mark.integration


async def generate(pipeline, *options: str) -> bytes:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streams", "generate", "--journeys", "40", "--seed", "3",
        *options, env={**os.environ, **pipeline.env}, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode()
    return output


async def read_inputs(pipeline, want: dict[str, int]) -> list[bytes]:
    """The values on the input topics, once each holds its ``want`` records."""
    produced = []
    for name, count in want.items():
        records = await read_topic(pipeline.servers, pipeline.topics[name], idle=0.5,
                                   until=lambda r, n=count: len(r) >= n)  # fmt: skip
        produced += [r.value for r in records]
    return produced


def event_ids(values) -> set[str]:
    ids = set()
    for value in values:
        with contextlib.suppress(orjson.JSONDecodeError):
            event = orjson.loads(value)
            if isinstance(event, dict) and isinstance(event.get("event_id"), str):
                ids.add(event["event_id"])
    return ids


async def test_generate_produces_the_workload_onto_the_configured_topics(pipeline):
    """``--replay`` sends exactly the seed's workload; without it, the same journeys with
    fresh ids, so a second run is not counted as duplicates of the first."""
    output = await generate(pipeline, "--replay")
    workload = Workload.build(journeys=40, seed=3, invalid=5)
    assert f"sent {len(workload.records)} records".encode() in output
    want = {name: sum(1 for r in workload.records if r.topic == name)
            for name in ("referrals", "signups", "orders")}  # fmt: skip
    first = await read_inputs(pipeline, want)
    assert sorted(first) == sorted(r.value for r in workload.records)

    output = await generate(pipeline)
    assert f"sent {len(workload.records)} records".encode() in output
    both = await read_inputs(pipeline, {name: 2 * count for name, count in want.items()})
    second = list((Counter(both) - Counter(first)).elements())
    assert len(second) == len(workload.records)
    invalid = event_ids(r.value for r in workload.records if not r.valid)  # fixed by design
    assert event_ids(first) - invalid
    assert not (event_ids(first) & event_ids(second)) - invalid

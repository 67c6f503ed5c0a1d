"""The join against a real broker and real worker processes.

Expected outcomes come from the same workload run through the pure rules in event-time
order (:meth:`dev.generator.Workload.expected`); the pipeline sees it shuffled across
topics and partitions, with duplicates, early partners and invalid records.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from agents.rules import Released
from dev.generator import Record, Workload
from dev.kafka_io import produce, read_topic

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration


def by_id(records) -> dict[str, list[dict]]:
    """attribution id → every copy's content (``emitted_at`` aside)."""
    copies: dict[str, list[dict]] = {}
    for record in records:
        event = orjson.loads(record.value)
        event.pop("emitted_at")
        copies.setdefault(event["attribution_event_id"], []).append(event)
    return copies


def attribution_ids(records) -> set[str]:
    return {orjson.loads(r.value)["attribution_event_id"] for r in records}


def unique_ids(records) -> int:
    """Distinct attributions: after a crash some arrive twice, so counting records lies."""
    return len(attribution_ids(records))


class Attributions:
    """Follows the attributions topic as records arrive (one consumer for the whole test):
    a fresh read from the start takes a second or more to begin, and by then a restarted
    worker may have finished the backlog a kill was meant to interrupt."""

    def __init__(self, servers: str, topic: str) -> None:
        self.consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=servers, auto_offset_reset="earliest",
            enable_auto_commit=False, group_id=None, fetch_max_wait_ms=50,
        )  # fmt: skip
        self.ids: set[str] = set()

    async def __aenter__(self) -> Attributions:
        await self.consumer.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.consumer.stop()

    async def reach(self, count: int, timeout: float = 60.0) -> int:
        """Wait until ``count`` distinct attributions were seen; return how many."""
        deadline = time.monotonic() + timeout
        while len(self.ids) < count:
            assert time.monotonic() < deadline, f"only {len(self.ids)} of {count} attributions"
            batch = await self.consumer.getmany(timeout_ms=50)
            for records in batch.values():
                self.ids |= attribution_ids(records)
        return len(self.ids)


async def run_phases(pipeline, workload: Workload, between=None, timeout: float = 120) -> list:
    """Produce phase 1 while ``between`` runs, wait for its outputs, then phase 2; return all
    attribution records once the expected number has arrived and nothing more comes."""
    topics, servers = pipeline.topics, pipeline.servers
    n1 = len(workload.expected(phases=1).emitted)
    n2 = len(workload.expected().emitted)
    # ``between`` watches while phase 1 is produced: on Apache Kafka a worker kept up with
    # the producer, and a kill started only once phase 1 was all sent came after its end.
    during = asyncio.create_task(between()) if between is not None else None
    await produce(workload.phase1, servers, topics)
    if during is not None:
        await during
    await read_topic(servers, topics["attributions"], until=lambda r: unique_ids(r) >= n1, idle=0.5)
    await produce(workload.phase2, servers, topics)
    return await read_topic(
        servers,
        topics["attributions"],
        until=lambda r: unique_ids(r) >= n2,
        idle=3,
        timeout=timeout,
    )


def assert_attributions_exact(records, expected) -> None:
    """Every expected attribution, none invented, and any repeat (after a kill or an
    outage) identical to the original."""
    got = by_id(records)
    want = {a.attribution_event_id: a.content_key() for a in expected.emitted}
    missing = Counter(want[i]["kind"] for i in set(want) - set(got))
    invented = Counter(got[i][0]["kind"] for i in set(got) - set(want))
    assert not missing and not invented, f"lost {missing}, invented {invented}"
    for attribution_id, copies in got.items():
        assert all(copy == want[attribution_id] for copy in copies), "a repeat must match"


def assert_lookups_match(worker, expected) -> None:
    checked = 0
    for referral_id, state in expected.tables["referral"].items():
        status, body = worker.get(f"/attributions/{referral_id}")
        if state.referral is None:
            assert status == 404, referral_id
            continue
        assert status == 200, (referral_id, body)
        view = orjson.loads(body)
        want = expected.view(referral_id)
        assert {k: view[k] for k in want} == want, referral_id
        assert view["advocate"]["id"] == state.referral.advocate.id
        checked += 1
    assert checked > 100


def metric_samples(worker) -> dict[tuple[str, tuple], float]:
    status, body = worker.get("/metrics")
    assert status == 200
    samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def total(samples, name: str, **labels: str) -> float:
    want = set(labels.items())
    return sum(v for (n, lbl), v in samples.items() if n == name and want <= set(lbl))


async def test_join_is_exact_against_the_rules(pipeline):
    workload = Workload.build(journeys=300, seed=11, invalid=6)
    expected = workload.expected()
    worker = await pipeline.start_worker()

    records = await run_phases(pipeline, workload)

    got = by_id(records)
    want = {a.attribution_event_id: a.content_key() for a in expected.emitted}
    assert sorted(got) == sorted(want)
    assert all(len(copies) == 1 for copies in got.values()), "no crash, so no repeats"
    for attribution_id, copies in got.items():
        assert copies[0] == want[attribution_id]
    kinds = Counter(event[0]["kind"] for event in got.values())
    assert set(kinds) == {
        "friend_signed_up", "referral_converted", "order_attributed", "order_refunded",
        "referral_rejected", "signup_unattributed", "order_unattributed",
    }  # fmt: skip

    # Records are keyed by referral_id.
    assert all(r.key == orjson.loads(r.value)["referral_id"].encode() for r in records if r.key)

    # Invalid records: dead-lettered unchanged, with the contract's headers.
    dlq = await read_topic(
        pipeline.servers, pipeline.topics["dlq_invalid"],
        until=lambda r: len(r) >= len(workload.invalid), idle=1.0,
    )  # fmt: skip
    assert sorted((r.key, r.value) for r in dlq) == sorted(
        (r.key, r.value) for r in workload.invalid
    )
    inputs = {pipeline.topics[n] for n in ("referrals", "signups", "orders")}
    for record in dlq:
        headers = dict(record.headers)
        assert headers["error.reason"] in {b"invalid_json", b"schema_violation", b"unknown_type"}
        assert headers["error.message"]
        assert headers["source.topic"].decode() in inputs
        assert int(headers["source.partition"]) >= 0
        assert int(headers["source.offset"]) >= 0

    assert_lookups_match(worker, expected)
    assert worker.get("/attributions/ref_does_not_exist")[0] == 404
    assert worker.get("/healthz")[0] == 200

    samples = metric_samples(worker)
    valid = sum(1 for r in workload.records if r.valid)
    assert total(samples, "refstream_events_total", outcome="invalid") == len(workload.invalid)
    assert total(samples, "refstream_events_total", outcome="accepted") == valid
    assert total(samples, "refstream_events_total", outcome="duplicate") == expected.duplicates
    for kind, count in Counter(a.kind.value for a in expected.emitted).items():
        assert total(samples, "refstream_attributions_total", kind=kind) == count
    assert total(samples, "refstream_pending_events") == 0
    released = Counter(expected.dropped)
    assert released["signup_not_referred"] > 0  # a shop's customers never referred
    for reason in Released:  # every series present, each count exact
        assert (
            samples[("refstream_events_released_total", (("reason", reason.value),))]
            == released[reason]
        ), reason
    assert total(samples, "refstream_attribution_latency_seconds_count") == len(want)


async def kill_and_restart(pipeline, workload: Workload, kill_at: list[int]) -> None:
    """Run both phases; whenever phase 1 has produced ``kill_at[i]`` distinct attributions,
    ``kill -9`` the worker and start another on the same data directory."""
    expected = workload.expected()
    n1 = len(workload.expected(phases=1).emitted)
    await pipeline.start_worker("worker")
    seen_at_kill: list[int] = []

    async def kills() -> None:
        for n, threshold in enumerate(kill_at, 1):
            seen_at_kill.append(await attributions.reach(threshold))
            pipeline.workers[-1].kill()
            if n < len(kill_at):  # not waiting for /readyz: it catches up within a second
                pipeline.worker("worker")
            else:
                await pipeline.start_worker("worker")

    async with Attributions(pipeline.servers, pipeline.topics["attributions"]) as attributions:
        records = await run_phases(pipeline, workload, between=kills)

    assert all(seen < n1 for seen in seen_at_kill), f"kills must land mid-stream: {seen_at_kill}"
    assert_attributions_exact(records, expected)
    assert_lookups_match(pipeline.workers[-1], expected)
    # A killed worker's successor re-reads what it skipped, so results can be exact even if
    # the consumer lost records on their way to a stage (streams/app.py); its log tells.
    for log in {worker.log_path for worker in pipeline.workers}:
        assert "SkippedRecords" not in log.read_text(errors="replace"), f"see {log}"


@pytest.mark.parametrize("store", ["memory://", "rocksdb://"])
async def test_kill_9_mid_stream_recovers_exactly(pipeline, store):
    """memory: state comes back from the changelog alone; rocksdb: local state plus the
    changelog past its persisted offsets."""
    pipeline.env["REFSTREAM_STORE"] = store
    workload = Workload.build(journeys=1500, seed=23, invalid=3)
    await kill_and_restart(pipeline, workload, [40])


@pytest.mark.slow
async def test_soak_three_kills(pipeline):
    workload = Workload.build(journeys=4000, seed=5, invalid=3)
    await kill_and_restart(pipeline, workload, [25, 400, 1500])


async def test_records_fetched_while_faust_seeks_reach_their_stages(pipeline):
    """Faust's seek after a rebalance is made slow and the stages busy meanwhile
    (slow_seek.py), so records fetched in it wait in queues Faust empties after the seek,
    and only a later restart would read them again. They must not be lost.
    Without the hold in streams/app.py this loses hundreds of attributions every run."""
    pipeline.worker_module = "tests.integration.slow_seek"
    # Small stage batches: the backlog held during the slow seek otherwise went through in
    # one batch now and then, and the kill came after phase 1 had ended.
    pipeline.env |= {"PYTHONPATH": str(ROOT), "REFSTREAM_COMMIT_INTERVAL_SECONDS": "300",
                     "REFSTREAM_BATCH_SIZE": "50"}  # fmt: skip
    workload = Workload.build(journeys=1500, seed=31, invalid=3)
    await kill_and_restart(pipeline, workload, [400])


async def test_bad_internal_messages_are_dead_lettered_and_the_rest_applied(pipeline):
    """A stage topic carries envelopes; a record that is not one, and single bad entries in
    one, are dead-lettered on their own while the good entries beside them take effect."""
    await pipeline.start_worker()
    servers, topics = pipeline.servers, pipeline.topics
    referral = {
        "event_id": "evt_bad_1", "type": "referral.created", "referral_id": "ref_bad_1",
        "occurred_at": "2026-09-10T13:19:00Z",
        "advocate": {"id": "adv_bad", "email": "adv.bad@example.com", "first_name": "Ada"},
    }  # fmt: skip
    good = {
        "k": "ref_bad_1",
        "ts": None,
        "t": "referral.created",
        "m": orjson.dumps(referral).decode(),
    }
    bad_entry = {"k": "ref_bad_1", "ts": None, "t": "claim", "m": '{"type":"claim"}'}
    bad_object = {"k": "ref_bad_1", "ts": None, "m": {"type": "claim"}}  # the older entry form
    keyless = {"ts": None, "t": "expire", "m": '{"type":"expire"}'}
    envelope = orjson.dumps([good, bad_entry, bad_object, keyless])
    producer = AIOKafkaProducer(bootstrap_servers=servers)
    await producer.start()
    try:
        await producer.send_and_wait(topics["by_referral"], b"garbage", key=b"ref_bad_1")
        await producer.send_and_wait(topics["by_referral"], envelope, key=b"ref_bad_1")
    finally:
        await producer.stop()
    signup = {
        "event_id": "evt_bad_2", "type": "signup.completed", "referral_id": "ref_bad_1",
        "occurred_at": "2026-09-11T10:00:00Z",
        "customer": {"id": "cus_bad", "email": "friend.bad@example.com"},
    }  # fmt: skip
    await produce([Record("signups", None, orjson.dumps(signup))], servers, topics)

    records = await read_topic(servers, topics["attributions"], until=lambda r: len(r) >= 1)
    assert [orjson.loads(r.value)["kind"] for r in records] == ["friend_signed_up"]
    dlq = await read_topic(servers, topics["dlq_invalid"], until=lambda r: len(r) >= 4, idle=1)
    assert sorted(r.value for r in dlq) == sorted(
        [b"garbage", orjson.dumps(bad_entry), orjson.dumps(bad_object), orjson.dumps(keyless)]
    )
    for record in dlq:
        headers = dict(record.headers)
        assert headers["error.reason"] == b"internal_decode_error"
        assert headers["source.topic"].decode() == topics["by_referral"]


def poison_batch(count: int) -> list[Record]:
    """``count`` records ingest must refuse, drawn by the fuzz tests' strategies with a fixed
    seed: every input topic, and a topic's records of another topic's type."""
    from hypothesis import Phase, given, settings
    from hypothesis import strategies as st

    from agents.ingest import EXPECTED_TYPES
    from schemas.events import InvalidEvent, parse_event
    from streams.app import settings as app_settings
    from tests.strategies import FUZZ, poison_records

    names = ("referrals", "signups", "orders")  # as Record names them; the default topics
    expected = {name: EXPECTED_TYPES[getattr(app_settings.topics, name)] for name in names}
    batch: list[Record] = []

    @settings(FUZZ, max_examples=count * 3, phases=[Phase.generate])
    @given(topic=st.sampled_from(names), value=poison_records())
    def draw(topic: str, value: bytes | None) -> None:
        if len(batch) == count or len(value or b"") > 900_000:  # under the broker's 1 MB
            return
        try:
            parse_event(value, expected[topic])
        except InvalidEvent:
            batch.append(Record(topic, f"poison-{len(batch)}".encode(), value, False))

    draw()
    assert len(batch) == count
    return batch


async def test_poison_is_dead_lettered_and_the_join_stays_exact(pipeline):
    """Fuzzed poison (issue 17, item 3) mixed into a workload: each record lands in the
    invalid DLQ with a reason, the workload's attributions are exact, the worker lives."""
    workload = Workload.build(journeys=60, seed=17, invalid=0)
    poison = poison_batch(200)
    for i, record in enumerate(poison):  # spread through phase 1
        workload.phase1.insert((i * 7919) % (len(workload.phase1) + 1), record)
    expected = workload.expected()
    worker = await pipeline.start_worker()

    records = await run_phases(pipeline, workload)

    assert_attributions_exact(records, expected)
    dlq = await read_topic(
        pipeline.servers, pipeline.topics["dlq_invalid"],
        until=lambda r: len(r) >= len(poison), idle=1.0,
    )  # fmt: skip
    assert sorted((r.key, r.value) for r in dlq) == sorted((r.key, r.value or b"") for r in poison)
    reasons = {b"invalid_json", b"unknown_type", b"unexpected_type", b"schema_violation"}
    assert all(dict(r.headers)["error.reason"] in reasons for r in dlq)
    assert worker.get("/healthz")[0] == 200
    samples = metric_samples(worker)
    assert total(samples, "refstream_events_total", outcome="invalid") == len(poison)

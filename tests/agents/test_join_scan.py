"""The scan after a rebalance: it finds every held event, gives the event loop back while it
reads a large table, trusts what the stages wrote meanwhile over its snapshot, and ends when
another rebalance comes."""

from __future__ import annotations

import asyncio

import orjson

from agents.codec import to_json
from agents.join import SCAN_CHUNK, JoinStage
from agents.rules import JoinRules, Stage, referral_step
from agents.state import HeldSignup, ReferralState
from dev.join_sim import as_read
from schemas.events import parse_event

KEYS = 3 * SCAN_CHUNK + 1001
RELEASED, HELD = f"ref_{KEYS - 1001}", f"ref_{KEYS - 1}"  # in the last chunk


def _state(key: str, held_at: float | None) -> bytes:
    state = ReferralState(referral_id=key)
    if held_at is not None:
        signup = as_read(parse_event(orjson.dumps({
            "event_id": f"evt_{key}", "type": "signup.completed", "referral_id": key,
            "occurred_at": "2026-09-11T10:00:00Z",
            "customer": {"id": f"cus_{key}", "email": f"{key}@example.com"},
        })))  # fmt: skip
        state.held.append(HeldSignup(received_at=held_at, signup=signup))
    return to_json(state)


class SnapshotTable:
    """Scans a copy taken when the scan starts, as RocksDB's iterators do."""

    def __init__(self, data: dict[bytes, bytes]) -> None:
        self.data = data
        self.read_by_scan = 0

    def scan(self):
        for key, value in list(self.data.items()):
            self.read_by_scan += 1
            yield key, value, self.data.get


def _stage(table: SnapshotTable) -> JoinStage:
    stage = JoinStage(Stage.REFERRAL, table, referral_step, ReferralState, JoinRules(), 100)  # type: ignore[arg-type]
    stage.needs_scan = False  # as the sweep leaves it when it starts the scan
    return stage


def _table() -> SnapshotTable:
    return SnapshotTable({
        f"ref_{i}".encode(): _state(f"ref_{i}", 1000.0 + i if i % 1000 == 0 else None)
        for i in range(KEYS)
    })  # fmt: skip


def test_the_scan_tracks_every_held_event_and_lets_the_stages_run_meanwhile():
    table = _table()
    stage = _stage(table)
    seen_during_scan: list[int] = []

    async def main() -> None:
        async def stage_work() -> None:  # what a batch does while the scan is under way
            while table.read_by_scan < KEYS and len(seen_during_scan) < KEYS:
                seen_during_scan.append(table.read_by_scan)
                if len(seen_during_scan) == 1:
                    # Keys the scan has not reached yet. The last but one held an event in the
                    # snapshot and a batch has released it since; the last held nothing in
                    # the snapshot and a batch has held a signup since.
                    for key, held_at in ((RELEASED, None), (HELD, 2000.0)):
                        table.data[key.encode()] = _state(key, held_at)
                        stage._track(key, stage.decode_state(_state(key, held_at)))
                await asyncio.sleep(0)

        await asyncio.gather(stage._scan(), stage_work())

    asyncio.run(main())
    assert seen_during_scan and 0 < seen_during_scan[0] < KEYS, "the scan held the loop"
    want = {f"ref_{i}" for i in range(0, KEYS, 1000)} - {RELEASED} | {HELD}
    assert set(stage.deadlines) == want
    assert stage.held_total == len(want)
    assert all(deadline >= stage.release_not_before for deadline in stage.deadlines.values())


def test_a_rebalance_during_the_scan_ends_it():
    table = _table()
    stage = _stage(table)

    async def main() -> None:
        async def rebalance() -> None:
            while not table.read_by_scan:
                await asyncio.sleep(0)
            stage.needs_scan = True  # what the revocation and rebalance handlers set

        await asyncio.gather(stage._scan(), rebalance())

    asyncio.run(main())
    assert table.read_by_scan == SCAN_CHUNK
    assert stage.needs_scan, "the next sweep scans again"


def test_a_revocation_or_a_rebalance_makes_every_stage_scan_again():
    """Faust sends ``on_partitions_revoked`` with the revoked partitions and
    ``on_rebalance_complete`` with nothing but its sender."""
    from agents import join

    for stage in join.STAGES.values():
        stage.needs_scan = False
    asyncio.run(join._stop_scanning(join.app, {join.TP("t", 0)}))
    assert all(stage.needs_scan for stage in join.STAGES.values())
    for stage in join.STAGES.values():
        stage.needs_scan = False
    asyncio.run(join._rescan_after_rebalance(join.app))
    assert all(stage.needs_scan for stage in join.STAGES.values())

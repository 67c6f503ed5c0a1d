import orjson

from dev.generator import Workload


def ids(workload: Workload) -> set[str]:
    return {orjson.loads(r.value)["event_id"] for r in workload.records if r.valid}


def test_runs_with_different_run_ids_share_no_event_id_and_the_same_run_replays():
    first = Workload.build(journeys=80, seed=7, invalid=0, run="a1")
    again = Workload.build(journeys=80, seed=7, invalid=0, run="a1")
    second = Workload.build(journeys=80, seed=8, invalid=0, run="b2")
    assert ids(first) == ids(again)  # --replay: the same events
    assert ids(first) and not ids(first) & ids(second)
    # and the journeys stay whole: referral ids and emails are fresh too
    text = b" ".join(r.value for r in second.records)
    assert b"ref_b2_" in text and b"_a1_" not in text

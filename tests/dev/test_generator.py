"""Workloads with run ids: the soak streams many and `generate` one per run, and their
ids must never meet unless replayed."""

from __future__ import annotations

import re

import orjson

from dev.generator import Workload


def ids_and_emails(workload: Workload) -> set[str]:
    found = set()
    for record in workload.records:
        text = record.value.decode()
        found |= set(re.findall(r"[a-z]+_[A-Za-z0-9_]*\d{6}", text))
        found |= set(re.findall(r"[\w.]+@example\.com", text.lower()))
    return found


def test_namespaces_share_no_id_or_email_and_change_nothing_else():
    plain = Workload.build(journeys=60, seed=3, invalid=0)
    first = Workload.build(journeys=60, seed=3, invalid=0, run="c00001")
    second = Workload.build(journeys=60, seed=3, invalid=0, run="c00002")

    assert ids_and_emails(first).isdisjoint(ids_and_emails(second))
    assert all("c00002" not in value for value in ids_and_emails(first))
    assert orjson.loads(plain.records[0].value)["event_id"].count("_") == 1  # evt_000123
    same = [r.value.replace(b"c00001_", b"").replace(b"C00001_", b"") for r in first.records]
    assert same == [r.value for r in plain.records]
    assert len(first.expected().emitted) == len(plain.expected().emitted)


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


def test_referrals_open_over_open_days_and_a_year_gives_a_steady_mix():
    """The latency bench's stream: over a year, past the first journeys' orders, each
    tenth of the stream holds every kind in about the same share."""

    def opened(workload: Workload) -> list[str]:
        return sorted(
            event["occurred_at"][:10]
            for event in (orjson.loads(r.value) for r in workload.phase1)
            if event["type"] == "referral.created"
        )

    month = opened(Workload.build(journeys=2000, seed=5, invalid=0))
    assert month[len(month) * 95 // 100] < "2026-10-01"  # a few open late by design
    year = Workload.build(journeys=6000, seed=5, invalid=0, open_days=365)
    yearly = opened(year)
    assert yearly[len(yearly) * 95 // 100] > "2027-07-01"
    steady = sorted((orjson.loads(r.value) for r in year.phase1), key=lambda e: e["occurred_at"])
    steady = [e for e in steady if "2026-12-10" <= e["occurred_at"][:10] < "2027-08-20"]
    tenth = len(steady) // 10
    for start in range(0, 10 * tenth, tenth):
        part = [e["type"] for e in steady[start : start + tenth]]
        assert 0.18 < part.count("order.completed") / tenth < 0.28
        assert 0.33 < part.count("signup.completed") / tenth < 0.42

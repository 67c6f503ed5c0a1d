"""The dashboard and the alerts against a real Prometheus (Debian's ``prometheus``).

Prometheus scrapes a worker and the lag exporter every second with the production alert
rules loaded (each ``for:`` shortened to 3 s, ``dev/prometheus.py``). A workload runs while
HubSpot is down, then the worker is stopped. Through Prometheus's HTTP API: every query of
the dashboard returns data, the CRM sink's lag during the outage is the broker's truth
(its circuit is open and its consumer paused: it has no high-water mark of its own to go
by), and the alerts are pending or firing when they should be, and only then.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest

from dev.gateway import GatewayProcess
from dev.generator import Workload
from dev.kafka_io import produce
from dev.prometheus import PrometheusServer, prometheus_binary
from dev.worker import WorkerProcess
from streams.lag import BrokerLag

from .test_join import run_phases

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        prometheus_binary() is None and not os.environ.get("CI"),
        reason="prometheus not installed (.ci/run installs Debian's package)",
    ),
]

DASHBOARD = Path(__file__).parents[2] / "deploy" / "grafana" / "dashboards" / "refstream.json"


def dashboard_queries() -> list[tuple[str, str]]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [
        (panel["title"], target["expr"].replace("$worker", ".*"))
        for panel in panels
        if panel["type"] != "row"
        for target in panel["targets"]
    ]


async def until(
    condition: Callable[[], object], timeout: float, what: str,
    detail: Callable[[], object] = lambda: "",
) -> object:  # fmt: skip
    deadline = time.monotonic() + timeout
    while True:
        result = await asyncio.to_thread(condition)
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what} {detail()}")
        await asyncio.sleep(0.5)


async def set_faults(url: str, faults: dict) -> None:
    """Through the emulator's control endpoint (it runs in this event loop)."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}/_control/faults", json=faults) as answer,
    ):
        assert answer.status == 200


def firing(prom: PrometheusServer, name: str) -> bool:
    return "firing" in prom.alerts().get(name, set())


def active(prom: PrometheusServer, name: str) -> bool:
    return bool(prom.alerts().get(name))


def alerted(prom: PrometheusServer, name: str, label: str, state: str = "firing") -> set[str]:
    """The ``label`` values of ``name``'s alerts in ``state``."""
    return {alert["labels"][label] for alert in prom.raw_alerts()
            if alert["labels"]["alertname"] == name and alert["state"] == state}  # fmt: skip


async def test_dashboard_and_alerts_tell_the_truth_through_an_outage_and_a_stopped_worker(
    sink_pipeline, emulators, tmp_path
):
    started, wall_start = time.monotonic(), time.time()
    pipeline = sink_pipeline
    pipeline.env["REFSTREAM_LAG_INTERVAL_SECONDS"] = "1"
    app_id = pipeline.env["REFSTREAM_APP_ID"]
    attributions = pipeline.topics["attributions"]
    crm_lag = (
        "sum(max by (group, topic, partition) "
        f'(refstream_consumer_lag{{group="{app_id}-sink-crm",topic="{attributions}"}}))'
    )
    exporter = WorkerProcess(pipeline.env, pipeline.workdir, "lag-exporter")
    exporter.command = ("lag-exporter", "--host", "127.0.0.1", "--port", str(exporter.port))
    pipeline.workers.append(exporter)  # stopped with the workers
    exporter.start()
    worker = await pipeline.start_worker(REFSTREAM_STORE="rocksdb://")  # as in production
    await asyncio.to_thread(exporter.wait_ready, 60, "/healthz")
    # the gateway's row: its own process and scrape job (no webhooks: its series at 0)
    gateway = GatewayProcess(pipeline.env, pipeline.workdir)
    pipeline.workers.append(gateway)
    gateway.start()
    await asyncio.to_thread(gateway.wait_ready, 60)
    jobs = {"refstream": [worker.url[7:]], "refstream-lag": [exporter.url[7:]],
            "refstream-gateway": [gateway.url[7:]]}  # fmt: skip
    with PrometheusServer(tmp_path / "prometheus", jobs) as prom:
        await until(lambda: all(prom.targets_up(job) for job in jobs), 30, "targets scraped")

        # HubSpot down for the whole workload: the CRM sink opens its circuit and pauses.
        # The webhook's receiver fails every third request: retried, its circuit stays closed.
        hubspot = emulators.urls["hubspot"]
        await set_faults(hubspot, {"down": True})
        await set_faults(emulators.urls["webhook"], {"status_5xx_every": 3})
        workload = Workload.build(journeys=700, seed=71, invalid=4)
        expected = workload.expected()
        records = await run_phases(pipeline, workload)
        assert len(records) >= len(expected.emitted) > 1000

        await until(lambda: firing(prom, "RefstreamCircuitOpen"), 30, "circuit alert fires")
        # The broker's truth, read here on its own: the topic's records less what the CRM
        # sink committed. It delivered nothing, but it may commit past a poll that held
        # only records it does not send (rejections), so this is at most len(records).
        crm_group = f"{app_id}-sink-crm"
        reader = BrokerLag(pipeline.servers, {crm_group: (attributions,)})
        try:
            truth = sum((await reader.refresh()).values())
        finally:
            await reader.close()
        assert 0.9 * len(records) <= truth <= len(records), (truth, len(records))
        await until(lambda: prom.value(crm_lag) == truth, 20,
                    f"CRM lag in Prometheus = {truth} records on the topic")  # fmt: skip
        # both reporters read it from the broker: the worker and the exporter agree
        per_job = crm_lag.replace("sum(max by (group,", "sum by (job) (max by (job, group,")
        by_job = {s["metric"]["job"]: float(s["value"][1]) for s in prom.query(per_job)}
        assert by_job == {"refstream": truth, "refstream-lag": truth}, by_job
        await until(lambda: crm_group in alerted(prom, "RefstreamConsumerLagGrowing", "group"),
                    20, "lag growing alert fires for the CRM sink during its outage")  # fmt: skip
        errors = (
            'sum by (sink) (rate(refstream_sink_requests_total{status=~"5..|timeout"}[5m])) '
            "/ sum by (sink) (rate(refstream_sink_requests_total[5m]))"
        )
        await until(lambda: "webhook" in alerted(prom, "RefstreamSinkErrorsHigh", "sink"), 30,
                    "webhook errors alert while its circuit is closed",
                    lambda: (prom.query(errors), prom.query("refstream_sink_circuit_open"),
                             prom.raw_alerts()))  # fmt: skip
        assert "crm" not in alerted(prom, "RefstreamSinkErrorsHigh", "sink")  # circuit open
        for quiet in ("RefstreamNoWorkerScraped", "RefstreamJoinStalled", "RefstreamSinkStuck",
                      "RefstreamInvalidInputGrowing", "RefstreamBrokerUnreachable"):  # fmt: skip
            assert not active(prom, quiet), quiet
        # an outage delays, it loses nothing
        assert prom.value('sum(increase(refstream_sink_dlq_total{sink="crm"}[15m]))') == 0

        # Every dashboard query returns data (series exist at 0 before their first event).
        empty = [(title, expr) for title, expr in dashboard_queries() if not prom.query(expr)]
        assert empty == []
        # the worker's own account: its tables hold keys, its start was a recovery
        assert (prom.value("sum(refstream_table_keys)") or 0) > 0
        assert prom.value('max(refstream_rocksdb_memory_bytes{kind="budget"})') == 128 * 2**20
        assert (prom.value('max(refstream_rocksdb_memory_bytes{kind="block_cache"})') or 0) > 0
        recovered = prom.value("max(refstream_recovery_completed_timestamp_seconds)")
        assert recovered is not None and wall_start < recovered < time.time()
        assert (prom.value("max(refstream_recovery_duration_seconds)") or 0) > 0
        # the first burst after the start is seen by increase(): its series existed at 0
        not_referred = expected.dropped.count("order_not_referred")
        released = 'sum(increase(refstream_events_released_total{reason="order_not_referred"}[5m]))'
        assert not_referred and (prom.value(released) or 0) > 0
        invalid = 'sum(increase(refstream_events_total{outcome="invalid"}[5m]))'
        assert (prom.value(invalid) or 0) > 0

        # HubSpot back: the circuit closes by itself and the CRM lag drains to 0.
        await set_faults(hubspot, {})
        await until(lambda: prom.value(crm_lag) == 0, 60, "CRM lag back to 0 after the outage")
        await until(lambda: not active(prom, "RefstreamCircuitOpen"), 20, "circuit alert ends")

        # The worker stops: lag stays visible (the exporter), new input shows as ingest lag,
        # "workers scraped" reads 0 (not No data), and the no-worker alert fires.
        await asyncio.to_thread(worker.stop, 30)  # the emulators run in this event loop
        await until(lambda: firing(prom, "RefstreamNoWorkerScraped"), 30, "no worker alert")
        assert active(prom, "RefstreamWorkerNotReady")
        more = Workload.build(journeys=30, seed=72, invalid=0, run="late")
        sent = await produce(more.records, pipeline.servers, pipeline.topics)
        ingest_lag = crm_lag.replace(f'group="{app_id}-sink-crm",topic="{attributions}"',
                                     f'group="{app_id}-ingest"')  # fmt: skip
        await until(lambda: prom.value(ingest_lag) == sent, 20,
                    f"ingest lag = the {sent} records sent while the worker is down")  # fmt: skip
        for title, expr in dashboard_queries():
            if title == "Workers scraped and ready":
                assert prom.value(expr) == 0, expr
    print(f"live Prometheus test: {time.monotonic() - started:.0f} s, crm lag {truth}")

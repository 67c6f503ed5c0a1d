"""The provisioned dashboard: valid JSON, and every query names metrics a worker exposes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from .families import exposed

DEPLOY = Path(__file__).parents[2] / "deploy" / "grafana"
DASHBOARD = DEPLOY / "dashboards" / "refstream.json"

METRIC = re.compile(r"\b((?:refstream|process)_[a-z_]+)\b")
SELECTOR = re.compile(r"\b((?:refstream|process)_[a-z_]+)\{([^}]*)\}")
GROUPING = re.compile(r"\b(?:by|on) \(([^)]*)\)")
SCRAPED = 'up{job="refstream"}'
"""The only series besides the worker's own families: Prometheus's scrape of the workers."""


def panels() -> list[dict]:
    """The dashboard's panels, rows left out."""
    return [p for p in json.loads(DASHBOARD.read_text())["panels"] if p["type"] != "row"]


def queries() -> list[tuple[str, str, str]]:
    return [
        (panel["title"], target["expr"], target.get("legendFormat", ""))
        for panel in panels()
        for target in panel["targets"]
    ]


def test_every_panel_queries_existing_metric_families():
    families = exposed()
    assert len(panels()) >= 25
    for title, expr, legend in queries():
        metrics = METRIC.findall(expr)
        assert metrics or expr.startswith("vector(") or SCRAPED in expr, title
        for metric in metrics:
            assert metric in families, f"{title}: {metric} is not exposed"
        # Labels the query filters, groups or labels its legend by exist on its metrics.
        available = set().union(*(families[m] for m in metrics)) if metrics else set()
        for metric, matchers in SELECTOR.findall(expr):
            for label in re.findall(r"(\w+)\s*=", matchers):
                assert label in families[metric], f"{title}: {metric} has no label {label}"
        for grouping in GROUPING.findall(expr):
            for label in filter(None, (s.strip() for s in grouping.split(","))):
                assert label in available | {"instance"}, f"{title}: no label {label} to group by"
        for label in re.findall(r"\{\{(\w+)\}\}", legend):
            assert label in available, f"{title}: legend uses missing label {label}"


def test_dashboard_covers_what_sres_watch():
    text = " ".join(expr for _, expr, _ in queries())
    assert 'outcome="unavailable"' in text and 'outcome="unauthorized"' in text
    for family in (
        "refstream_events_total", "refstream_consumer_lag",
        "refstream_attribution_latency_seconds_bucket", "refstream_sink_delivered_total",
        "refstream_sink_retries_total", "refstream_sink_dlq_total",
        "refstream_sink_circuit_open", "refstream_sink_delivery_latency_seconds_bucket",
        "refstream_worker_ready", "refstream_gateway_requests_total",
        "refstream_gateway_request_duration_seconds_bucket",
        "refstream_gateway_events_published_total", "refstream_gateway_dlq_total",
        "refstream_events_released_total",
        "refstream_producer_send_retries_total", "refstream_table_keys",
        "refstream_recovery_completed_timestamp_seconds", "process_cpu_seconds_total",
        "process_resident_memory_bytes", "process_open_fds", SCRAPED,
    ):  # fmt: skip
        assert family in text, family


def test_no_panel_depends_on_fausts_sensor():
    """Faust's sensor is optional (REFSTREAM_FAUST_SENSOR) and blind to this app: the
    stages skip its per-event path and the app sends through its own producer."""
    for title, expr, _ in queries():
        assert "refstream_faust_" not in expr, title


def test_per_worker_panels_follow_the_worker_variable():
    dashboard = json.loads(DASHBOARD.read_text())
    (variable,) = dashboard["templating"]["list"]
    assert variable["name"] == "worker" and SCRAPED in variable["query"]["query"]
    for title, expr, _ in queries():
        # lag comes from the broker (workers and the lag exporter alike), the gateway is a
        # scrape job of its own: neither is per worker
        if "refstream_consumer_lag" in expr or expr.startswith("vector("):
            continue
        if "refstream_gateway_" in expr:
            continue
        for metric, matchers in SELECTOR.findall(expr):
            if metric.startswith(("refstream_", "process_")):
                assert 'instance=~"$worker"' in matchers, (title, metric)


def test_readme_says_what_every_panel_answers():
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    for panel in panels():
        assert f"**{panel['title']}**" in readme, panel["title"]


def test_grafana_provisioning_points_at_the_dashboard_and_prometheus():
    provider = yaml.safe_load((DEPLOY / "provisioning/dashboards/refstream.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    source = yaml.safe_load((DEPLOY / "provisioning/datasources/prometheus.yml").read_text())
    uid = source["datasources"][0]["uid"]
    assert {p["datasource"]["uid"] for p in panels()} == {uid}

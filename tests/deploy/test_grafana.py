"""The provisioned dashboard: valid JSON, and every query names metrics a worker exposes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from .families import exposed

DEPLOY = Path(__file__).parents[2] / "deploy" / "grafana"
DASHBOARD = DEPLOY / "dashboards" / "refstream.json"

METRIC = re.compile(r"\b(refstream_[a-z_]+)\b")
SELECTOR = re.compile(r"\b(refstream_[a-z_]+)\{([^}]*)\}")
GROUPING = re.compile(r"\bby \(([^)]*)\)")


def queries() -> list[tuple[str, str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [
        (panel["title"], target["expr"], target.get("legendFormat", ""))
        for panel in dashboard["panels"]
        for target in panel["targets"]
    ]


def test_every_panel_queries_existing_metric_families():
    families = exposed()
    panels = json.loads(DASHBOARD.read_text())["panels"]
    assert len(panels) >= 15
    for title, expr, legend in queries():
        metrics = METRIC.findall(expr)
        assert metrics or expr.startswith("vector("), title
        for metric in metrics:
            assert metric in families, f"{title}: {metric} is not exposed"
        # Labels the query filters, groups or labels its legend by exist on its metrics.
        available = set().union(*(families[m] for m in metrics)) if metrics else set()
        for metric, matchers in SELECTOR.findall(expr):
            for label in re.findall(r"(\w+)\s*=", matchers):
                assert label in families[metric], f"{title}: {metric} has no label {label}"
        for grouping in GROUPING.findall(expr):
            for label in filter(None, (s.strip() for s in grouping.split(","))):
                assert label in available, f"{title}: no label {label} to group by"
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
    ):  # fmt: skip
        assert family in text, family


def test_grafana_provisioning_points_at_the_dashboard_and_prometheus():
    provider = yaml.safe_load((DEPLOY / "provisioning/dashboards/refstream.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    source = yaml.safe_load((DEPLOY / "provisioning/datasources/prometheus.yml").read_text())
    uid = source["datasources"][0]["uid"]
    dashboard = json.loads(DASHBOARD.read_text())
    assert {p["datasource"]["uid"] for p in dashboard["panels"]} == {uid}

"""The alert rules pass ``promtool check rules`` and their own ``promtool test rules``."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from .families import exposed

DEPLOY = Path(__file__).parents[2] / "deploy" / "prometheus"

# CI installs promtool (.ci/run); elsewhere its absence only skips these two tests.
promtool = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    promtool is None and not os.environ.get("CI"), reason="promtool not installed"
)


def run_promtool(*args: str) -> str:
    assert promtool, "promtool missing: install Debian's prometheus package"
    done = subprocess.run([promtool, *args], capture_output=True, text=True, cwd=DEPLOY)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@needs_promtool
def test_rules_are_valid():
    assert "SUCCESS: 16 rules found" in run_promtool("check", "rules", "alerts.yml")


@needs_promtool
def test_rules_unit_tests_pass():
    assert "SUCCESS" in run_promtool("test", "rules", "alerts.test.yml")


def test_every_alert_has_a_unit_test_that_expects_it_to_fire():
    rules = yaml.safe_load((DEPLOY / "alerts.yml").read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    tests = yaml.safe_load((DEPLOY / "alerts.test.yml").read_text())["tests"]
    fired = {
        case["alertname"]
        for test in tests
        for case in test["alert_rule_test"]
        if case["exp_alerts"]
    }
    assert fired == alerts


def test_prometheus_scrapes_the_workers_and_loads_the_rules():
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    job = next(job for job in config["scrape_configs"] if job["job_name"] == "refstream")
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"] == ["worker-1:6066", "worker-2:6066"]
    gateway = next(
        job for job in config["scrape_configs"] if job["job_name"] == "refstream-gateway"
    )
    assert gateway["static_configs"][0]["targets"] == ["gateway:8088"]
    lag = next(job for job in config["scrape_configs"] if job["job_name"] == "refstream-lag")
    assert lag["static_configs"][0]["targets"] == ["lag-exporter:6068"]


def test_alerts_query_metrics_a_worker_exposes():
    families = exposed()
    rules = yaml.safe_load((DEPLOY / "alerts.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            metrics = re.findall(r"\b((?:refstream|process)_[a-z_]+)\b", rule["expr"])
            # only the scrape's own `up` besides the families a worker exposes
            assert metrics or 'up{job="refstream"}' in rule["expr"], rule["alert"]
            assert all(m in families for m in metrics), (rule["alert"], metrics)

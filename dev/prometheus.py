"""A real Prometheus server (Debian's ``prometheus`` binary) for tests: it scrapes the given
targets every second and evaluates the alert rules of ``deploy/prometheus/alerts.yml``,
with every ``for:`` shortened so that a test of a minute or two sees alerts fire."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from dev.broker import free_port, stop_process

__all__ = ["ALERTS", "PrometheusServer", "prometheus_binary"]

ALERTS = Path(__file__).parents[1] / "deploy" / "prometheus" / "alerts.yml"


def prometheus_binary() -> str | None:
    return shutil.which("prometheus")


def shortened_rules(alert_for: str) -> dict:
    """The production rules, each ``for:`` replaced by ``alert_for`` (test only)."""
    rules = yaml.safe_load(ALERTS.read_text())
    for group in rules["groups"]:
        group["interval"] = "1s"
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = alert_for
    return rules


class PrometheusServer:
    """``with PrometheusServer(workdir, {"refstream": [...], ...}) as prom: prom.query(...)``"""

    def __init__(self, workdir: Path, jobs: dict[str, list[str]], alert_for: str = "3s") -> None:
        binary = prometheus_binary()
        if binary is None:
            raise RuntimeError("prometheus missing: install Debian's prometheus package")
        self.binary = binary
        self.workdir = workdir
        self.jobs = jobs
        self.alert_for = alert_for
        self.port = free_port()
        self.log_path = workdir / "prometheus.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> PrometheusServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "alerts.yml").write_text(yaml.safe_dump(shortened_rules(self.alert_for)))
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s",
                       "scrape_timeout": "900ms"},
            "rule_files": [str(self.workdir / "alerts.yml")],
            "scrape_configs": [
                {"job_name": job, "metrics_path": "/metrics",
                 "static_configs": [{"targets": targets}]}
                for job, targets in self.jobs.items()
            ],
        }  # fmt: skip
        (self.workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [self.binary, f"--config.file={self.workdir / 'prometheus.yml'}",
                 f"--storage.tsdb.path={self.workdir / 'tsdb'}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited: {self.log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as answer:
                    if answer.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.3)
        raise TimeoutError("prometheus not ready after 60 s")

    def __exit__(self, *exc: object) -> None:
        stop_process(self.process, timeout=10)

    def _get(self, path: str, **params: str) -> Any:
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as answer:
            body = json.loads(answer.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict]:
        """The instant vector (or scalar, as one sample) ``expr`` evaluates to now."""
        data = self._get("/api/v1/query", query=expr)
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        return data["result"]

    def value(self, expr: str) -> float | None:
        """The single value of ``expr`` (None when it returns nothing)."""
        result = self.query(expr)
        assert len(result) <= 1, result
        return float(result[0]["value"][1]) if result else None

    def raw_alerts(self) -> list[dict]:
        """The active alerts, each with its ``labels`` and ``state``."""
        return self._get("/api/v1/alerts")["alerts"]

    def alerts(self) -> dict[str, set[str]]:
        """Alert name → the states (``pending``, ``firing``) of its active alerts."""
        states: dict[str, set[str]] = {}
        for alert in self.raw_alerts():
            states.setdefault(alert["labels"]["alertname"], set()).add(alert["state"])
        return states

    def targets_up(self, job: str) -> int:
        return int(self.value(f'count(up{{job="{job}"}} == 1) or vector(0)') or 0)

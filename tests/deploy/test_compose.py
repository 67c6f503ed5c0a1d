"""``docker-compose.yml`` validates against the Compose schema, and everything it mounts or
builds from is in the repository (no ``docker compose`` on this machine)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml

ROOT = Path(__file__).parents[2]
SCHEMA = Path(__file__).parent / "compose-spec.json"  # compose-spec/compose-spec, unchanged


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_file_validates_against_the_compose_schema():
    schema = json.loads(SCHEMA.read_text())
    jsonschema.validate(compose(), schema, cls=jsonschema.Draft7Validator)


def test_schema_check_catches_a_broken_file():
    broken = compose()
    broken["services"]["worker-1"]["depends_on"] = {"kafka": {"condition": "whenever"}}
    errors = list(jsonschema.Draft7Validator(json.loads(SCHEMA.read_text())).iter_errors(broken))
    assert errors


def test_every_service_has_its_files_in_the_repo():
    services = compose()["services"]
    assert {"kafka", "kafka-init", "worker-1", "worker-2", "emulators", "prometheus",
            "grafana", "lag-exporter"} <= set(services)  # fmt: skip
    for name, service in services.items():
        build = service.get("build")
        if build:
            assert (ROOT / build["context"] / build["dockerfile"]).is_file(), name
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name}: {source} missing"


def test_workers_are_wired_by_environment():
    services = compose()["services"]
    for name in ("worker-1", "worker-2"):
        env = services[name]["environment"]
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert env["REFSTREAM_CANONICAL_URL"] == f"http://{name}:6066"
        for var in ("HUBSPOT_ACCESS_TOKEN", "KLAVIYO_API_KEY", "MIXPANEL_PROJECT_TOKEN"):
            assert var in env, (name, var)
    assert services["worker-1"]["build"]["target"] == "worker"


def test_the_gateway_runs_from_the_worker_image_with_its_secrets_from_the_environment():
    services = compose()["services"]
    gateway = services["gateway"]
    assert (gateway["image"], gateway["command"]) == ("refstream-worker:dev", ["gateway"])
    env = gateway["environment"]
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    for source in ("SHOPIFY", "STRIPE", "REFERRALCANDY", "REWARDFUL", "INTERNAL"):
        assert env[f"REFSTREAM_GATEWAY_{source}_SECRET"].startswith(
            f"${{REFSTREAM_GATEWAY_{source}_SECRET:-"
        )
    assert "8088:8088" in gateway["ports"]
    topics = (ROOT / "deploy/kafka/create-topics.sh").read_text()
    assert "refstream-dlq-gateway" in topics

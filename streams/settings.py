"""The one place that reads the environment (contract section 2).

Everything else receives a :class:`Settings` (or a part of it) as an argument.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from functools import cached_property, lru_cache
from typing import Annotated

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from agents.rules import JoinRules
from sinks.errors import ConfigurationError
from streams.allocator import Malloc
from streams.connection import KafkaConnection, KafkaSecurity

__all__ = ["BrokerCompat", "Settings", "Topics", "get_settings", "load_settings"]

DEFAULT_SINKS = ("crm", "email", "analytics")


class BrokerCompat(StrEnum):
    KAFKA = "kafka"
    TANSU = "tansu"


class Topics(BaseSettings):
    """Topic names; the defaults are the contract (section 3)."""

    model_config = SettingsConfigDict(env_prefix="REFSTREAM_TOPIC_", frozen=True)

    referrals: str = "referrals"
    signups: str = "signups"
    orders: str = "orders"
    attributions: str = "attributions"
    dlq_invalid: str = "refstream-dlq-invalid"
    dlq_sink_prefix: str = "refstream-dlq-"
    dlq_gateway: str = "refstream-dlq-gateway"
    by_referral: str = "refstream-join-by-referral"
    by_customer: str = "refstream-join-by-customer"
    by_email: str = "refstream-join-by-email"
    by_advocate: str = "refstream-join-by-advocate"
    by_order: str = "refstream-join-by-order"
    advocate_totals: str = "refstream-advocate-totals"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    kafka_bootstrap_servers: str = Field("localhost:9092", alias="KAFKA_BOOTSTRAP_SERVERS")
    app_id: str = Field("refstream", alias="REFSTREAM_APP_ID")
    web_host: str = Field("0.0.0.0", alias="REFSTREAM_WEB_HOST")
    web_port: int = Field(6066, alias="REFSTREAM_WEB_PORT")
    canonical_url: str | None = Field(None, alias="REFSTREAM_CANONICAL_URL")
    """How other workers reach this one's HTTP port (table-routed lookups)."""
    store: str = Field("rocksdb://", alias="REFSTREAM_STORE")
    data_dir: str = Field("data", alias="REFSTREAM_DATA_DIR")
    rocksdb_memory_mb: int = Field(128, ge=16, alias="REFSTREAM_ROCKSDB_MEMORY_MB")
    """One block cache and memtable budget shared by all of a worker's table-partition
    databases (streams/rocksdb_budget.py): RocksDB's memory whatever partitions it owns."""
    malloc: Malloc = Field(Malloc.AUTO, alias="REFSTREAM_MALLOC")
    """The worker's allocator: jemalloc when installed (``auto``), required (``jemalloc``),
    or glibc's (``system``); glibc's fragments under RocksDB (streams/allocator.py)."""
    sinks: Annotated[tuple[str, ...], NoDecode] = Field(DEFAULT_SINKS, alias="REFSTREAM_SINKS")
    """The sinks to run; each reads its own settings (its ``Settings`` model, ``sinks/``)."""
    broker_compat: BrokerCompat = Field(BrokerCompat.KAFKA, alias="REFSTREAM_BROKER_COMPAT")
    session_timeout_seconds: float = Field(
        10.0, ge=6, le=300, alias="REFSTREAM_SESSION_TIMEOUT_SECONDS"
    )
    """Consumer-group session of every group of the worker (Faust's app, ingest, sinks): how
    long a killed worker keeps its partitions before the group moves them. Faust's own
    default (60 s) left a kill -9 takeover waiting a minute; Kafka's floor is 6 s
    (``group.min.session.timeout.ms``). Heartbeats go every third of it."""
    partitions: int = Field(8, ge=1, alias="REFSTREAM_PARTITIONS")
    """Partitions of the topics the app creates (re-keyed join topics, changelogs, outputs)."""
    replication_factor: int = Field(1, ge=1, alias="REFSTREAM_REPLICATION_FACTOR")
    standby_replicas: int = Field(0, ge=0, alias="REFSTREAM_STANDBY_REPLICAS")
    """Other workers that keep a standby copy of each table partition, for a fast takeover.
    A standby replays every write of the partitions it shadows: on two cores it cut the
    second worker's gain from 1.8x to 1.2x (README, performance). With 0 (Kafka Streams'
    default too), a worker that takes a partition over rebuilds it from the changelog."""
    batch_size: int = Field(4000, ge=1, alias="REFSTREAM_BATCH_SIZE")
    """Input records per ingest fetch, entries per stage chunk. Each chunk costs requests,
    acknowledgements and write batches of its own: 4,000 read 8-10 % less of the worker's
    CPU per event than 2,000 on the bench backlog (README, performance, item 40); at a
    steady rate chunks are what arrived meanwhile, so latency does not depend on it."""
    batch_linger_seconds: float = Field(0.05, gt=0, alias="REFSTREAM_BATCH_LINGER_SECONDS")
    commit_interval_seconds: float = Field(2.8, gt=0, alias="REFSTREAM_COMMIT_INTERVAL_SECONDS")
    faust_sensor: bool = Field(True, alias="REFSTREAM_FAUST_SENSOR")
    """Faust's own sensors (its Prometheus series); they cost about a quarter of the join's
    throughput (README, performance), so a worker at its limit may turn them off."""

    sink_stuck_seconds: float = Field(300, gt=0, alias="REFSTREAM_SINK_STUCK_SECONDS")
    """A sink whose oldest undelivered record is older than this while its vendor answers
    is stuck: ``/readyz`` names it (sinks/delivery/watch.py)."""

    lag_interval_seconds: float = Field(5.0, gt=0, alias="REFSTREAM_LAG_INTERVAL_SECONDS")
    """How often consumer lag is read from the broker (``streams/lag.py``), by every worker
    and by ``refstream lag-exporter``."""

    signup_window_days: float = Field(30, gt=0, alias="ATTRIBUTION_SIGNUP_WINDOW_DAYS")
    order_window_days: float = Field(90, gt=0, alias="ATTRIBUTION_ORDER_WINDOW_DAYS")
    pending_ttl_seconds: float = Field(86400, gt=0, alias="PENDING_TTL_SECONDS")
    clock_skew_seconds: float = Field(300, ge=0, alias="ATTRIBUTION_CLOCK_SKEW_SECONDS")
    """Rule 14: every attribution window opens this much before its start."""
    advocate_facts_apart: bool = Field(False, alias="REFSTREAM_ADVOCATE_FACTS_APART")
    """For a rolling upgrade from a version before 2026-12-06: the referral stage sends an
    order's advocate revenue and its fact as two messages, which those versions read (one
    of theirs would apply only the revenue of the merged message). Roll once more without
    it when no such worker is left (README, Operations)."""
    dedup_ttl_hours: float = Field(72, gt=0, alias="REFSTREAM_DEDUP_TTL_HOURS")
    """Rule 13: event ids are remembered at least this long (processing time): the longest
    retry window of the platforms that push to the gateway (Stripe, Rewardful: 3 days)."""

    topics: Topics = Field(default_factory=Topics)
    kafka_security: KafkaSecurity = Field(default_factory=KafkaSecurity)

    @field_validator("sinks", mode="before")
    @classmethod
    def _split_sinks(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(s.strip() for s in value.split(",") if s.strip())
        return value

    @field_validator("sinks")
    @classmethod
    def _known_sinks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from sinks.registry import sink_names  # the sinks import settings-free modules only

        unknown = sorted(set(value) - set(sink_names()))
        if unknown:
            raise ValueError(f"unknown sink(s) {unknown}; known: {', '.join(sink_names())}")
        return value

    @property
    def join_rules(self) -> JoinRules:
        return JoinRules(
            signup_window=timedelta(days=self.signup_window_days),
            order_window=timedelta(days=self.order_window_days),
            pending_ttl=self.pending_ttl_seconds,
            clock_skew=timedelta(seconds=self.clock_skew_seconds),
            dedup_ttl=self.dedup_ttl_hours * 3600,
            advocate_facts_apart=self.advocate_facts_apart,
        )

    def sink_dlq(self, sink: str) -> str:
        return f"{self.topics.dlq_sink_prefix}{sink}"

    @property
    def heartbeat_interval_seconds(self) -> float:
        return self.session_timeout_seconds / 3

    @property
    def rocksdb_memory_bytes(self) -> int:
        return self.rocksdb_memory_mb * 1024 * 1024

    @cached_property
    def kafka(self) -> KafkaConnection:
        """How this process's Kafka clients connect (servers, TLS, SASL)."""
        return KafkaConnection(self.kafka_bootstrap_servers, self.kafka_security)

    @property
    def broker_url(self) -> str:
        return ";".join(f"kafka://{s.strip()}" for s in self.kafka_bootstrap_servers.split(","))


_PREFIXES = {"KafkaSecurity": "KAFKA_", "Topics": "REFSTREAM_TOPIC_"}


def load_settings() -> Settings:
    """The settings, or a :class:`ConfigurationError` naming each variable that is wrong."""
    try:
        return Settings()
    except ValidationError as exc:
        prefix = _PREFIXES.get(exc.title, "")
        problems = []
        for error in exc.errors():
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "enum":
                message += f", not {error['input']!r}"
            if error["loc"]:
                name = str(error["loc"][0])
                variable = f"{prefix}{name.upper()}" if prefix else name
                message = f"{variable}: {message}"
            problems.append(message)
        raise ConfigurationError("; ".join(problems)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()

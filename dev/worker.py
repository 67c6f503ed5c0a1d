"""Run ``refstream worker`` as a child process (tests, demo, benchmarks)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from dev.broker import free_port

__all__ = ["WorkerProcess"]


class WorkerProcess:
    """One worker process with its own web port, data dir and log file."""

    def __init__(
        self, env: dict[str, str], workdir: Path, name: str = "worker", module: str = "streams"
    ) -> None:
        self.port = free_port()
        self.module = module
        self.workdir = workdir
        self.log_path = workdir / f"{name}.log"
        self.env = {
            **os.environ,
            **env,
            "REFSTREAM_WEB_HOST": "127.0.0.1",
            "REFSTREAM_WEB_PORT": str(self.port),
            "REFSTREAM_CANONICAL_URL": f"http://127.0.0.1:{self.port}",
            "REFSTREAM_DATA_DIR": str(workdir / f"{name}-data"),
        }
        self.process: subprocess.Popen | None = None
        self.command: tuple[str, ...] = ("worker", "--loglevel", "info")
        """The ``refstream`` command the process runs (e.g. ``lag-exporter``)."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> WorkerProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.module, *self.command],
                cwd=self.workdir,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def get(self, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def wait_ready(self, timeout: float = 90.0, path: str = "/readyz") -> WorkerProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"worker exited; log:\n{self.tail()}")
            try:
                if self.get(path, timeout=2)[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"worker not ready after {timeout}s; log:\n{self.tail()}")

    def kill(self) -> None:
        """``kill -9``: no shutdown, no commit, no flush."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self, timeout: float = 30.0) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

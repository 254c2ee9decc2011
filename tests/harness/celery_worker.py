"""A real Celery worker process (``celery -A worker.app:app worker``) for integration tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.harness.network import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]


class CeleryWorker:
    """Start with the environment a deployed worker would get; stop with SIGTERM (warm)."""

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        log_path: Path,
        concurrency: int = 1,
        pool: str = "prefork",
        include: Sequence[str] = (),
        hostname: str = "conveyor-test@%h",
    ) -> None:
        self.env = {**os.environ, **env}
        self.log_path = log_path
        self.args = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "worker.app:app",
            "worker",
            "--loglevel",
            "INFO",
            "--concurrency",
            str(concurrency),
            "--pool",
            pool,
            "--hostname",
            hostname,
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
        ]
        if include:
            self.args += ["--include", ",".join(include)]
        self.process: subprocess.Popen[bytes] | None = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def _ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"celery worker exited early:\n{self.log()[-4000:]}")
        return " ready." in self.log()

    def start(self, timeout: float = 60) -> CeleryWorker:
        started = time.monotonic()
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.args,
                cwd=REPO_ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until(self._ready, timeout=timeout, what="celery worker ready")
        self.startup_seconds = time.monotonic() - started
        return self

    def kill(self) -> None:
        """SIGKILL the whole process group (main process and pool children): a crashed host."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self, timeout: float = 30) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def __enter__(self) -> CeleryWorker:
        try:
            return self.start()
        except BaseException:
            self.kill()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

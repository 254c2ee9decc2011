"""moto's server on a free loopback port: real HTTP for boto3 and kombu."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from tests.harness.network import free_port, wait_until

DUMMY_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


def _idle_priority() -> None:
    """In the child before exec: the idle scheduling class (no privilege needed), else nice 19."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        os.nice(19)


class MotoServer:
    """``with MotoServer() as moto: moto.url``. Logs go to a file beside the test run."""

    def __init__(
        self,
        extra_env: Mapping[str, str] | None = None,
        log_dir: Path | None = None,
        *,
        background: bool = False,
    ):
        """``background`` runs moto in Linux's idle scheduling class: it gets only CPU nothing
        else wants (a benchmark that must not count the emulator's CPU against what it
        measures)."""
        self.background = background
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra_env = dict(extra_env or {})
        directory = log_dir or Path(tempfile.gettempdir())
        self.log_path = directory / f"moto-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def _ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"moto server exited: {self.log_path.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{self.url}/moto-api/", timeout=0.5):
                return True
        except OSError:
            return False

    def start(self) -> MotoServer:
        started = time.monotonic()
        env = {**os.environ, **DUMMY_AWS_ENV, **self.extra_env}
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                preexec_fn=_idle_priority if self.background else None,  # noqa: PLW1509
            )
        wait_until(self._ready, timeout=30, what="moto server")
        self.startup_seconds = time.monotonic() - started
        return self

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

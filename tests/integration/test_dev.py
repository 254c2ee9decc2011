"""``conveyor dev`` end to end: a subprocess in a temporary directory, driven over HTTP.

It must get ready, run the 3-step example through the API, fire the every-minute heartbeat
within two scheduler intervals of its fire time, stop within 10 s on SIGINT leaving no process
behind, and, started again, resume with the same data (same API key, the outbox re-sent).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.harness.network import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
INTERVAL = 2.0

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without Conveyor or AWS endpoint settings: embedded defaults."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CONVEYOR_", "AWS_ENDPOINT_URL", "PYTEST_"))
    }
    env["CONVEYOR_HOME"] = str(home)
    env["NO_COLOR"] = "1"
    env.update(extra)
    return env


def pid_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def descendants_and_groups(pids: list[int]) -> set[int]:
    """``pids``, every process in their process groups, and all their descendants (/proc)."""
    table: dict[int, tuple[int, int]] = {}  # pid -> (parent, process group)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[-1].split()
            except OSError:
                continue
            table[int(entry.name)] = (int(fields[1]), int(fields[2]))
    found = {pid for pid in pids if pid in table}
    groups = set(found)
    changed = True
    while changed:
        changed = False
        for pid, (parent, group) in table.items():
            if pid not in found and (parent in found or group in groups):
                found.add(pid)
                changed = True
    return found


class DevProcess:
    """``conveyor dev`` as a subprocess; stdout lines are collected (JSON with ``--json``)."""

    def __init__(
        self,
        cwd: Path,
        *,
        json_output: bool = True,
        port: int | None = None,
        service_port: int = 0,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.cwd = cwd
        self.home = cwd / ".conveyor"
        self.port = port or free_port()
        self.json_output = json_output
        self.argv = [
            sys.executable, "-m", "conveyor_cli.main", "dev",
            "--port", str(self.port), "--interval", f"{INTERVAL:g}",
            "--service-port", str(service_port),
        ]  # fmt: skip
        if json_output:
            self.argv.append("--json")
        self.env = clean_env(self.home, **(extra_env or {}))
        self.lines: list[str] = []
        self.records: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.process: subprocess.Popen[str] | None = None
        self.stderr_path = cwd / f"dev-stderr-{self.port}.log"
        self.started_at = 0.0

    def start(self) -> DevProcess:
        self.started_at = time.monotonic()
        with self.stderr_path.open("w") as stderr:
            self.process = subprocess.Popen(
                self.argv, cwd=self.cwd, env=self.env, stdout=subprocess.PIPE, stderr=stderr,
                text=True, start_new_session=True,
            )  # fmt: skip
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self.lock:
                self.lines.append(line.rstrip("\n"))
                if self.json_output and line.startswith("{"):
                    self.records.append(json.loads(line))

    def output(self) -> str:
        with self.lock:
            text = "\n".join(self.lines)
        return f"{text}\n--- stderr ---\n{self.stderr_path.read_text()[-4000:]}"

    def wait_for(
        self, predicate: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.1
    ) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            assert self.process is not None
            if self.process.poll() is not None:
                pytest.fail(f"conveyor dev exited ({self.process.returncode}):\n{self.output()}")
            time.sleep(interval)
        pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}:\n{self.output()}")

    def record(self, event: str, **match: Any) -> dict[str, Any] | None:
        with self.lock:
            for record in self.records:
                if record.get("event") == event and all(
                    record.get(k) == v for k, v in match.items()
                ):
                    return record
        return None

    def wait_ready(self, timeout: float = 120) -> dict[str, Any]:
        if self.json_output:
            ready = self.wait_for(lambda: self.record("ready"), timeout=timeout, what="ready")
        else:
            ready = self.wait_for(
                lambda: any(line.startswith("ready in ") for line in list(self.lines)),
                timeout=timeout,
                what="the ready line",
            )
        self.ready_seconds = time.monotonic() - self.started_at
        return ready if isinstance(ready, dict) else {}

    def tracked_pids(self) -> set[int]:
        assert self.process is not None
        return descendants_and_groups([self.process.pid])

    def interrupt(self, timeout: float = 15) -> tuple[int, float]:
        """SIGINT, as Ctrl-C would; the exit code and how long the stop took."""
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(timeout=timeout)
        return code, time.monotonic() - started

    def kill(self) -> None:
        """Last resort in teardown: nothing of ours may outlive the test."""
        if self.process is None:
            return
        pids = self.tracked_pids()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=15)
        for pid in pids:
            if pid_alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


@pytest.fixture
def dev_factory(tmp_path: Path) -> Iterator[Callable[..., DevProcess]]:
    started: list[DevProcess] = []

    def start(**options: Any) -> DevProcess:
        dev = DevProcess(tmp_path, **options)
        started.append(dev)
        return dev.start()

    yield start
    for dev in started:
        dev.kill()


def api(ready: dict[str, Any]) -> httpx.Client:
    return httpx.Client(
        base_url=ready["api_url"],
        headers={"Authorization": f"Bearer {ready['api_key']}"},
        timeout=10,
    )


def wait_status(dev: DevProcess, client: httpx.Client, task_id: str, status: str) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        view: dict[str, Any] = client.get(f"/tasks/{task_id}").raise_for_status().json()
        if view["status"] in {"failed", "timed_out", "cancelled"} and status != view["status"]:
            pytest.fail(f"task {task_id} ended {view['status']}: {view}\n{dev.output()}")
        return view if view["status"] == status else None

    view: dict[str, Any] = dev.wait_for(
        reached, timeout=60, what=f"{task_id} {status}", interval=0.3
    )
    return view


def stop_and_check_nothing_left(dev: DevProcess) -> float:
    pids = dev.tracked_pids()
    assert len(pids) >= 7, f"expected dev + its children, found {sorted(pids)}"
    code, seconds = dev.interrupt()
    assert code == 0, dev.output()
    assert seconds < 10, f"stopping took {seconds:.1f}s"
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and any(pid_alive(pid) for pid in pids):
        time.sleep(0.05)
    left = sorted(pid for pid in pids if pid_alive(pid))
    assert not left, f"processes left running after SIGINT: {left}"
    return seconds


def test_dev_runs_the_examples_and_stops_cleanly(dev_factory: Callable[..., DevProcess]) -> None:
    dev = dev_factory()
    ready = dev.wait_ready()
    print(
        f"\n[dev] ready in {ready['elapsed_seconds']}s (seen by the test: {dev.ready_seconds:.1f}s)"
    )
    assert ready["api_url"] == f"http://127.0.0.1:{dev.port}"
    assert ready["api_key"].startswith("cvk_")
    assert (dev.home / "dev-api-key").read_text().strip() == ready["api_key"]
    names = {item["name"] for item in ready["workflows"]}
    assert {"heartbeat", "daily-report", "pipeline"} <= names
    assert "moto" in ready["components"]["queue"]
    assert (dev.home / "conveyor.db").exists()

    with api(ready) as client:
        assert client.get("/health").status_code == 200
        accepted = client.post("/tasks", json={"workflow": "pipeline"})
        assert accepted.status_code == 202, accepted.text
        task_id = accepted.json()["id"]
        view = wait_status(dev, client, task_id, "succeeded")
        assert [step["name"] for step in view["steps"]] == ["fetch", "enrich", "store"]
        outputs = {step["name"]: step["output"] for step in view["steps"]}
        assert outputs["store"]["stored"] == 20
        # the agent step runs against the local fake provider
        report = client.post("/tasks", json={"workflow": "daily-report"}).json()["id"]
        report_view = wait_status(dev, client, report, "succeeded")
        summary = next(s for s in report_view["steps"] if s["name"] == "summarize")
        assert "local fake model" in summary["output"]["text"]
        assert summary["usage"]["output_tokens"] > 0

    # the person watching saw the run, one line per event
    dev.wait_for(
        lambda: dev.record("execution", execution_id=task_id, kind="succeeded"),
        timeout=5,
        what="the succeeded event line",
    )
    labels = [r["label"] for r in list(dev.records) if r.get("execution_id") == task_id]
    assert labels[0] == "submitted"
    assert labels.count("step done") == 3

    # the every-minute heartbeat fires within two ticks of its fire time
    heartbeat = next(item for item in ready["workflows"] if item["name"] == "heartbeat")
    due = datetime.fromisoformat(heartbeat["next_run_at"])
    fired = dev.wait_for(
        lambda: dev.record("execution", workflow="heartbeat", kind="created"),
        timeout=90,
        what="the heartbeat to fire",
        interval=0.2,
    )
    lateness = (datetime.fromisoformat(fired["event_at"]) - due).total_seconds()
    assert -0.5 <= lateness <= 2 * INTERVAL + 1.5, f"heartbeat fired {lateness:.1f}s after due"
    dev.wait_for(
        lambda: dev.record("execution", execution_id=fired["execution_id"], kind="succeeded"),
        timeout=30,
        what="the heartbeat to succeed",
    )

    stop_and_check_nothing_left(dev)
    assert dev.record("stopped") is not None


def test_restart_resumes_with_the_same_data(
    dev_factory: Callable[..., DevProcess], tmp_path: Path
) -> None:
    # a run snapshots its input, service URL included: keep the example service where it was
    service_port = free_port()
    first = dev_factory(service_port=service_port)
    ready = first.wait_ready()
    stop_and_check_nothing_left(first)

    # While it is down: one run committed but never sent (the outbox), and one that was sent to
    # the emulated queue, which forgets everything on restart.
    env = clean_env(first.home)
    submitted = []
    for _ in range(2):
        result = subprocess.run(
            [sys.executable, "-m", "conveyor_cli.main", "task", "submit", "--workflow", "pipeline"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        submitted.append(result.stdout.strip())
    pending_id, queued_id = submitted
    with sqlite3.connect(first.home / "conveyor.db") as db:
        db.execute(
            "UPDATE executions SET status = 'queued' WHERE id = ?",
            (queued_id.replace("-", ""),),
        )
        statuses = dict(db.execute("SELECT id, status FROM executions").fetchall())
    assert sorted(statuses.values()) == ["pending", "queued"], statuses

    second = dev_factory(
        service_port=service_port, extra_env={"CONVEYOR_OUTBOX_GRACE_SECONDS": "1"}
    )
    again = second.wait_ready()
    assert again["api_key"] == ready["api_key"]
    assert again["api_key_created"] is False
    assert {item["action"] for item in again["workflows"]} == {"unchanged"}
    with api(again) as client:
        for task_id in (pending_id, queued_id):
            wait_status(second, client, task_id, "succeeded")
    assert second.record("execution", execution_id=queued_id, kind="requeued") is not None
    stop_and_check_nothing_left(second)

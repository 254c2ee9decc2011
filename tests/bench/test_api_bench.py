"""API benchmark: POST /tasks latency at a fixed arrival rate, and the Lambda cold import.

* The app is served by ``conveyor api`` (uvicorn) in a subprocess on loopback, on PostgreSQL and
  moto's SQS, exactly as a developer runs it. Requests arrive open-loop at ``RATE`` per second
  (each is sent at its scheduled time whether or not earlier ones finished), so a slow server
  shows up as latency instead of a lower rate. Latency is measured from the scheduled send time.
* Import: ``python -c 'import api.handler'`` in a fresh interpreter, minus a bare interpreter
  start, median of several runs; ``-X importtime`` names the heaviest modules.

Figures are printed and written to ``docs/performance.md`` (section "API").
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.apikeys import create_key
from shared.catalog import apply_definition
from shared.database import create_engine_for, session_factory
from shared.definition import parse_definition_text
from tests.bench.report import write_section
from tests.harness.network import free_port, wait_until

pytestmark = pytest.mark.bench

REPO = Path(__file__).resolve().parents[2]
RATE = 200
DURATION_SECONDS = 10
WARMUP_SECONDS = 2
P99_TARGET_MS = 25.0
IMPORT_TARGET_MS = 300.0

WORKFLOW = """\
name: bench
steps:
  - name: work
    action: python
    function: conveyor.heartbeat
"""


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


class _Connection:
    """One keep-alive HTTP/1.1 connection with a minimal client (cheap, so the load generator
    takes little of the CPU the server shares with it)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes, headers: str) -> int:
        if self.writer is None or self.reader is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        request = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def _load(port: int, key: str, rate: int, seconds: float) -> tuple[list[float], int]:
    latencies: list[float] = []
    failures = 0
    idle: list[_Connection] = []
    everything: list[_Connection] = []
    headers = f"Authorization: Bearer {key}\r\n"
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.1
    count = int(rate * seconds)

    async def one(index: int) -> None:
        nonlocal failures
        scheduled = start + index / rate
        await asyncio.sleep(max(0.0, scheduled - loop.time()))
        connection = idle.pop() if idle else None
        if connection is None:
            connection = _Connection(port)
            everything.append(connection)
        body = b'{"workflow": "bench", "input": {"i": %d}}' % index
        status = await connection.post("/tasks", body, headers)
        latencies.append((loop.time() - scheduled) * 1000)
        idle.append(connection)
        if status != 202:
            failures += 1

    await asyncio.gather(*(one(i) for i in range(count)))
    for connection in everything:
        connection.close()
    return latencies, failures


def _import_ms(runs: int = 7) -> tuple[float, str]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "0"}

    def wall(code: str) -> float:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, env=env)
        return (time.perf_counter() - started) * 1000

    wall("import api.handler")  # compile the bytecode once
    bare = statistics.median(wall("pass") for _ in range(runs))
    full = statistics.median(wall("import api.handler") for _ in range(runs))
    profile = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import api.handler"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
        env=env,
    ).stderr
    rows = []
    for line in profile.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
        if match and len(match.group(3)) <= 3:  # top-level imports (and their children)
            rows.append((int(match.group(2)), match.group(4)))
    heaviest = ", ".join(
        f"{name} {micros / 1000:.0f} ms" for micros, name in sorted(rows, reverse=True)[:6]
    )
    return full - bare, heaviest


def test_post_tasks_latency_and_cold_import(pg_url: str, sqs: Any, tmp_path: Path) -> None:
    engine = create_engine_for(pg_url)
    now = datetime.now(UTC)
    with session_factory(engine)() as session, session.begin():
        key = create_key(session, "bench", ["tasks:write"], now).key
        apply_definition(session, parse_definition_text(WORKFLOW), now)
    engine.dispose()

    port = free_port()
    env = {
        **os.environ,
        **sqs.env(),
        "CONVEYOR_DATABASE_URL": pg_url,
        "CONVEYOR_HOME": str(tmp_path / "home"),
        "CONVEYOR_LOG_FORMAT": "json",
        "CONVEYOR_LOG_LEVEL": "INFO",
        "CONVEYOR_DATABASE_POOL_SIZE": "10",
    }
    log_path = tmp_path / "api.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "conveyor_cli.main", "api", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:

        def healthy() -> bool:
            if server.poll() is not None:
                raise RuntimeError(log_path.read_text()[-2000:])
            try:
                return httpx.get(f"{url}/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, timeout=30, what="conveyor api")
        asyncio.run(_load(port, key, RATE, WARMUP_SECONDS))
        latencies, failures = asyncio.run(_load(port, key, RATE, DURATION_SECONDS))
    finally:
        server.terminate()  # the shutdown flushes the doorbells still in memory
        server.wait(timeout=60)
    expected = RATE * (WARMUP_SECONDS + DURATION_SECONDS)
    with contextlib.suppress(TimeoutError):  # reported below
        wait_until(lambda: sum(sqs.depth()) >= expected, timeout=30, what="every doorbell")
    visible, in_flight = sqs.depth()

    p50, p90, p99 = (_percentile(latencies, f) for f in (0.5, 0.9, 0.99))
    import_ms, heaviest = _import_ms()
    figures = [
        f"Measured {datetime.now(UTC):%Y-%m-%d} on the 2-core dev machine "
        "(`make bench` / `.venv/bin/pytest tests/bench/test_api_bench.py -m bench -s "
        "-p no:cacheprovider`).",
        "",
        f"POST /tasks, open loop at {RATE} requests/s for {DURATION_SECONDS} s "
        f"({len(latencies)} requests, after a {WARMUP_SECONDS} s warm-up), `conveyor api` "
        "(uvicorn, 1 process) on PostgreSQL and moto SQS on loopback, API-key auth, usage "
        "counting and request logging on; latency from the scheduled send time:",
        "",
        "| p50 | p90 | p99 | max | non-202 | doorbells on the queue |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| {p50:.1f} ms | {p90:.1f} ms | {p99:.1f} ms | {max(latencies):.1f} ms | {failures} "
        f"| {visible + in_flight} |",
        "",
        f"Target p99 ≤ {P99_TARGET_MS:.0f} ms: {'met' if p99 <= P99_TARGET_MS else 'NOT met'}.",
        "",
        f"Cold import of `api.handler` (fresh interpreter, minus a bare start, median of 7): "
        f"**{import_ms:.0f} ms** (target ≤ {IMPORT_TARGET_MS:.0f} ms: "
        f"{'met' if import_ms <= IMPORT_TARGET_MS else 'NOT met'}). Heaviest top-level "
        f"imports (`-X importtime`, cumulative): {heaviest}.",
    ]
    print("\n" + "\n".join(figures))
    write_section("API", figures)
    assert failures == 0
    assert visible + in_flight >= expected

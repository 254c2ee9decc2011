"""The pieces ``conveyor dev`` runs: child processes, the SQS emulator, the fake LLM provider, the
example workflows, the local API key and the event follower.

Every long-lived component is a child process in its own process group (``start_new_session``),
so a Ctrl-C in the terminal reaches ``conveyor dev`` only, and stopping kills whole groups
(Celery's pool processes included). Children log JSON lines (``CONVEYOR_LOG_FORMAT=json``) to a
pipe; a reader thread copies them to ``<home>/logs/<name>.log`` and watches them for readiness
(``… ready.`` from Celery, ``tick_finished`` from the scheduler) and for errors. What happens to
executions is followed in the database (``execution_events``), not in the logs.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from shared.errors import ConfigurationError

REPO_ROOT = Path(__file__).resolve().parents[1]
EXAMPLES_PACKAGE = REPO_ROOT / "examples"
EXAMPLE_WORKFLOWS = EXAMPLES_PACKAGE / "workflows"
EXAMPLE_FUNCTIONS = "examples.functions"
DEV_KEY_NAME = "dev"
DUMMY_AWS_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",  # moto accepts any credentials
}
FAKE_ANTHROPIC_KEY = "local-fake-provider"  # not a secret: the local fake ignores it


class Interrupted(Exception):
    """Ctrl-C (or SIGTERM) arrived while the stack was starting."""


# --------------------------------------------------------------------------- small helpers


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((host, port)) == 0


def http_ok(url: str, timeout: float = 0.5) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310  (loopback)
            return int(response.status) == 200
    except OSError:
        return False


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (``/proc``: no psutil needed)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def group_members(pgid: int) -> list[int]:
    """Live processes whose process group is ``pgid`` (read from ``/proc``)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        if fields and fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def shown_path(path: Path) -> str:
    """``path`` relative to the working directory when it is inside it (for copy-paste)."""
    try:
        relative = path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return str(path)
    return str(relative)


def write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(text)
    path.chmod(0o600)


@contextlib.contextmanager
def home_lock(home: Path) -> Iterator[None]:
    """One ``conveyor dev`` per home directory (released when the process ends, however)."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / "dev.lock"
    with path.open("a+", encoding="utf-8") as file:
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.seek(0)
            holder = file.read().strip() or "?"
            raise ConfigurationError(
                f"another `conveyor dev` (pid {holder}) is using {home}; stop it first, or set "
                "CONVEYOR_HOME to another directory"
            ) from None
        file.seek(0)
        file.truncate()
        file.write(str(os.getpid()))
        file.flush()
        try:
            yield
        finally:
            fcntl.flock(file.fileno(), fcntl.LOCK_UN)


# --------------------------------------------------------------------------- child processes

LineHandler = Callable[["Child", str, dict[str, Any] | None], None]


class Child:
    """One child process in its own process group; its output goes to a log file, line by line."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        *,
        env: dict[str, str],
        log_path: Path,
        on_line: LineHandler,
        warm_signal: signal.Signals = signal.SIGTERM,
    ) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_path
        self.on_line = on_line
        self.warm_signal = warm_signal
        self.process: subprocess.Popen[bytes] | None = None
        self.tail: deque[str] = deque(maxlen=40)
        self._reader: threading.Thread | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> Child:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(  # noqa: S603  (our own argv: sys.executable -m …)
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=self.env,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, name=f"dev-{self.name}-log", daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        with self.log_path.open("ab") as log:
            for raw in iter(self.process.stdout.readline, b""):
                log.write(raw)
                log.flush()
                line = raw.decode("utf-8", errors="replace").rstrip("\n")
                self.tail.append(line)
                parsed: dict[str, Any] | None = None
                if line.startswith("{"):
                    with contextlib.suppress(ValueError):
                        candidate = json.loads(line)
                        if isinstance(candidate, dict):
                            parsed = candidate
                try:
                    self.on_line(self, line, parsed)
                except Exception as exc:  # a rendering problem must not stop the copy
                    self.tail.append(f"(dev: line handler failed: {exc})")

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def signal_main(self, signum: signal.Signals) -> None:
        if self.running():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)

    def kill_group(self) -> None:
        """SIGKILL everything left in the child's process group, then reap the child."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)

    def join_reader(self, timeout: float = 2.0) -> None:
        if self._reader is not None:
            self._reader.join(timeout)


def python_command(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def conveyor_command(*args: str) -> list[str]:
    return python_command("conveyor_cli.main", *args)


# --------------------------------------------------------------------------- SQS (moto)


@dataclass(frozen=True)
class Queues:
    endpoint_url: str | None
    queue_name: str
    queue_url: str
    dlq_url: str | None
    emulated: bool


def create_queues(endpoint_url: str, queue_name: str, region: str) -> Queues:
    """The execution queue and its dead-letter queue on the emulator (redrive after 5)."""
    import boto3  # noqa: PLC0415

    client = boto3.session.Session().client(
        "sqs",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=DUMMY_AWS_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_AWS_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
    dlq_url = client.create_queue(QueueName=f"{queue_name}-dlq")["QueueUrl"]
    dlq_arn = client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    queue_url = client.create_queue(
        QueueName=queue_name,
        Attributes={
            "VisibilityTimeout": "3900",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"}),
        },
    )["QueueUrl"]
    return Queues(endpoint_url, queue_name, queue_url, dlq_url, emulated=True)


# --------------------------------------------------------------------------- fake LLM provider


def fake_summary(prompt: str, system: str) -> str:
    """A deterministic reply: the same prompt always gets the same text."""
    digest = hashlib.sha256(prompt.encode()).hexdigest()[:8]
    if "json" in (prompt + " " + system).lower():
        return json.dumps({"summary": f"{len(prompt.split())} words received", "ref": digest})
    first = " ".join(prompt.split())[:160]
    return (
        f"[local fake model, ref {digest}] Summary of a {len(prompt.split())}-word prompt. "
        f"It starts: {first!r}"
    )


class _FakeAnthropicHandler(BaseHTTPRequestHandler):
    server_version = "conveyor-fake-anthropic"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("request-id", f"req_local_{uuid.uuid4().hex[:16]}")
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            request = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            request = None
        if self.path.split("?")[0].rstrip("/") != "/v1/messages" or not isinstance(request, dict):
            self._reply(
                404 if isinstance(request, dict) else 400,
                {
                    "type": "error",
                    "error": {"type": "not_found_error", "message": "only POST /v1/messages"},
                },
            )
            return
        prompt = _message_text(request.get("messages"))
        system = _message_text(request.get("system"))
        text = fake_summary(prompt, system)
        self._reply(
            200,
            {
                "id": f"msg_local_{hashlib.sha256(prompt.encode()).hexdigest()[:20]}",
                "type": "message",
                "role": "assistant",
                "model": str(request.get("model") or "local-fake"),
                "content": [{"type": "text", "text": text}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {
                    "input_tokens": max(1, len((system + " " + prompt).split())),
                    "output_tokens": max(1, len(text.split())),
                },
            },
        )


def _message_text(value: Any) -> str:
    """The text of a Messages ``system`` or ``messages`` value (strings or content blocks)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return " ".join(_message_text(item) for item in value)
    if isinstance(value, dict):
        if isinstance(value.get("text"), str):
            return str(value["text"])
        return _message_text(value.get("content"))
    return ""


class FakeAnthropic:
    """An Anthropic-Messages-compatible server on loopback, in a thread of ``conveyor dev``."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.server = ThreadingHTTPServer((host, 0), _FakeAnthropicHandler)
        self.server.daemon_threads = True
        self.url = f"http://{host}:{self.server.server_port}"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True
        )

    def start(self) -> FakeAnthropic:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --------------------------------------------------------------------------- database set-up


def apply_examples(
    sessions: sessionmaker[Session], directory: Path, service_url: str | None, now: datetime
) -> list[tuple[str, str, datetime | None]]:
    """Apply every definition in ``directory``; ``input.service_url`` points at our service."""
    from shared.catalog import apply_definitions  # noqa: PLC0415
    from shared.database import transaction  # noqa: PLC0415
    from shared.definition import load_definition_files  # noqa: PLC0415

    definitions = []
    for _, loaded in load_definition_files(directory):
        definition = loaded
        if service_url and "service_url" in loaded.input:
            definition = loaded.model_copy(
                update={"input": {**loaded.input, "service_url": service_url}}
            )
        definitions.append(definition)
    with transaction(sessions) as session:
        results = apply_definitions(session, definitions, now)
        return [(result.name, result.action, result.next_run_at) for result in results]


def ensure_api_key(sessions: sessionmaker[Session], path: Path, now: datetime) -> tuple[str, bool]:
    """The local admin key: reused from ``path`` while it is valid, else (re)created there."""
    from shared.apikeys import create_key, verify_key  # noqa: PLC0415
    from shared.database import transaction  # noqa: PLC0415
    from shared.models import ApiKey  # noqa: PLC0415

    if path.exists():
        key = path.read_text(encoding="utf-8").strip()
        with transaction(sessions) as session:
            if verify_key(session, key) is not None:
                return key, False
    with transaction(sessions) as session:
        previous = session.scalar(select(ApiKey).where(ApiKey.name == DEV_KEY_NAME))
        if previous is not None:  # its secret is lost: retire it under another name
            previous.name = f"{DEV_KEY_NAME}-retired-{previous.prefix}"
            previous.revoked_at = previous.revoked_at or now
            session.flush()
        created = create_key(session, DEV_KEY_NAME, ["admin"], now)
    write_private(path, created.key + "\n")
    return created.key, True


def requeue_lost_doorbells(sessions: sessionmaker[Session], now: datetime) -> int:
    """The emulated queue starts empty: ``queued`` executions lost their message.

    They go back to ``pending`` (the outbox) with their ``updated_at`` kept, so the scheduler's
    sweeper re-sends them on its first tick.
    """
    from shared.database import transaction  # noqa: PLC0415
    from shared.executions import record_event  # noqa: PLC0415
    from shared.models import Execution  # noqa: PLC0415
    from shared.status import ExecutionStatus  # noqa: PLC0415

    with transaction(sessions) as session:
        ids = list(
            session.scalars(
                update(Execution)
                .where(Execution.status == ExecutionStatus.QUEUED)
                .values(status=ExecutionStatus.PENDING)
                .returning(Execution.id)
                .execution_options(synchronize_session=False)
            )
        )
        for execution_id in ids:
            record_event(
                session,
                execution_id,
                "requeued",
                "the local queue was recreated empty; the sweeper re-sends it",
                at=now,
            )
    return len(ids)


# --------------------------------------------------------------------------- events


@dataclass(frozen=True)
class ExecutionEventView:
    id: int
    at: datetime
    kind: str
    message: str
    step: str | None
    attempt: int | None
    execution_id: uuid.UUID
    workflow: str | None
    trigger: str


def last_event_id(sessions: sessionmaker[Session]) -> int:
    from shared.models import ExecutionEvent  # noqa: PLC0415

    with sessions() as session:
        return int(session.scalar(select(func.max(ExecutionEvent.id))) or 0)


class EventFollower:
    """Polls ``execution_events`` (newest rows after ``after``) and hands them to ``emit``.

    Ids are read with a look-back window so a row committed late with a smaller id (possible on
    PostgreSQL) is still shown once.
    """

    LOOKBACK = 200

    def __init__(
        self,
        engine: Engine,
        emit: Callable[[ExecutionEventView], None],
        *,
        after: int,
        interval: float = 0.4,
    ) -> None:
        from shared.database import session_factory  # noqa: PLC0415

        self.sessions = session_factory(engine)
        self.emit = emit
        self.high = after
        self.floor = after
        self.interval = interval
        self.seen: deque[int] = deque(maxlen=5000)
        self._seen_set: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dev-events", daemon=True)

    def start(self) -> EventFollower:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=3)

    def poll(self) -> int:
        from shared.models import Execution, ExecutionEvent  # noqa: PLC0415

        low = max(self.floor, self.high - self.LOOKBACK)
        with self.sessions() as session:
            rows = session.execute(
                select(
                    ExecutionEvent.id,
                    ExecutionEvent.at,
                    ExecutionEvent.kind,
                    ExecutionEvent.message,
                    ExecutionEvent.step,
                    ExecutionEvent.attempt,
                    ExecutionEvent.execution_id,
                    Execution.workflow_name,
                    Execution.trigger,
                )
                .join(Execution, Execution.id == ExecutionEvent.execution_id)
                .where(ExecutionEvent.id > low)
                .order_by(ExecutionEvent.id)
                .limit(1000)
            ).all()
        shown = 0
        for row in rows:
            if row.id in self._seen_set:
                continue
            self._remember(row.id)
            self.high = max(self.high, row.id)
            self.emit(
                ExecutionEventView(
                    id=row.id,
                    at=row.at,
                    kind=row.kind,
                    message=row.message or "",
                    step=row.step,
                    attempt=row.attempt,
                    execution_id=row.execution_id,
                    workflow=row.workflow_name,
                    trigger=str(getattr(row.trigger, "value", row.trigger)),
                )
            )
            shown += 1
        return shown

    def _remember(self, event_id: int) -> None:
        if len(self.seen) == self.seen.maxlen:
            self._seen_set.discard(self.seen[0])
        self.seen.append(event_id)
        self._seen_set.add(event_id)

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self.poll()
                failures = 0
            except Exception:  # SQLite busy, a dropped connection: try again shortly
                failures += 1
            self._stop.wait(self.interval * min(1 + failures, 10))


# --------------------------------------------------------------------------- rendering

HIDDEN_KINDS = frozenset({"queued", "step_started", "released"})
KIND_LABELS = {
    "step_succeeded": "step done",
    "step_failed": "step failed",
    "retry_scheduled": "retrying",
    "timed_out": "timed out",
}
KIND_COLOURS = {
    "fired": "cyan",
    "submitted": "cyan",
    "started": "blue",
    "step done": "green",
    "succeeded": "green",
    "step failed": "red",
    "failed": "red",
    "timed out": "red",
    "retrying": "yellow",
    "recovered": "yellow",
    "requeued": "yellow",
    "cancelled": "magenta",
    "skipped": "magenta",
}


def event_label(kind: str, trigger: str) -> str:
    if kind == "created":
        return "fired" if trigger in {"schedule", "backfill"} else "submitted"
    return KIND_LABELS.get(kind, kind)


@dataclass
class Console:
    """Where ``conveyor dev`` writes for a person (colour when it is a terminal) or as JSON."""

    json_lines: bool
    color: bool | None = None
    out: IO[str] = field(default_factory=lambda: sys.stdout)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def json(self, event: str, **fields: Any) -> None:
        record = {"event": event, "at": datetime.now(UTC).isoformat(), **fields}
        self._write(json.dumps(record, default=str))

    def text(self, message: str = "", **style: Any) -> None:
        import click  # noqa: PLC0415

        line = click.style(message, **style) if style else message
        with self.lock:
            click.echo(line, file=self.out, color=self.color)

    def _write(self, line: str) -> None:
        import click  # noqa: PLC0415

        with self.lock:
            click.echo(line, file=self.out, color=False)

    def say(
        self, event: str, message: str, *, style: dict[str, Any] | None = None, **fields: Any
    ) -> None:
        """One lifecycle line: ``message`` for a person, or ``{"event": event, …}`` as JSON."""
        if self.json_lines:
            self.json(event, message=message, **fields)
        else:
            self.text(message, **(style or {}))

    def execution_event(self, view: ExecutionEventView) -> None:
        label = event_label(view.kind, view.trigger)
        if self.json_lines:
            self.json(
                "execution",
                kind=view.kind,
                label=label,
                execution_id=str(view.execution_id),
                workflow=view.workflow,
                trigger=view.trigger,
                step=view.step,
                attempt=view.attempt,
                message=view.message,
                event_at=view.at.isoformat(),
            )
            return
        if view.kind in HIDDEN_KINDS:
            return
        import click  # noqa: PLC0415

        at = view.at.astimezone().strftime("%H:%M:%S")
        detail = view.message
        if view.step and view.kind in {"step_succeeded", "step_failed"}:
            detail = view.step if view.kind == "step_succeeded" else f"{view.step}: {detail}"
        colour = KIND_COLOURS.get(label)
        styled = click.style(f"{label:<11}", fg=colour, bold=label in {"succeeded", "failed"})
        line = f"{at}  {styled} {(view.workflow or '-'):<14} {str(view.execution_id)[:8]}  {detail}"
        with self.lock:
            click.echo(line, file=self.out, color=self.color)


def export_lines(variables: dict[str, str]) -> str:
    return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in variables.items())


def wait_for(
    predicate: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    stop: threading.Event,
    check: Callable[[], None] | None = None,
    interval: float = 0.1,
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if stop.is_set():
            raise Interrupted
        if check is not None:
            check()
        if predicate():
            return
        if time.monotonic() >= deadline:
            raise ConfigurationError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)

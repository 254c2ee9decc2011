"""``conveyor dev`` (what ``make run`` runs): the whole system on one machine.

With nothing configured: a SQLite file under ``CONVEYOR_HOME`` (migrated), moto's SQS server on a
free loopback port (queue + DLQ), one Celery worker (``--workers N``), the scheduler ticking
every ``--interval`` seconds, the API on ``127.0.0.1:--port``, the example HTTP service and a
fake Anthropic-compatible LLM provider (unless ``CONVEYOR_ANTHROPIC_API_KEY`` is set). It applies
``examples/workflows/``, keeps a local API key in ``<home>/dev-api-key`` and writes
``<home>/dev.env`` (``source`` it to point the CLI at this stack).

``CONVEYOR_DATABASE_URL`` and ``CONVEYOR_QUEUE_URL`` switch it to that database and that queue.

Output: a banner, then one line per execution event (followed in the database's
``execution_events`` table); ``--json`` prints JSON lines instead. Ctrl-C stops everything: the
workers get SIGTERM (Celery's warm shutdown), whatever is left after the deadline is killed, group
by group. Logs of every component: ``<home>/logs/``.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import click
from sqlalchemy import Engine

from conveyor_cli.context import CliContext, pass_state
from conveyor_cli.devstack import (
    DUMMY_AWS_CREDENTIALS,
    EXAMPLE_FUNCTIONS,
    EXAMPLE_WORKFLOWS,
    EXAMPLES_PACKAGE,
    FAKE_ANTHROPIC_KEY,
    REPO_ROOT,
    Child,
    Console,
    EventFollower,
    FakeAnthropic,
    Interrupted,
    Queues,
    apply_examples,
    conveyor_command,
    create_queues,
    ensure_api_key,
    export_lines,
    free_port,
    home_lock,
    http_ok,
    last_event_id,
    port_in_use,
    python_command,
    requeue_lost_doorbells,
    shown_path,
    wait_for,
    write_private,
)
from shared.errors import ConfigurationError, ConveyorError
from shared.settings import Settings

STARTUP_TIMEOUT = 120.0
STOP_DEADLINE = 7.0  # SIGTERM → SIGKILL for the API, scheduler and workers
SERVICES_DEADLINE = 1.5  # then the example service and the SQS emulator


class DevStack:
    def __init__(
        self,
        settings: Settings,
        console: Console,
        *,
        host: str,
        port: int,
        interval: float,
        workers: int,
        concurrency: int,
        service_port: int,
        examples: Path | None,
    ) -> None:
        self.settings = settings
        self.console = console
        self.host = host
        self.port = port
        self.interval = interval
        self.workers = workers
        self.concurrency = concurrency
        self.service_port = service_port
        self.examples = examples
        self.home = settings.home.expanduser().resolve()
        self.logs = self.home / "logs"
        self.stop_requested = threading.Event()
        self.hurry = threading.Event()
        self.children: list[Child] = []
        self.ready = False
        self.started = time.monotonic()
        self.fake_llm: FakeAnthropic | None = None
        self.follower: EventFollower | None = None
        self.engine: Engine | None = None
        self._marks: dict[str, int] = {}
        self._marks_lock = threading.Lock()
        self.failed: str | None = None

    # ------------------------------------------------------------------ child output

    def _on_line(self, child: Child, line: str, record: dict[str, Any] | None) -> None:
        event = str(record.get("event", "")) if record else line
        mark = None
        if child.name.startswith("worker") and " ready." in event:
            mark = "worker_ready"
        elif child.name == "scheduler" and event == "tick_finished":
            mark = "ticked"
        if mark:
            with self._marks_lock:
                self._marks[mark] = self._marks.get(mark, 0) + 1
        level = str(record.get("level", "")) if record else ""
        if level in {"error", "critical"} or (record is None and line.startswith("Traceback")):
            detail = event if record else line
            error = record.get("error") if record else None
            text = f"{detail}: {error}" if error else detail
            self.console.say(
                "problem",
                f"{child.name}: {text}  (log: {shown_path(child.log_path)})",
                style={"fg": "red"},
                component=child.name,
                record=record or line,
            )

    def _count(self, mark: str) -> int:
        with self._marks_lock:
            return self._marks.get(mark, 0)

    def _spawn(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        warm: signal.Signals = signal.SIGTERM,
    ) -> Child:
        child = Child(
            name,
            argv,
            env=env,
            log_path=self.logs / f"{name}.log",
            on_line=self._on_line,
            warm_signal=warm,
        )
        self.children.append(child)
        return child.start()

    def _check_children(self) -> None:
        for child in self.children:
            code = child.returncode()
            if code is not None:
                tail = "\n".join(f"    {line}" for line in list(child.tail)[-15:])
                raise ConveyorError(
                    f"{child.name} exited with code {code} "
                    f"(log: {shown_path(child.log_path)}):\n{tail}"
                )

    # ------------------------------------------------------------------ start

    def _database_url(self) -> str:
        if self.settings.database_url is not None:
            return self.settings.database_url.get_secret_value()
        return f"sqlite:///{(self.home / 'conveyor.db').as_posix()}"

    def start(self) -> None:  # noqa: PLR0912, PLR0915  (one readable sequence)
        from shared.database import create_engine_for, session_factory  # noqa: PLC0415

        console = self.console
        for port, flag in ((self.port, "--port"), (self.service_port, "--service-port")):
            if port and port_in_use(port, self.host):
                raise ConfigurationError(
                    f"{self.host}:{port} is already in use (another `conveyor dev`?); "
                    f"pick another with {flag}"
                )
        self.logs.mkdir(parents=True, exist_ok=True)
        base_env = dict(os.environ)
        base_env["CONVEYOR_HOME"] = str(self.home)
        base_env["CONVEYOR_LOG_FORMAT"] = "json"
        base_env.setdefault("PYTHONUNBUFFERED", "1")
        database_url = self._database_url()
        base_env["CONVEYOR_DATABASE_URL"] = database_url
        console.say(
            "starting",
            f"conveyor dev: starting (home {shown_path(self.home)}, logs {shown_path(self.logs)})",
            style={"dim": True},
            home=str(self.home),
        )

        # 1. what the examples need: the python functions, the HTTP service
        service_url: str | None = None
        if self.examples is not None:
            if (EXAMPLES_PACKAGE / "functions.py").exists():
                modules = [*self.settings.function_modules]
                if EXAMPLE_FUNCTIONS not in modules:
                    modules.append(EXAMPLE_FUNCTIONS)
                base_env["CONVEYOR_FUNCTION_MODULES"] = ",".join(modules)
                path = [str(REPO_ROOT), *filter(None, [base_env.get("PYTHONPATH")])]
                base_env["PYTHONPATH"] = os.pathsep.join(path)
            if (EXAMPLES_PACKAGE / "service.py").exists():
                self.service_port = self.service_port or free_port(self.host)
                service_url = f"http://{self.host}:{self.service_port}"
                self._spawn(
                    "service",
                    python_command(
                        "examples.service", "--host", self.host, "--port", str(self.service_port)
                    ),
                    base_env,
                )

        # 2. the queue: the one configured, or moto's server on loopback
        moto_url: str | None = None
        if self.settings.queue_url is None:
            moto_url = f"http://{self.host}:{free_port(self.host)}"
            moto_env = {**base_env, **DUMMY_AWS_CREDENTIALS}
            self._spawn(
                "sqs",
                python_command("moto.server", "-H", self.host, "-p", moto_url.rsplit(":", 1)[1]),
                moto_env,
            )

        # 3. the LLM provider: the real one when a key is configured
        if self.settings.anthropic_api_key is None:
            self.fake_llm = FakeAnthropic(self.host).start()
            base_env["CONVEYOR_ANTHROPIC_BASE_URL"] = self.fake_llm.url
            base_env["CONVEYOR_ANTHROPIC_API_KEY"] = FAKE_ANTHROPIC_KEY

        # 4. the database: migrated, examples applied, the local key (while moto boots)
        import migrations  # noqa: PLC0415

        migrations.upgrade(database_url)
        self.engine = create_engine_for(database_url, pool_size=2)
        sessions = session_factory(self.engine)
        now = datetime.now(UTC)
        applied = (
            apply_examples(sessions, self.examples, service_url, now)
            if self.examples is not None
            else []
        )
        key, key_created = ensure_api_key(sessions, self.home / "dev-api-key", now)
        after = last_event_id(sessions)

        # 5. the queue is up: create it (emulated), re-send what its predecessor lost
        queues: Queues
        if moto_url is not None:
            wait_for(
                lambda: http_ok(f"{moto_url}/moto-api/"),
                timeout=60,
                what="the SQS emulator",
                stop=self.stop_requested,
                check=self._check_children,
            )
            queues = create_queues(moto_url, self.settings.queue_name, self.settings.region)
            requeued = requeue_lost_doorbells(sessions, now)
            base_env["AWS_ENDPOINT_URL_SQS"] = moto_url
            if "AWS_ACCESS_KEY_ID" not in base_env and "AWS_PROFILE" not in base_env:
                base_env.update(DUMMY_AWS_CREDENTIALS)
            base_env.setdefault("AWS_DEFAULT_REGION", self.settings.region)
        else:
            assert self.settings.queue_url is not None
            queues = Queues(
                None,
                self.settings.queue_name,
                self.settings.queue_url,
                self.settings.dlq_url,
                emulated=False,
            )
            requeued = 0
        base_env["CONVEYOR_QUEUE_URL"] = queues.queue_url
        base_env["CONVEYOR_QUEUE_NAME"] = queues.queue_name
        if queues.dlq_url:
            base_env["CONVEYOR_DLQ_URL"] = queues.dlq_url

        # 6. the three components
        for index in range(self.workers):
            self._spawn(
                f"worker-{index + 1}" if self.workers > 1 else "worker",
                conveyor_command("worker", "--concurrency", str(self.concurrency)),
                base_env,
            )
        self._spawn(
            "scheduler",
            conveyor_command("scheduler", "run", "--interval", f"{self.interval:g}"),
            base_env,
        )
        api_url = f"http://{self.host}:{self.port}"
        self._spawn(
            "api",
            conveyor_command("api", "--host", self.host, "--port", str(self.port)),
            base_env,
        )

        # 7. ready when everything answers
        checks: list[tuple[str, Any]] = [
            ("the API's /health", lambda: http_ok(f"{api_url}/health")),
            (
                f"{self.workers} worker(s) ready",
                lambda: self._count("worker_ready") >= self.workers,
            ),
            ("the scheduler's first tick", lambda: self._count("ticked") >= 1),
        ]
        if service_url is not None:
            checks.append(("the example service", lambda: http_ok(f"{service_url}/health")))
        for what, predicate in checks:
            wait_for(
                predicate,
                timeout=max(5.0, STARTUP_TIMEOUT - (time.monotonic() - self.started)),
                what=what,
                stop=self.stop_requested,
                check=self._check_children,
            )
        elapsed = time.monotonic() - self.started
        self.ready = True

        # 8. tell the person
        env_file = self.home / "dev.env"
        cli_env = {
            "CONVEYOR_HOME": str(self.home),
            "CONVEYOR_DATABASE_URL": database_url,
            "CONVEYOR_QUEUE_URL": queues.queue_url,
            "CONVEYOR_QUEUE_NAME": queues.queue_name,
            "CONVEYOR_API_URL": api_url,
            "CONVEYOR_API_KEY": key,
        }
        if queues.dlq_url:
            cli_env["CONVEYOR_DLQ_URL"] = queues.dlq_url
        if moto_url is not None:
            cli_env["AWS_ENDPOINT_URL_SQS"] = moto_url
            for name in DUMMY_AWS_CREDENTIALS:
                if name in base_env:
                    cli_env[name] = base_env[name]
        write_private(
            env_file,
            "# written by `conveyor dev`: points the conveyor CLI at the running local stack\n"
            + export_lines(cli_env),
        )
        self._banner(
            api_url=api_url,
            key=key,
            key_created=key_created,
            queues=queues,
            database_url=database_url,
            service_url=service_url,
            applied=applied,
            env_file=env_file,
            requeued=requeued,
            elapsed=elapsed,
        )
        self.follower = EventFollower(self.engine, console.execution_event, after=after).start()

    def _banner(
        self,
        *,
        api_url: str,
        key: str,
        key_created: bool,
        queues: Queues,
        database_url: str,
        service_url: str | None,
        applied: list[tuple[str, str, datetime | None]],
        env_file: Path,
        requeued: int,
        elapsed: float,
    ) -> None:
        console = self.console
        cli = Path(sys.executable).parent / "conveyor"
        conveyor = shown_path(cli) if cli.exists() else "conveyor"
        source = f"source {shown_path(env_file)}"
        commands = [
            f"{source} && id=$({conveyor} task submit --workflow pipeline) && echo $id",
            f"{source} && {conveyor} task wait $id",
            f"{source} && {conveyor} executions list",
        ]
        database = (
            database_url.split("///", 1)[1] if database_url.startswith("sqlite") else "PostgreSQL"
        )
        running = [
            ("api", f"{api_url}  (docs {api_url}/docs)"),
            ("database", shown_path(Path(database)) if database != "PostgreSQL" else database),
            (
                "queue",
                f"{queues.queue_url}"
                + ("  (moto, in memory)" if queues.emulated else "")
                + (f", {requeued} lost doorbell(s) re-sent" if requeued else ""),
            ),
            (
                "workers",
                f"{self.workers} x Celery, concurrency {self.concurrency}",
            ),
            ("scheduler", f"a tick every {self.interval:g}s"),
            (
                "llm",
                self.fake_llm.url + "  (fake Anthropic; set CONVEYOR_ANTHROPIC_API_KEY for real)"
                if self.fake_llm
                else "Anthropic (CONVEYOR_ANTHROPIC_API_KEY)",
            ),
        ]
        if service_url:
            running.append(("service", f"{service_url}/enrich  (examples/service.py)"))
        running.append(("logs", shown_path(self.logs)))
        workflows = ", ".join(f"{name} ({action})" for name, action, _ in applied) or "none"
        if console.json_lines:
            console.json(
                "ready",
                message=f"ready in {elapsed:.1f}s",
                elapsed_seconds=round(elapsed, 2),
                api_url=api_url,
                api_key=key,
                api_key_created=key_created,
                env_file=str(env_file),
                components=dict(running),
                workflows=[
                    {"name": n, "action": a, "next_run_at": w.isoformat() if w else None}
                    for n, a, w in applied
                ],
                pids={child.name: child.pid for child in self.children},
                commands=commands,
            )
            return
        console.text()
        console.text("Conveyor is running", bold=True)
        for name, where in running:
            console.text(f"  {name:<10} {where}")
        console.text(f"  {'workflows':<10} {workflows}")
        console.text(
            f"  {'api key':<10} {key}  ({'created' if key_created else 'reused'}; "
            f"kept in {shown_path(self.home / 'dev-api-key')})"
        )
        console.text()
        console.text("Try it from another terminal:", bold=True)
        labels = ["submit a task", "watch it", "list executions"]
        for label, command in zip(labels, commands, strict=True):
            console.text(f"  # {label}", dim=True)
            console.text(f"  {command}")
        console.text()
        console.text(f"ready in {elapsed:.1f}s  (Ctrl-C stops everything)", fg="green", bold=True)

    # ------------------------------------------------------------------ run and stop

    def wait(self) -> None:
        """Until Ctrl-C; a component that dies takes the stack down (exit 1)."""
        while not self.stop_requested.wait(0.2):
            for child in self.children:
                code = child.returncode()
                if code is not None:
                    self.failed = f"{child.name} exited with code {code}"
                    self.console.say(
                        "child_exited",
                        f"{child.name} exited with code {code} "
                        f"(log: {shown_path(child.log_path)}); stopping",
                        style={"fg": "red", "bold": True},
                        component=child.name,
                        code=code,
                    )
                    return

    def request_stop(self, signum: int, _frame: FrameType | None) -> None:
        if self.stop_requested.is_set():
            self.hurry.set()
            return
        self.stop_requested.set()

    def stop(self) -> None:
        started = time.monotonic()
        running = [child for child in self.children if child.running()]
        if running:
            self.console.say(
                "stopping",
                "stopping: " + ", ".join(child.name for child in running),
                style={"dim": True},
            )
        if self.follower is not None:
            self.follower.stop()
        core = [c for c in self.children if c.name not in {"service", "sqs"}]
        rest = [c for c in self.children if c.name in {"service", "sqs"}]
        for phase, deadline in ((core, STOP_DEADLINE), (rest, SERVICES_DEADLINE)):
            for child in phase:
                child.signal_main(child.warm_signal)
            limit = time.monotonic() + deadline
            while (
                any(child.running() for child in phase)
                and time.monotonic() < limit
                and not self.hurry.is_set()
            ):
                time.sleep(0.05)
        killed = [child.name for child in self.children if child.running()]
        for child in self.children:
            child.kill_group()
        for child in self.children:
            child.join_reader()
        if self.fake_llm is not None:
            self.fake_llm.stop()
        if self.engine is not None:
            self.engine.dispose()
        if self.children:
            note = f" (killed after the deadline: {', '.join(killed)})" if killed else ""
            self.console.say(
                "stopped",
                f"stopped in {time.monotonic() - started:.1f}s{note}",
                style={"dim": True},
                killed=killed,
            )


@click.command("dev")
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(1, 65535),
    help="The API's port (on 127.0.0.1).",
)
@click.option(
    "--interval",
    default=10.0,
    show_default=True,
    type=click.FloatRange(0.5, 3600),
    help="Seconds between scheduler ticks.",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 32),
    help="Celery worker processes.",
)
@click.option(
    "--concurrency",
    default=2,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Executions each worker runs at once.",
)
@click.option(
    "--service-port",
    default=8765,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="The example HTTP service's port (0: any free port).",
)
@click.option(
    "--examples",
    "examples_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Workflow definitions to apply [default: examples/workflows].",
)
@click.option("--no-examples", is_flag=True, help="Apply no workflows, start no example service.")
@click.option("--json", "as_json", is_flag=True, help="JSON lines instead of text.")
@click.option("--color/--no-color", default=None, help="Colour [default: when a terminal].")
@pass_state
def dev_command(
    state: CliContext,
    port: int,
    interval: float,
    workers: int,
    concurrency: int,
    service_port: int,
    examples_dir: Path | None,
    no_examples: bool,
    as_json: bool,
    color: bool | None,
) -> None:
    """Run everything locally: database, SQS emulator, worker(s), scheduler, API, examples."""
    if color is None and os.environ.get("NO_COLOR"):
        color = False
    examples: Path | None = None
    if not no_examples:
        examples = examples_dir or (EXAMPLE_WORKFLOWS if EXAMPLE_WORKFLOWS.is_dir() else None)
    console = Console(json_lines=as_json, color=color)
    stack = DevStack(
        state.settings,
        console,
        host="127.0.0.1",
        port=port,
        interval=interval,
        workers=workers,
        concurrency=concurrency,
        service_port=service_port if examples is not None else 0,
        examples=examples,
    )
    previous = {
        signum: signal.signal(signum, stack.request_stop)
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    }
    error: ConveyorError | None = None
    try:
        with home_lock(stack.home):
            try:
                stack.start()
                stack.wait()
            except Interrupted:
                pass
            except ConveyorError as exc:
                error = exc
            finally:
                stack.stop()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if error is not None:
        raise error
    if stack.failed:
        sys.exit(1)

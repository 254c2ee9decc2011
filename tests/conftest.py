"""Session-wide test infrastructure: a real PostgreSQL, moto's SQS over HTTP, a Celery worker.

* PostgreSQL: started from the machine's server binaries (or ``CONVEYOR_TEST_DATABASE_URL``); a
  template database with the migrations applied is cloned for every test that asks for one.
* SQLite: a migrated file copied per test.
* SQS: moto's server on a free loopback port with the execution queue and its DLQ.
A missing server fails loudly; nothing here skips.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

import migrations
from shared.database import create_engine_for, session_factory
from shared.settings import Settings
from tests.harness.celery_worker import CeleryWorker
from tests.harness.moto import DUMMY_AWS_ENV, MotoServer
from tests.harness.postgres import PostgresServer

TEMPLATE_DB = "conveyor_template"


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


# --------------------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    """URL of the maintenance database of a PostgreSQL server the tests may create DBs on."""
    external = os.environ.get("CONVEYOR_TEST_DATABASE_URL")
    if external:
        yield external
        return
    with PostgresServer() as server:
        print(f"\n[harness] PostgreSQL {server.port} started in {server.startup_seconds:.2f}s")
        yield server.url("postgres")


def _server_url(admin_url: str, database: str) -> str:
    head, _, _ = admin_url.rpartition("/")
    return f"{head}/{database}"


@pytest.fixture(scope="session")
def pg_template(postgres_admin_url: str) -> str:
    """A database with the migrations applied, used as the template for per-test copies."""
    with psycopg.connect(_libpq(postgres_admin_url), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {TEMPLATE_DB}")
    url = _server_url(postgres_admin_url, TEMPLATE_DB)
    migrations.upgrade(url)
    return url


@pytest.fixture
def create_pg_database(postgres_admin_url: str) -> Iterator[Callable[..., str]]:
    """Factory: a fresh database, cloned from the migrated template unless ``empty=True``."""
    created: list[str] = []

    def create(*, empty: bool = False) -> str:
        name = f"t_{uuid.uuid4().hex[:16]}"
        template = "template0" if empty else TEMPLATE_DB
        with psycopg.connect(_libpq(postgres_admin_url), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name} TEMPLATE {template}")
        created.append(name)
        return _server_url(postgres_admin_url, name)

    yield create
    with psycopg.connect(_libpq(postgres_admin_url), autocommit=True) as conn:
        for name in created:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def pg_url(pg_template: str, create_pg_database: Callable[..., str]) -> str:
    return create_pg_database()


# --------------------------------------------------------------------------- SQLite


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    migrations.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "conveyor.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


# --------------------------------------------------------------------------- either backend


@pytest.fixture(params=["postgresql", "sqlite"])
def db_url(request: pytest.FixtureRequest) -> str:
    """A migrated database on each backend: the test runs once per backend."""
    fixture = "pg_url" if request.param == "postgresql" else "sqlite_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = create_engine_for(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    engine = create_engine_for(pg_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return session_factory(engine)


@pytest.fixture
def pg_sessions(pg_engine: Engine) -> sessionmaker[Session]:
    return session_factory(pg_engine)


# --------------------------------------------------------------------------- SQS


class SqsEndpoint:
    """moto's SQS server, with a fresh queue + DLQ pair per test (moto limits PurgeQueue)."""

    def __init__(self, server: MotoServer) -> None:
        self.server = server
        self.url = server.url
        self.client = boto3.client("sqs", endpoint_url=server.url, region_name="us-east-1")
        self.queue_name = ""
        self.queue_url = ""
        self.dlq_url = ""

    def fresh_queues(self) -> SqsEndpoint:
        suffix = uuid.uuid4().hex[:8]
        queues = SqsEndpoint.__new__(SqsEndpoint)
        queues.server, queues.url, queues.client = self.server, self.url, self.client
        queues.queue_name = f"conveyor-executions-{suffix}"
        queues.dlq_url = self.client.create_queue(QueueName=f"{queues.queue_name}-dlq")["QueueUrl"]
        dlq_arn = self.client.get_queue_attributes(
            QueueUrl=queues.dlq_url, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        queues.queue_url = self.client.create_queue(
            QueueName=queues.queue_name,
            Attributes={
                "VisibilityTimeout": "30",
                "RedrivePolicy": f'{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"5"}}',
            },
        )["QueueUrl"]
        return queues

    def delete(self) -> None:
        for url in (self.queue_url, self.dlq_url):
            self.client.delete_queue(QueueUrl=url)

    def depth(self) -> tuple[int, int]:
        """(visible, in flight) messages of the execution queue."""
        attributes = self.client.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return (
            int(attributes["ApproximateNumberOfMessages"]),
            int(attributes["ApproximateNumberOfMessagesNotVisible"]),
        )

    def env(self) -> dict[str, str]:
        return {
            **DUMMY_AWS_ENV,
            "AWS_ENDPOINT_URL_SQS": self.url,
            "CONVEYOR_QUEUE_URL": self.queue_url,
            "CONVEYOR_DLQ_URL": self.dlq_url,
            "CONVEYOR_QUEUE_NAME": self.queue_name,
        }


@pytest.fixture(scope="session")
def sqs_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqsEndpoint]:
    log_dir = tmp_path_factory.mktemp("moto")
    with MotoServer(log_dir=log_dir) as server:
        print(f"\n[harness] moto SQS {server.port} started in {server.startup_seconds:.2f}s")
        # Every AWS client the tests build goes to moto on loopback, never to AWS.
        endpoints = {"AWS_ENDPOINT_URL": server.url, "AWS_ENDPOINT_URL_SQS": server.url}
        saved = {key: os.environ.get(key) for key in (*DUMMY_AWS_ENV, *endpoints)}
        os.environ.update({**DUMMY_AWS_ENV, **endpoints})
        try:
            yield SqsEndpoint(server)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


@pytest.fixture
def sqs(sqs_endpoint: SqsEndpoint) -> Iterator[SqsEndpoint]:
    """A fresh execution queue and DLQ on the session's SQS endpoint."""
    queues = sqs_endpoint.fresh_queues()
    yield queues
    queues.delete()


# --------------------------------------------------------------------------- settings + worker


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {"home": tmp_path / "home", "log_format": "json"}
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def worker_env(tmp_path: Path) -> Callable[..., dict[str, str]]:
    def make(database_url: str, sqs: SqsEndpoint, **extra: str) -> dict[str, str]:
        return {
            **sqs.env(),
            "CONVEYOR_DATABASE_URL": database_url,
            "CONVEYOR_HOME": str(tmp_path / "worker-home"),
            "CONVEYOR_LOG_FORMAT": "json",
            "CONVEYOR_WORKER_POLLING_INTERVAL": "0.05",
            **extra,
        }

    return make


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[..., CeleryWorker]]:
    workers: list[CeleryWorker] = []

    def start(env: dict[str, str], **options: Any) -> CeleryWorker:
        worker = CeleryWorker(env, log_path=tmp_path / f"worker-{len(workers)}.log", **options)
        workers.append(worker)
        return worker.start()

    yield start
    for worker in workers:
        try:
            worker.stop()
        except Exception:
            worker.kill()

"""A throwaway PostgreSQL server for the test session, from the server binaries on the machine.

The binaries are found through ``pg_config --bindir`` (or ``initdb`` on PATH). As root the server
runs as the ``postgres`` user (``initdb`` refuses root). A missing server is a loud failure.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.harness.network import free_port


class PostgresUnavailable(RuntimeError):
    pass


def find_bindir() -> Path:
    override = os.environ.get("CONVEYOR_TEST_PG_BINDIR")
    candidates: list[Path] = [Path(override)] if override else []
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if out.returncode == 0:
            candidates.append(Path(out.stdout.strip()))
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).parent)
    # Debian/Ubuntu keep the server binaries out of PATH, one directory per major version.
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for candidate in candidates:
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    raise PostgresUnavailable(
        "no PostgreSQL server binaries (initdb, pg_ctl) found: install the PostgreSQL server "
        "(e.g. `apt-get install postgresql`), set CONVEYOR_TEST_PG_BINDIR, or point "
        "CONVEYOR_TEST_DATABASE_URL at a running server"
    )


class PostgresServer:
    """``with PostgresServer() as server: server.url("dbname")``."""

    def __init__(self) -> None:
        self.bindir = find_bindir()
        self.port = free_port()
        self.as_postgres = os.geteuid() == 0
        self.tmp = Path(tempfile.mkdtemp(prefix="conveyor-pg-"))
        self.datadir = self.tmp / "data"
        self.sockdir = self.tmp / "sock"
        self.logfile = self.tmp / "server.log"
        self.user = "postgres"

    def _run(self, *args: str) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            log = self.logfile.read_text() if self.logfile.exists() else ""
            raise PostgresUnavailable(
                f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n"
                f"{result.stderr}\n{log}"
            )

    def start(self) -> PostgresServer:
        started = time.monotonic()
        self.sockdir.mkdir()
        if self.as_postgres:
            entry = pwd.getpwnam("postgres")
            for path in (self.tmp, self.sockdir):
                os.chown(path, entry.pw_uid, entry.pw_gid)
            self.tmp.chmod(0o755)
        self._run(
            "initdb",
            "-D",
            str(self.datadir),
            "-A",
            "trust",
            "-U",
            self.user,
            "-E",
            "UTF8",
            "--no-sync",
            "--locale=C",
        )
        options = (
            f"-p {self.port} -k {self.sockdir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300 "
            "-c shared_buffers=256MB"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.datadir),
            "-o",
            options,
            "-l",
            str(self.logfile),
            "-w",
            "-t",
            "60",
            "start",
        )
        self.startup_seconds = time.monotonic() - started
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        try:
            if (self.datadir / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.datadir), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

"""What one worker process holds: the database engine, SDK clients, the publisher, the engine.

Built lazily on first use in the process that runs tasks (a prefork child, after the fork), and
rebuilt if the process id changes, so no connection is ever shared across a fork.
"""

from __future__ import annotations

import os
import threading

from shared.database import create_engine_from_settings, session_factory
from shared.queue import publisher_from_settings
from shared.settings import Settings
from worker.clients import Clients
from worker.engine import ExecutionEngine
from worker.registry import load_functions


class WorkerRuntime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pid = os.getpid()
        load_functions(settings.function_modules)
        self.database = create_engine_from_settings(settings)
        self.sessions = session_factory(self.database)
        self.clients = Clients(settings)
        publisher = publisher_from_settings(settings) if settings.queue_url else None
        self.engine = ExecutionEngine(
            self.sessions, settings, clients=self.clients, publisher=publisher
        )

    def close(self) -> None:
        self.clients.close()
        self.database.dispose()


_lock = threading.Lock()
_runtime: WorkerRuntime | None = None


def get_runtime(settings: Settings) -> WorkerRuntime:
    global _runtime  # noqa: PLW0603  (one runtime per process, by design)
    with _lock:
        if _runtime is None or _runtime.pid != os.getpid():
            _runtime = WorkerRuntime(settings)
        return _runtime


def reset_runtime() -> None:
    """Forget (and close, when it belongs to this process) the runtime."""
    global _runtime  # noqa: PLW0603
    with _lock:
        if _runtime is not None and _runtime.pid == os.getpid():
            _runtime.close()
        _runtime = None

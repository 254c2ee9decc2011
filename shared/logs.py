"""structlog, configured once per process: JSON lines in production, a readable console locally.

Events have stable snake_case names (``execution_claimed``, ``tick_finished``); ids such as
``execution_id``, ``workflow``, ``step`` and ``attempt`` are bound with :func:`bind` (contextvars),
so every event logged inside a unit of work carries them.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog

from shared.settings import LogFormat, Settings

_configured = False


class _Stderr:
    """Writes to whatever ``sys.stderr`` is at the time (test runners and daemons swap it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(settings: Settings, *, force: bool = False) -> None:
    """Configure structlog and the stdlib root logger. Idempotent unless ``force``."""
    global _configured  # noqa: PLW0603  (one configuration per process, by design)
    if _configured and not force:
        return
    level = logging.getLevelNamesMapping()[settings.log_level]
    shared_processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any
    if settings.log_format is LogFormat.JSON:
        renderer = structlog.processors.JSONRenderer()
        shared_processors.append(structlog.processors.dict_tracebacks)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    structlog.configure(
        processors=[*shared_processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=_Stderr()),  # type: ignore[arg-type]
        # Not cached: a module-level logger used once would keep its first configuration's
        # level filter for good, even after configure_logging(force=True). A few µs per event.
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(_Stderr())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=shared_processors,
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(level, logging.INFO) if level < logging.INFO else level)
    for noisy in (
        "botocore",
        "boto3",
        "urllib3",
        "httpx",
        "httpcore",
        "sqlalchemy.engine",
        "alembic",
    ):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    structlog.contextvars.bind_contextvars(environment=settings.environment)
    _configured = True


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)


@contextmanager
def bind(**ids: Any) -> Iterator[None]:
    """Bind ids (execution_id, workflow, step, attempt, …) to every event logged inside."""
    tokens = structlog.contextvars.bind_contextvars(**ids)
    try:
        yield
    finally:
        structlog.contextvars.reset_contextvars(**tokens)

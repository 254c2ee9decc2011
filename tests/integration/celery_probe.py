"""A trivial task a real worker process runs to prove the queue path (imported with --include)."""

from __future__ import annotations

from pathlib import Path

from celery import shared_task

PROBE_TASK = "tests.probe.touch"


@shared_task(name=PROBE_TASK)
def touch(path: str, text: str) -> None:
    Path(path).write_text(text)

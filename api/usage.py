"""Per-key monthly call counts (``api_key_usage``), written inline or in batches.

Under Lambda every authenticated call upserts its count before the response. The long-running
server adds calls up in memory and writes them once a second in one transaction (one upsert per
key and month), so a busy key does not put a write on every request's path. A crash loses at most
the last second of counts, never a task.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from shared.apikeys import period_of, record_use
from shared.logs import get_logger

log = get_logger("api")


class UsageMeter:
    def __init__(
        self, sessions: sessionmaker[Session], *, background: bool, interval: float = 1.0
    ) -> None:
        self._sessions = sessions
        self.background = background
        self._interval = interval
        self._lock = threading.Lock()
        self._counts: Counter[tuple[int, str]] = Counter()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if background:
            self._thread = threading.Thread(target=self._run, name="conveyor-usage", daemon=True)
            self._thread.start()

    def count(self, key_id: int, now: datetime) -> None:
        if not self.background:
            with self._sessions() as session, session.begin():
                record_use(session, key_id, now)
            return
        with self._lock:
            self._counts[(key_id, period_of(now))] += 1

    def flush(self) -> None:
        with self._lock:
            counts, self._counts = self._counts, Counter()
        if not counts:
            return
        now = datetime.now(UTC)
        try:
            with self._sessions() as session, session.begin():
                for (key_id, period), calls in sorted(counts.items()):
                    stamp = now if period == period_of(now) else _month_end(period)
                    record_use(session, key_id, stamp, calls)
        except Exception as exc:
            log.warning("usage_flush_failed", error=f"{type(exc).__name__}: {exc}")
            with self._lock:
                self._counts.update(counts)  # try again next time

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.flush()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.flush()


def _month_end(period: str) -> datetime:
    year, month = (int(part) for part in period.split("-"))
    return datetime(year, month, 28, 23, 59, tzinfo=UTC)

"""Background doorbells for the long-running server (``conveyor api``).

A request commits its execution row (the outbox), hands the id to :class:`Doorbell` and answers
202 at once; two sender threads each take the ids waiting (up to 10, one ``SendMessageBatch``,
after at most 5 ms for more) and mark them ``queued``. At a trickle an id is sent at once; under
load the ids that arrive during one call make the next call's batch, so the number of calls
grows far slower than the request rate. SQS round trips stay out of the request's latency.

Nothing is lost if the process dies with ids still in memory: the rows are committed and
``pending``, and the scheduler's sweeper sends them (invariant 3). Under Lambda the API
dispatches inline instead (a frozen execution environment runs no background thread).
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from shared.logs import get_logger

log = get_logger("api")

Sender = Callable[[list[uuid.UUID], datetime], None]


class Doorbell:
    def __init__(
        self, send: Sender, *, max_wait: float = 0.005, max_batch: int = 10, senders: int = 2
    ) -> None:
        self._send = send
        self._queue: queue.SimpleQueue[uuid.UUID | None] = queue.SimpleQueue()
        self._max_wait = max_wait
        self._max_batch = max_batch
        self._idle = threading.Condition()
        self._outstanding = 0
        self._threads = [
            threading.Thread(target=self._run, name=f"conveyor-doorbell-{n}", daemon=True)
            for n in range(senders)
        ]
        for thread in self._threads:
            thread.start()

    def ring(self, ids: Sequence[uuid.UUID]) -> None:
        with self._idle:
            self._outstanding += len(ids)
        for execution_id in ids:
            self._queue.put(execution_id)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            batch = [first]
            deadline = time.monotonic() + self._max_wait
            while len(batch) < self._max_batch:
                try:
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            try:
                self._send(batch, datetime.now(UTC))
            except Exception as exc:  # the rows stay pending: the sweeper sends them
                log.warning(
                    "dispatch_failed", error=f"{type(exc).__name__}: {exc}", executions=len(batch)
                )
            with self._idle:
                self._outstanding -= len(batch)
                self._idle.notify_all()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every id rung so far was handed to SQS (or failed); False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._outstanding <= 0, timeout=timeout)

    def close(self, timeout: float = 10.0) -> None:
        self.flush(timeout)
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout)

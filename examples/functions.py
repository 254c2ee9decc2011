"""Python step functions the example workflows use, registered with the worker's allow-list.

``conveyor dev`` runs the worker with ``CONVEYOR_FUNCTION_MODULES=examples.functions``; a
definition names these functions (``examples.fetch``), never their import path.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from worker.registry import register

if TYPE_CHECKING:
    from worker.actions.base import ActionContext


@register("examples.fetch")
def fetch(limit: int = 10, since: str | None = None) -> list[dict[str, Any]]:
    """Deterministic "records" for the pipeline: the same ``since`` gives the same records."""
    seed = since or "on-demand"
    records = []
    for index in range(max(0, min(int(limit), 1000))):
        digest = hashlib.sha256(f"{seed}:{index}".encode()).hexdigest()
        records.append({"id": index + 1, "sku": f"sku-{digest[:8]}", "qty": int(digest[8:10], 16)})
    return records


@register("examples.daily_numbers")
def daily_numbers(region: str = "eu", date: str | None = None) -> dict[str, Any]:
    """Yesterday's numbers for the daily report (made up, deterministic per date and region)."""
    day = (date or datetime.now(UTC).isoformat())[:10]
    digest = hashlib.sha256(f"{region}:{day}".encode()).digest()
    return {
        "region": region,
        "date": day,
        "orders": 500 + digest[0] * 4,
        "revenue_eur": 10_000 + digest[1] * 97,
        "refunds": digest[2] % 17,
    }


@register("examples.store")
def store(ctx: ActionContext, records: list[dict[str, Any]], attempt: int = 1) -> dict[str, Any]:
    """Append the records to ``<CONVEYOR_HOME>/examples/store.jsonl`` once per execution.

    Idempotent per execution (the file is keyed by the step's idempotency key), so a retried
    attempt does not store the batch twice.
    """
    target = ctx.settings.home / "examples" / "store.jsonl"
    target.parent.mkdir(parents=True, exist_ok=True)
    key = ctx.idempotency_key
    if target.exists() and any(
        json.loads(line).get("key") == key for line in target.read_text().splitlines() if line
    ):
        return {"stored": len(records), "path": str(target), "duplicate": True}
    line = {"key": key, "attempt": attempt, "at": datetime.now(UTC).isoformat(), "records": records}
    with target.open("a", encoding="utf-8") as file:
        file.write(json.dumps(line, separators=(",", ":")) + "\n")
    return {"stored": len(records), "path": str(target), "duplicate": False}

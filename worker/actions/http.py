"""``action: http``: one request with httpx, bounded by the step's remaining budget.

* Sends ``Idempotency-Key: <execution>:<step>`` (unless the definition sets the header itself)
  and ``X-Conveyor-Execution`` / ``X-Conveyor-Step``; ``body`` (a JSON value) is sent as JSON.
* Success: a status in ``expect_status``, or any 2xx when it is absent.
* 429 and 5xx (when not expected) are transient and honour ``Retry-After``; a timeout or a
  connection error is transient; any other status is permanent.
* Output: ``{"status": 200, "headers": {…lower-case names…}, "body": <JSON or text>}``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from shared.definition import HttpStep
from shared.errors import PermanentActionError, TransientActionError
from worker.actions.base import ActionContext, ActionResult, retry_after_seconds, truncate

MAX_BODY_IN_OUTPUT = 1024 * 1024


def _body(response: Any) -> Any:
    content = response.content[:MAX_BODY_IN_OUTPUT]
    if not content:
        return None
    if "json" in response.headers.get("content-type", ""):
        try:
            return response.json()
        except ValueError:
            pass
    return content.decode(response.encoding or "utf-8", errors="replace")


class HttpAction:
    def run(self, step: HttpStep, rendered: dict[str, Any], ctx: ActionContext) -> ActionResult:
        import httpx  # noqa: PLC0415

        url = str(rendered.get("url", step.url))
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise PermanentActionError(f"url: rendered to {url!r}, not an http(s) URL")
        headers = {str(k): str(v) for k, v in (rendered.get("headers") or {}).items()}
        lower = {name.lower() for name in headers}
        if "idempotency-key" not in lower:
            headers["Idempotency-Key"] = ctx.idempotency_key
        headers.setdefault("X-Conveyor-Execution", str(ctx.execution_id))
        headers.setdefault("X-Conveyor-Step", ctx.step)
        body = rendered.get("body", step.body)
        budget = ctx.remaining()
        timeout = httpx.Timeout(budget, connect=min(5.0, budget))
        try:
            response = ctx.clients.http().request(
                step.method,
                url,
                headers=headers,
                json=body if body is not None else None,
                timeout=timeout,
            )
        except httpx.TimeoutException as exc:
            raise TransientActionError(
                f"{step.method} {url}: timed out ({type(exc).__name__})"
            ) from exc
        except httpx.TransportError as exc:
            raise TransientActionError(f"{step.method} {url}: {type(exc).__name__}: {exc}") from exc
        status = response.status_code
        output = {
            "status": status,
            "headers": {k.lower(): v for k, v in response.headers.items()},
            "body": _body(response),
        }
        expected = step.expect_status
        ok = status in expected if expected else 200 <= status < 300
        if ok:
            return ActionResult(output)
        message = f"{step.method} {url}: HTTP {status}: {truncate(response.text, 300)}"
        if status == 429 or status >= 500:
            raise TransientActionError(
                message,
                details=output,
                retry_after=retry_after_seconds(response.headers.get("retry-after")),
            )
        raise PermanentActionError(message, details=output)

"""Pure ASGI middleware: request ids, the access log, the catch-all 500 and the body size limit."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import PROBLEM_MEDIA_TYPE, problem_body
from shared.logs import get_logger

MAX_BODY_BYTES = 256 * 1024
REQUEST_ID_HEADER = "x-request-id"
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:@=+/-]{1,128}$")

log = get_logger("api")


async def _send_problem(send: Send, status: int, detail: str, request_id: str) -> None:
    import json  # noqa: PLC0415

    body = json.dumps(problem_body(status, detail, request_id=request_id)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                (b"content-length", str(len(body)).encode()),
                (REQUEST_ID_HEADER.encode(), request_id.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            candidate = bytes(value).decode("latin-1")
            if _SANE_REQUEST_ID.match(candidate):
                return candidate
            break
    event = scope.get("aws.event")
    if isinstance(event, dict):
        gateway_id = (event.get("requestContext") or {}).get("requestId")
        if isinstance(gateway_id, str) and _SANE_REQUEST_ID.match(gateway_id):
            return str(gateway_id)
    return uuid.uuid4().hex


class RequestContextMiddleware:
    """Gives each request an id (``X-Request-Id``: the caller's if sane), logs ``http_request``
    with method, path, status, duration and key name, and turns an unhandled exception into a
    generic 500 problem (the traceback goes to the log, never to the caller)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        if "\x00" in scope.get("path", "") or b"%00" in scope.get("query_string", b""):
            await _send_problem(
                send, 422, "path or query: NUL characters are not allowed", request_id
            )
            log.info(
                "http_request",
                request_id=request_id,
                method=scope.get("method"),
                path=scope.get("path", "").replace("\x00", "\\0"),
                status=422,
                duration_ms=0.0,
                key=None,
            )
            return
        status = 500
        response_started = False
        header = (REQUEST_ID_HEADER.encode(), request_id.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = [h for h in message.get("headers", []) if h[0] != header[0]]
                message = {**message, "headers": [*headers, header]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            log.error(
                "http_unhandled_error",
                request_id=request_id,
                method=scope.get("method"),
                path=scope.get("path"),
                error=f"{type(exc).__name__}: {exc}",
                exc_info=True,
            )
            if not response_started:
                status = 500
                await _send_problem(
                    send,
                    500,
                    "an internal error occurred; the request id is in the log",
                    request_id,
                )
        finally:
            log.info(
                "http_request",
                request_id=request_id,
                method=scope.get("method"),
                path=scope.get("path"),
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
                key=state.get("key_name"),
            )


class BodyLimitMiddleware:
    """Refuses bodies over ``limit`` bytes with 413, by ``Content-Length`` and by what arrives.

    The body is read in full before the app runs (it is small by construction), so a chunked
    upload that grows past the limit is refused before any handler sees it.
    """

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") in {"GET", "HEAD", "OPTIONS"}:
            await self.app(scope, receive, send)
            return
        request_id = scope.get("state", {}).get("request_id", "")
        too_large = f"body: larger than the {self.limit // 1024} KiB limit"
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _send_problem(send, 400, "Content-Length: not a number", request_id)
                    return
                if declared > self.limit:
                    await _send_problem(send, 413, too_large, request_id)
                    return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await _send_problem(send, 413, too_large, request_id)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

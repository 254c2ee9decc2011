"""Local fake servers for the worker's side effects: Lambda Invoke, Anthropic Messages, AgentCore,
and a plain HTTP endpoint. Each is a small threaded HTTP server on loopback that the real SDKs
(boto3 with an endpoint URL, the Anthropic SDK with a base URL, httpx) talk to.

Every fake counts the side effects it performed per idempotency key (``effects``), can be told to
fail the next calls (``fail_next``: throttling, 5xx, overload, with ``Retry-After``) and to be slow
(``delay``), and reports calls still in flight (``in_flight``), so fault tests can kill a worker
in the middle of a step and later prove that no finished step ran twice.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.harness.network import free_port


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # bytes, str, or a JSON value
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> tuple[bytes, str]:
        if isinstance(self.body, bytes):
            return self.body, "application/octet-stream"
        if isinstance(self.body, str):
            return self.body.encode(), "text/plain"
        if self.body is None:
            return b"", "application/json"
        return json.dumps(self.body).encode(), "application/json"


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # a client that was killed mid-call (the fault tests do that on purpose)
        super().handle_error(request, client_address)


class FakeServer:
    """A threaded loopback HTTP server dispatching every request to :meth:`handle`."""

    name = "fake"

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.lock = threading.Lock()
        self.calls: list[Request] = []
        self.effects: Counter[str] = Counter()
        self.started: Counter[str] = Counter()
        self.in_flight = 0
        self._failures: dict[str, deque[Reply]] = {}
        self._delays: dict[str, float] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("content-length") or 0)
                request = Request(
                    method=self.command,
                    path=unquote(parts.path),
                    query={k: v[-1] for k, v in parse_qs(parts.query).items()},
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length) if length else b"",
                )
                try:
                    reply = server._dispatch(request)
                except Exception as exc:  # a bug in a test handler: make it visible
                    reply = Reply(599, {"message": f"fake server error: {exc!r}"})
                body, content_type = reply.encoded()
                self.send_response(reply.status)
                headers = {"Content-Type": content_type, **reply.headers}
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if body and self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = _QuietServer(("127.0.0.1", self.port), Handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    # ------------------------------------------------------------------ control
    def start(self) -> FakeServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def fail_next(self, target: str, times: int, reply: Reply) -> None:
        """The next ``times`` calls to ``target`` get ``reply`` instead of being served."""
        with self.lock:
            self._failures.setdefault(target, deque()).extend(reply for _ in range(times))

    def delay(self, target: str, seconds: float) -> None:
        """Calls to ``target`` take ``seconds`` before they perform their effect."""
        self._delays[target] = seconds

    def effect_count(self, key: str) -> int:
        with self.lock:
            return self.effects[key]

    # ------------------------------------------------------------------ dispatch
    def target_of(self, request: Request) -> str:
        return request.path

    def idempotency_key(self, request: Request) -> str:
        return request.headers.get("idempotency-key", "")

    def _dispatch(self, request: Request) -> Reply:
        target = self.target_of(request)
        key = self.idempotency_key(request)
        with self.lock:
            self.calls.append(request)
            queue = self._failures.get(target)
            if queue:
                return queue.popleft()
            self.in_flight += 1
            self.started[key] += 1
        try:
            delay = self._delays.get(target, 0.0)
            if delay:
                time.sleep(delay)
            reply = self.handle(target, request)
            with self.lock:
                if reply.status < 400 or reply.headers.get("X-Amz-Function-Error"):
                    self.effects[key] += 1
            return reply
        finally:
            with self.lock:
                self.in_flight -= 1

    def handle(self, target: str, request: Request) -> Reply:
        raise NotImplementedError


# ------------------------------------------------------------------------------ Lambda
class FunctionError(Exception):
    """Raise in a fake Lambda handler to produce ``X-Amz-Function-Error: Unhandled``."""


LambdaHandler = Callable[[Any, dict[str, Any]], Any]
_INVOKE = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations$")


def lambda_throttle(retry_after: float | None = None) -> Reply:
    headers = {"x-amzn-ErrorType": "TooManyRequestsException"}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return Reply(429, {"Type": "User", "message": "Rate Exceeded."}, headers)


def lambda_service_error() -> Reply:
    return Reply(
        500, {"Type": "Service", "message": "boom"}, {"x-amzn-ErrorType": "ServiceException"}
    )


class FakeLambda(FakeServer):
    """The Lambda ``Invoke`` REST API: ``register(name, handler)``; ``handler(event, context)``.

    ``context`` holds ``client_context`` (decoded), ``qualifier`` and ``invocation_type``.
    Effects are counted per idempotency key (``_conveyor.idempotency_key`` in the payload, else
    the ClientContext's ``custom.idempotency_key``).
    """

    name = "lambda"

    def __init__(self) -> None:
        super().__init__()
        self.functions: dict[str, LambdaHandler] = {}

    def register(self, name: str, handler: LambdaHandler) -> None:
        self.functions[name] = handler

    def target_of(self, request: Request) -> str:
        match = _INVOKE.match(request.path)
        return match.group("name") if match else request.path

    @staticmethod
    def client_context(request: Request) -> dict[str, Any]:
        raw = request.headers.get("x-amz-client-context")
        return json.loads(base64.b64decode(raw)) if raw else {}

    def idempotency_key(self, request: Request) -> str:
        try:
            payload = request.json()
        except ValueError:
            payload = None
        if isinstance(payload, dict) and isinstance(payload.get("_conveyor"), dict):
            return str(payload["_conveyor"].get("idempotency_key", ""))
        return str(self.client_context(request).get("custom", {}).get("idempotency_key", ""))

    def handle(self, target: str, request: Request) -> Reply:
        handler = self.functions.get(target)
        if handler is None:
            return Reply(
                404,
                {"Type": "User", "message": f"Function not found: {target}"},
                {"x-amzn-ErrorType": "ResourceNotFoundException"},
            )
        invocation_type = request.headers.get("x-amz-invocation-type", "RequestResponse")
        if invocation_type == "DryRun":
            return Reply(204, None)
        context = {
            "client_context": self.client_context(request),
            "qualifier": request.query.get("Qualifier"),
            "invocation_type": invocation_type,
        }
        version = {"X-Amz-Executed-Version": request.query.get("Qualifier", "$LATEST")}
        try:
            result = handler(request.json(), context)
        except FunctionError as exc:
            return Reply(
                200,
                {"errorMessage": str(exc), "errorType": "FunctionError", "stackTrace": []},
                {"X-Amz-Function-Error": "Unhandled", **version},
            )
        if invocation_type == "Event":
            return Reply(202, None, version)
        return Reply(200, result, version)


# ------------------------------------------------------------------------------ Anthropic
Responder = Callable[[dict[str, Any]], str]


def anthropic_overloaded() -> Reply:
    return Reply(
        529, {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    )


def anthropic_rate_limited(retry_after: float = 0) -> Reply:
    return Reply(
        429,
        {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}},
        {"retry-after": str(retry_after)},
    )


def _prompt_of(body: dict[str, Any]) -> str:
    content = body["messages"][-1]["content"]
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content)


class FakeAnthropic(FakeServer):
    """The Messages API (``POST /v1/messages``); ``responder(request body) -> reply text``."""

    name = "anthropic"

    def __init__(self, responder: Responder | None = None) -> None:
        super().__init__()
        self.responder: Responder = responder or (lambda body: f"echo: {_prompt_of(body)}")

    def target_of(self, request: Request) -> str:
        return "messages" if request.path.endswith("/v1/messages") else request.path

    def handle(self, target: str, request: Request) -> Reply:
        if target != "messages":
            return Reply(404, {"type": "error", "error": {"type": "not_found_error"}})
        body = request.json()
        text = self.responder(body)
        prompt = _prompt_of(body)
        return Reply(
            200,
            {
                "id": f"msg_{uuid.uuid4().hex[:20]}",
                "type": "message",
                "role": "assistant",
                "model": body["model"],
                "content": [{"type": "text", "text": text}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": len(prompt.split()), "output_tokens": len(text.split())},
            },
        )


# ------------------------------------------------------------------------------ AgentCore
_RUNTIME = re.compile(r"^/runtimes/(?P<arn>.+)/invocations$")


class FakeAgentCore(FakeServer):
    """Bedrock AgentCore ``InvokeAgentRuntime``; ``responder(payload) -> JSON document``."""

    name = "agentcore"

    def __init__(self, responder: Callable[[dict[str, Any]], Any] | None = None) -> None:
        super().__init__()
        self.responder = responder or (
            lambda payload: {
                "text": f"agent says: {payload['prompt']}",
                "usage": {"input_tokens": 3, "output_tokens": 4},
            }
        )

    def target_of(self, request: Request) -> str:
        match = _RUNTIME.match(request.path)
        return match.group("arn") if match else request.path

    def idempotency_key(self, request: Request) -> str:
        payload = request.json() or {}
        return str(payload.get("_conveyor", {}).get("idempotency_key", ""))

    def handle(self, target: str, request: Request) -> Reply:
        session = request.headers.get("x-amzn-bedrock-agentcore-runtime-session-id", "")
        return Reply(
            200,
            self.responder(request.json()),
            {"X-Amzn-Bedrock-AgentCore-Runtime-Session-Id": session},
        )


def agentcore_throttle() -> Reply:
    return Reply(429, {"message": "slow down"}, {"x-amzn-ErrorType": "ThrottlingException"})


# ------------------------------------------------------------------------------ plain HTTP
HttpHandler = Callable[[Request], Reply]


class FakeHttp(FakeServer):
    """Any path; ``route(path, handler)`` or the default: 200 ``{"ok": true, "received": …}``."""

    name = "http"

    def __init__(self) -> None:
        super().__init__()
        self.routes: dict[str, HttpHandler] = {}

    def route(self, path: str, handler: HttpHandler) -> None:
        self.routes[path] = handler

    def handle(self, target: str, request: Request) -> Reply:
        handler = self.routes.get(target)
        if handler is not None:
            return handler(request)
        try:
            received = request.json()
        except ValueError:
            received = request.body.decode(errors="replace")
        return Reply(200, {"ok": True, "path": request.path, "received": received})


# ------------------------------------------------------------------------------ worker test helpers
def start_run(
    sessions: Any,
    document: dict[str, Any],
    *,
    run_input: dict[str, Any] | None = None,
    now: Any = None,
) -> uuid.UUID:
    """Apply a workflow definition and create one pending manual run of it; its id."""
    from datetime import UTC, datetime

    from shared.catalog import apply_definition
    from shared.definition import parse_definition
    from shared.executions import start_workflow
    from shared.status import Trigger

    now = now or datetime.now(UTC)
    with sessions() as session, session.begin():
        apply_definition(session, parse_definition(document, source="<test>"), now)
        created = start_workflow(
            session, document["name"], trigger=Trigger.MANUAL, now=now, run_input=run_input
        )
        return created.id


@dataclass
class RecordingPublisher:
    """Stands in for :class:`shared.queue.ExecutionPublisher`: remembers what would be sent."""

    sent: list[tuple[str, int]] = field(default_factory=list)

    def publish(self, messages: Any) -> Any:
        from shared.queue import PublishReport

        report = PublishReport()
        for message in messages:
            self.sent.append((message.execution_id, message.delay_seconds))
            report.sent.append(message.execution_id)
        return report

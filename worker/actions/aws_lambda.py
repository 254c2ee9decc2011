"""``action: lambda``: boto3 ``Invoke`` (RequestResponse, Event, DryRun), qualifier, idempotency.

* The payload (a rendered JSON value) gets ``_conveyor`` metadata added when it is an object:
  ``{"_conveyor": {"idempotency_key": "<execution>:<step>", "execution_id", "workflow", "step",
  "attempt"}}``; the same metadata travels in ``ClientContext.custom`` for every payload shape.
* Payload size is checked before sending: 6 MB for RequestResponse/DryRun, 256 KB for Event (a
  permanent error: the same payload will never fit).
* ``FunctionError`` (handled or unhandled) is a permanent failure carrying the function's error
  payload; ``TooManyRequestsException``, the other throttling/not-ready codes, any 5xx and
  connection problems are transient.
* Output: the function's JSON result (RequestResponse; text when it is not JSON), or
  ``{"status_code": 202|204, "executed_version": …}`` for Event/DryRun.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from shared.definition import LambdaStep
from shared.errors import PermanentActionError, TransientActionError
from worker.actions.base import ActionContext, ActionResult, retry_after_seconds, truncate

SYNC_PAYLOAD_LIMIT = 6 * 1024 * 1024
ASYNC_PAYLOAD_LIMIT = 256 * 1024
CLIENT_CONTEXT_LIMIT = 3583  # bytes of base64, Lambda's limit

TRANSIENT_CODES = frozenset(
    {
        "TooManyRequestsException",
        "ThrottlingException",
        "ServiceException",
        "ResourceNotReadyException",
        "EC2ThrottledException",
        "EFSMountConnectivityException",
        "EFSIOException",
        "ENILimitReachedException",
        "SubnetIPAddressLimitReachedException",
        "RequestTimeout",
    }
)


def _parse(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", errors="replace")


def _client_context(ctx: ActionContext) -> str:
    encoded = base64.b64encode(
        json.dumps({"custom": ctx.metadata()}, separators=(",", ":")).encode()
    ).decode()
    if len(encoded) > CLIENT_CONTEXT_LIMIT:  # a very long workflow/step name: keep the key only
        encoded = base64.b64encode(
            json.dumps({"custom": {"idempotency_key": ctx.idempotency_key}}).encode()
        ).decode()
    return encoded


class LambdaAction:
    def run(self, step: LambdaStep, rendered: dict[str, Any], ctx: ActionContext) -> ActionResult:
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

        payload = rendered.get("payload", step.payload)
        if isinstance(payload, dict):
            payload = {**payload, "_conveyor": ctx.metadata()}
        data = json.dumps(payload, separators=(",", ":")).encode()
        limit = ASYNC_PAYLOAD_LIMIT if step.invocation_type == "Event" else SYNC_PAYLOAD_LIMIT
        if len(data) > limit:
            raise PermanentActionError(
                f"lambda payload is {len(data)} bytes; {step.invocation_type} invocations accept "
                f"at most {limit} bytes",
                details={"payload_bytes": len(data), "limit": limit},
            )
        request: dict[str, Any] = {
            "FunctionName": step.function,
            "InvocationType": step.invocation_type,
            "Payload": data,
            "ClientContext": _client_context(ctx),
        }
        if step.qualifier:
            request["Qualifier"] = step.qualifier
        client = ctx.clients.lambda_client(ctx.remaining())
        try:
            response = client.invoke(**request)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            metadata = exc.response.get("ResponseMetadata", {})
            status = int(metadata.get("HTTPStatusCode", 0) or 0)
            message = f"lambda {step.function}: {code or status}: {error.get('Message', exc)}"
            details = {"code": code, "status": status}
            if code in TRANSIENT_CODES or status == 429 or status >= 500:
                headers = metadata.get("HTTPHeaders", {})
                raise TransientActionError(
                    message,
                    details=details,
                    retry_after=retry_after_seconds(headers.get("retry-after")),
                ) from exc
            raise PermanentActionError(message, details=details) from exc
        except BotoCoreError as exc:  # connection refused/reset, read timeout, …
            raise TransientActionError(
                f"lambda {step.function}: {type(exc).__name__}: {exc}"
            ) from exc
        body = response["Payload"].read() if "Payload" in response else b""
        status = int(response.get("StatusCode", 0))
        if response.get("FunctionError"):
            error_payload = _parse(body)
            kind = response["FunctionError"]
            summary = (
                error_payload.get("errorMessage") or error_payload.get("errorType")
                if isinstance(error_payload, dict)
                else error_payload
            )
            raise PermanentActionError(
                f"lambda {step.function} raised ({kind}): {truncate(str(summary), 500)}",
                details={"function_error": kind, "payload": error_payload},
            )
        if step.invocation_type == "RequestResponse":
            return ActionResult(_parse(body))
        return ActionResult(
            {"status_code": status, "executed_version": response.get("ExecutedVersion")}
        )

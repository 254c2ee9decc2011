"""``action: agent``: one LLM call behind one interface, two providers.

``provider: anthropic`` (default) uses the Anthropic Python SDK's Messages API (endpoint from the
``anthropic_base_url`` setting, so tests use a local fake). ``provider: bedrock-agentcore`` calls a
Bedrock AgentCore runtime with boto3 ``invoke_agent_runtime`` (endpoint from
``AWS_ENDPOINT_URL_BEDROCK_AGENTCORE``).

Output (both providers)::

    {"text": "<the reply>", "json": <the reply parsed as JSON when output: json, else null>,
     "model": "<model>", "stop_reason": "<why it stopped>"}

Token usage goes to the step run's ``usage`` column:
``{"provider", "model", "input_tokens", "output_tokens", …}``.

Errors: 429, 408, 409, overloaded (529) and other 5xx, timeouts and connection loss are
transient; anything else (400, 401, 403, 404, 413, 422, a reply that is not the JSON asked for) is
permanent. The idempotency key travels as the ``Idempotency-Key`` header (Anthropic) or in the
payload's ``_conveyor`` metadata and as the runtime session id prefix (AgentCore).
"""

from __future__ import annotations

import json
import re
from typing import Any

from shared.definition import AgentStep
from shared.errors import PermanentActionError, TransientActionError
from worker.actions.base import ActionContext, ActionResult, retry_after_seconds, truncate

_FENCE = re.compile(r"^\s*```(?:json)?\s*\n(.*?)\n\s*```\s*$", re.DOTALL)
TRANSIENT_STATUSES = frozenset({408, 409, 429})


def parse_json_reply(text: str) -> Any:
    """The reply as JSON (a surrounding Markdown code fence is tolerated)."""
    match = _FENCE.match(text)
    candidate = match.group(1) if match else text
    try:
        return json.loads(candidate)
    except ValueError as exc:
        raise PermanentActionError(
            f"agent reply is not valid JSON (output: json): {exc}",
            details={"text": truncate(text, 2000)},
        ) from exc


def _is_transient_status(status: int) -> bool:
    return status in TRANSIENT_STATUSES or status >= 500


class AgentAction:
    def run(self, step: AgentStep, rendered: dict[str, Any], ctx: ActionContext) -> ActionResult:
        prompt = str(rendered.get("prompt", step.prompt))
        system = rendered.get("system", step.system)
        if step.provider == "bedrock-agentcore":
            text, model, stop_reason, usage = self._agentcore(step, prompt, system, ctx)
        else:
            text, model, stop_reason, usage = self._anthropic(step, prompt, system, ctx)
        parsed = parse_json_reply(text) if step.output == "json" else None
        return ActionResult(
            {"text": text, "json": parsed, "model": model, "stop_reason": stop_reason}, usage
        )

    # ----------------------------------------------------------------------- Anthropic
    def _anthropic(
        self, step: AgentStep, prompt: str, system: Any, ctx: ActionContext
    ) -> tuple[str, str, str | None, dict[str, Any]]:
        import anthropic  # noqa: PLC0415

        model = step.model or ctx.settings.default_model
        request: dict[str, Any] = {
            "model": model,
            "max_tokens": step.max_tokens,
            "messages": [{"role": "user", "content": prompt}],
            "extra_headers": {
                "Idempotency-Key": ctx.idempotency_key,
                "X-Conveyor-Execution": str(ctx.execution_id),
                "X-Conveyor-Step": ctx.step,
            },
        }
        if system:
            request["system"] = str(system)
        try:
            client = ctx.clients.anthropic().with_options(timeout=ctx.remaining())
            message = client.messages.create(**request)
        except anthropic.APIStatusError as exc:
            text = f"anthropic: HTTP {exc.status_code}: {truncate(str(exc.message), 500)}"
            details = {"status": exc.status_code, "body": exc.body}
            if _is_transient_status(exc.status_code):
                raise TransientActionError(
                    text,
                    details=details,
                    retry_after=retry_after_seconds(exc.response.headers.get("retry-after")),
                ) from exc
            raise PermanentActionError(text, details=details) from exc
        except anthropic.APIConnectionError as exc:  # includes APITimeoutError
            raise TransientActionError(f"anthropic: {type(exc).__name__}: {exc}") from exc
        except anthropic.AnthropicError as exc:  # no API key, a malformed response, …
            raise PermanentActionError(f"anthropic: {type(exc).__name__}: {exc}") from exc
        reply = "".join(
            getattr(block, "text", "")
            for block in message.content
            if getattr(block, "type", "") == "text"
        )
        usage: dict[str, Any] = {
            "provider": "anthropic",
            "model": message.model,
            "input_tokens": message.usage.input_tokens,
            "output_tokens": message.usage.output_tokens,
        }
        for extra in ("cache_creation_input_tokens", "cache_read_input_tokens"):
            value = getattr(message.usage, extra, None)
            if value is not None:
                usage[extra] = value
        return reply, message.model, message.stop_reason, usage

    # ----------------------------------------------------------------------- AgentCore
    def _agentcore(
        self, step: AgentStep, prompt: str, system: Any, ctx: ActionContext
    ) -> tuple[str, str, str | None, dict[str, Any]]:
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

        arn = str(step.agent_runtime_arn)
        body: dict[str, Any] = {
            "prompt": prompt,
            "max_tokens": step.max_tokens,
            "_conveyor": ctx.metadata(),
        }
        if system:
            body["system"] = str(system)
        if step.model:
            body["model"] = step.model
        # AgentCore session ids are 33..256 characters; one session per execution step.
        session_id = f"conveyor-{ctx.execution_id}-{ctx.step}"[:256]
        client = ctx.clients.agentcore_client(ctx.remaining())
        try:
            response = client.invoke_agent_runtime(
                agentRuntimeArn=arn,
                runtimeSessionId=session_id,
                payload=json.dumps(body).encode(),
                contentType="application/json",
                accept="application/json",
            )
            raw = response["response"].read()
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
            text = f"agentcore {arn}: {code or status}: {error.get('Message', exc)}"
            transient_codes = {
                "ThrottlingException",
                "ServiceQuotaExceededException",
                "RetryableConflictException",
                "InternalServerException",
            }
            if code in transient_codes or _is_transient_status(status):
                raise TransientActionError(text, details={"code": code, "status": status}) from exc
            raise PermanentActionError(text, details={"code": code, "status": status}) from exc
        except BotoCoreError as exc:
            raise TransientActionError(f"agentcore {arn}: {type(exc).__name__}: {exc}") from exc
        content_type = str(response.get("contentType", ""))
        reply, document = _agentcore_reply(raw, content_type)
        usage: dict[str, Any] = {"provider": "bedrock-agentcore", "model": step.model or arn}
        if isinstance(document, dict) and isinstance(document.get("usage"), dict):
            usage.update(document["usage"])
        stop = document.get("stop_reason") if isinstance(document, dict) else None
        return reply, str(usage["model"]), stop, usage


def _agentcore_reply(raw: bytes, content_type: str) -> tuple[str, Any]:
    """The reply text and the decoded document; server-sent events are concatenated."""
    text = raw.decode("utf-8", errors="replace")
    if "text/event-stream" in content_type:
        chunks = [
            line.removeprefix("data:").strip()
            for line in text.splitlines()
            if line.startswith("data:")
        ]
        return "".join(chunks), None
    try:
        document = json.loads(text)
    except ValueError:
        return text, None
    if isinstance(document, dict):
        for key in ("text", "result", "output", "response", "completion"):
            if isinstance(document.get(key), str):
                return str(document[key]), document
        return json.dumps(document), document
    if isinstance(document, str):
        return document, document
    return json.dumps(document), document

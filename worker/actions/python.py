"""``action: python``: call a function registered with the worker (see :mod:`worker.registry`).

The function gets the rendered ``args`` as keyword arguments (and ``ctx`` if it asks for it);
its return value, which must be JSON-serialisable, is the step's output. Raising
:class:`~shared.errors.TransientActionError` asks for a retry; any other exception is a
permanent failure whose message and traceback are recorded.
"""

from __future__ import annotations

import json
import traceback
from typing import Any

from shared.definition import PythonStep
from shared.errors import ActionError, PermanentActionError
from worker.actions.base import ActionContext, ActionResult, truncate
from worker.registry import get_function, registered_names


class PythonAction:
    def run(self, step: PythonStep, rendered: dict[str, Any], ctx: ActionContext) -> ActionResult:
        registered = get_function(step.function)
        if registered is None:
            raise PermanentActionError(
                f"python function {step.function!r} is not registered with this worker "
                f"(registered: {', '.join(registered_names()) or 'none'})"
            )
        kwargs = dict(rendered.get("args", step.args) or {})
        if registered.wants_ctx:
            kwargs["ctx"] = ctx
        try:
            result = registered.function(**kwargs)
        except ActionError:
            raise
        except Exception as exc:
            raise PermanentActionError(
                f"python function {step.function!r} raised {type(exc).__name__}: {exc}",
                details={"traceback": truncate(traceback.format_exc(), 8000)},
            ) from exc
        try:
            json.dumps(result)
        except (TypeError, ValueError) as exc:
            raise PermanentActionError(
                f"python function {step.function!r} returned a value that is not JSON: {exc}"
            ) from exc
        return ActionResult(result)

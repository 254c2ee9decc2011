"""One module per action; :func:`default_actions` maps action names to instances."""

from __future__ import annotations

from worker.actions.base import Action, ActionContext, ActionResult, StepInterruptedError


def default_actions() -> dict[str, Action]:
    from worker.actions.agent import AgentAction  # noqa: PLC0415
    from worker.actions.aws_lambda import LambdaAction  # noqa: PLC0415
    from worker.actions.http import HttpAction  # noqa: PLC0415
    from worker.actions.python import PythonAction  # noqa: PLC0415

    return {
        "agent": AgentAction(),
        "http": HttpAction(),
        "lambda": LambdaAction(),
        "python": PythonAction(),
    }


__all__ = ["Action", "ActionContext", "ActionResult", "StepInterruptedError", "default_actions"]

"""The one exception root for Conveyor, and the families every component raises.

Every error a user can cause or see derives from :class:`ConveyorError`. Entry points (CLI, API,
Lambda handlers) catch the root and turn it into an exit code, a problem+json response or a
structured log event; nothing else needs to know the concrete class.
"""

from __future__ import annotations


class ConveyorError(Exception):
    """Root of every error Conveyor raises on purpose."""


class ConfigurationError(ConveyorError):
    """The settings are missing, malformed or point at something that cannot be resolved."""


class InvalidInput(ConveyorError):
    """Input from a user (CLI flag, API body, Lambda event, file) is not acceptable."""


class InvalidSchedule(InvalidInput):
    """A schedule expression or time zone cannot be parsed; the message names the field."""


class InvalidDefinition(InvalidInput):
    """A workflow definition failed validation.

    ``problems`` holds one line per problem, each naming the source (file), the field path and
    what is wrong, e.g. ``daily.yaml: steps[1].action: unknown action 'lamda'``.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class NotFound(ConveyorError):
    """A named thing (workflow, execution, API key) does not exist."""


class Conflict(ConveyorError):
    """The request contradicts stored state (e.g. an idempotency key reused with another body)."""


class ActionError(ConveyorError):
    """A step's action failed. Subclasses say whether trying again can help."""

    def __init__(self, message: str, *, details: object | None = None) -> None:
        super().__init__(message)
        self.details = details


class TransientActionError(ActionError):
    """Throttling, 5xx, connection loss, remote timeout: the same call may succeed later."""

    def __init__(
        self, message: str, *, details: object | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, details=details)
        self.retry_after = retry_after


class PermanentActionError(ActionError):
    """A function error, a 4xx, a validation error: the same call will fail the same way."""


class StepTimeout(ActionError):
    """A step or an execution ran past its timeout and was interrupted."""

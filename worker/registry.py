"""The allow-list of Python functions a ``python`` step may call.

A definition names a function by the name it was registered under, never by an import path, so
no API caller can make the worker run arbitrary code::

    from worker.registry import register

    @register("reports.crunch")
    def crunch(region: str, days: int = 7) -> dict[str, int]:
        ...

    @register("reports.slow")
    def slow(ctx: ActionContext, items: list[str]) -> None:   # asks for the context
        for item in items:
            ctx.check()          # a checkpoint: stops here once cancelled or timed out
            ...

Functions receive the step's rendered ``args`` as keyword arguments (plus ``ctx`` when they
declare a parameter named ``ctx``) and return a JSON value (the step's output).

Modules that register functions are imported at worker start from the ``conveyor.functions``
entry point group (an entry point may name a module, or a function registered under the entry
point's name) and from the ``CONVEYOR_FUNCTION_MODULES`` setting (comma-separated modules).
"""

from __future__ import annotations

import importlib
import inspect
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, TypeVar

from shared.errors import ConfigurationError

if TYPE_CHECKING:
    from worker.actions.base import ActionContext

ENTRY_POINT_GROUP = "conveyor.functions"
_NAME = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*$")

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class RegisteredFunction:
    name: str
    function: Callable[..., Any]
    wants_ctx: bool


_registry: dict[str, RegisteredFunction] = {}
_lock = threading.Lock()
_loaded: set[str] = set()


def register(name: str, *, replace: bool = False) -> Callable[[F], F]:
    """Register ``function`` under ``name`` (lower-case dotted identifiers)."""
    if not _NAME.match(name):
        raise ValueError(
            f"cannot register {name!r}: names are lower-case dotted identifiers, e.g. "
            "'reports.crunch'"
        )

    def decorator(function: F) -> F:
        wants_ctx = "ctx" in inspect.signature(function).parameters
        with _lock:
            existing = _registry.get(name)
            if existing is not None and existing.function is not function and not replace:
                raise ValueError(
                    f"python function {name!r} is already registered "
                    f"({existing.function.__module__}.{existing.function.__qualname__})"
                )
            _registry[name] = RegisteredFunction(name, function, wants_ctx)
        return function

    return decorator


def unregister(name: str) -> None:
    with _lock:
        _registry.pop(name, None)


def get_function(name: str) -> RegisteredFunction | None:
    return _registry.get(name)


def registered_names() -> list[str]:
    return sorted(_registry)


def _import(module: str, origin: str) -> None:
    try:
        importlib.import_module(module)
    except Exception as exc:
        raise ConfigurationError(f"{origin}: cannot import {module!r}: {exc}") from exc


def load_functions(modules: Iterable[str] = (), *, use_entry_points: bool = True) -> list[str]:
    """Import entry points and ``modules`` (built-ins are always there); return all names."""
    if use_entry_points and ENTRY_POINT_GROUP not in _loaded:
        for point in entry_points(group=ENTRY_POINT_GROUP):
            try:
                target = point.load()
            except Exception as exc:
                raise ConfigurationError(
                    f"entry point {point.name} ({point.value}) in {ENTRY_POINT_GROUP}: {exc}"
                ) from exc
            if callable(target) and not inspect.ismodule(target):
                register(point.name)(target)
        _loaded.add(ENTRY_POINT_GROUP)
    for module in modules:
        if module not in _loaded:
            _import(module, "CONVEYOR_FUNCTION_MODULES")
            _loaded.add(module)
    return registered_names()


# ----------------------------------------------------------------------------- built-ins
def _noop(**_ignored: Any) -> None:
    return None


def _heartbeat() -> dict[str, str]:
    return {"at": datetime.now(UTC).isoformat()}


def _sleep(ctx: ActionContext, seconds: float = 1.0) -> dict[str, float]:
    ctx.sleep(float(seconds))
    ctx.check()
    return {"slept": float(seconds)}


def _echo(**kwargs: Any) -> dict[str, Any]:
    return kwargs


register("conveyor.noop")(_noop)
register("conveyor.heartbeat")(_heartbeat)
register("conveyor.sleep")(_sleep)
register("conveyor.echo")(_echo)

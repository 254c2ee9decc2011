"""The one template sandbox: definitions are validated with it and workers render with it.

Every string value in a step's ``payload``, ``prompt``, ``system``, ``url``, ``headers``, ``body``
and ``args`` may hold Jinja2 ``{{ … }}`` expressions. They run in Jinja2's *immutable sandbox*
(no attribute starting with ``_``, no mutation of context objects, no unsafe callables) with
strict undefined values, so a missing key is an error instead of an empty string.

Rendering keeps native types where it can: a string that is exactly one ``{{ expr }}`` becomes
the value of ``expr`` (a dict stays a dict, a number stays a number); any other string with
template syntax renders to a string.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import jinja2
from jinja2 import StrictUndefined, meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from shared.errors import InvalidInput

__all__ = [
    "CONTEXT_NAMES",
    "TemplateAnalysis",
    "TemplateRenderError",
    "analyze_template",
    "child_path",
    "has_template_syntax",
    "iter_strings",
    "render_value",
    "template_environment",
]

CONTEXT_NAMES: frozenset[str] = frozenset(
    {"input", "steps", "scheduled_for", "execution_id", "workflow", "attempt", "now"}
)
"""The top-level names a template may use; the worker provides exactly these."""

_MAX_KEYS_IN_MESSAGE = 10


class TemplateRenderError(InvalidInput):
    """A template could not be rendered (missing key, unsafe access, failing expression).

    ``field`` is the field path (e.g. ``steps[1].payload.date``) and ``template`` the source.
    """

    def __init__(self, message: str, *, field: str = "", template: str = "") -> None:
        super().__init__(message)
        self.field = field
        self.template = template


class _Undefined(StrictUndefined):
    """``StrictUndefined`` whose message says which key is missing and which ones exist."""

    __slots__ = ()

    @property
    def _undefined_message(self) -> str:
        if self._undefined_hint:
            return self._undefined_hint
        name = self._undefined_name
        obj = self._undefined_obj
        if obj is jinja2.utils.missing:
            return f"{name!r} is undefined"
        if isinstance(obj, Mapping):
            keys = sorted(str(key) for key in obj)
            shown = ", ".join(keys[:_MAX_KEYS_IN_MESSAGE]) or "none"
            if len(keys) > _MAX_KEYS_IN_MESSAGE:
                shown += ", …"
            return f"missing key {name!r} (available keys: {shown})"
        if isinstance(name, str):
            return f"{type(obj).__name__} value has no attribute {name!r}"
        return f"{type(obj).__name__} value has no element {name!r}"


@functools.cache
def template_environment() -> ImmutableSandboxedEnvironment:
    """The shared sandboxed environment (strict undefined, no autoescape)."""
    return ImmutableSandboxedEnvironment(undefined=_Undefined, autoescape=False)


def has_template_syntax(text: str) -> bool:
    """Whether ``text`` could contain Jinja syntax at all (cheap pre-check)."""
    return "{{" in text or "{%" in text or "{#" in text


@dataclass(frozen=True)
class TemplateAnalysis:
    """What a template refers to, found by walking its syntax tree."""

    variables: frozenset[str]
    """Undeclared top-level names (``input``, ``steps``, … or unknown ones)."""
    step_references: tuple[str, ...] = field(default=())
    """Names X used as ``steps.X`` or ``steps['X']``, in order of appearance."""
    private_attributes: tuple[str, ...] = field(default=())
    """Attributes or constant keys starting with ``_`` (always refused by the sandbox)."""


@functools.lru_cache(maxsize=2048)
def analyze_template(source: str) -> TemplateAnalysis:
    """Parse ``source`` and report its references; raises ``jinja2.TemplateSyntaxError``."""
    env = template_environment()
    tree = env.parse(source)
    undeclared = meta.find_undeclared_variables(tree)
    variables = frozenset(name for name in undeclared if name not in env.globals)
    steps: list[str] = []
    private: list[str] = []
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        key: object
        if isinstance(node, nodes.Getattr):
            key, target = node.attr, node.node
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            key, target = node.arg.value, node.node
        else:
            continue  # a computed key: cannot be checked before run time
        if not isinstance(key, str):
            continue
        if key.startswith("_"):
            private.append(key)
        if not isinstance(target, nodes.Name):
            continue
        if target.name == "steps" and target.ctx == "load" and key not in steps:
            steps.append(key)
    return TemplateAnalysis(variables, tuple(steps), tuple(private))


@functools.lru_cache(maxsize=2048)
def _compile(source: str) -> tuple[jinja2.Template, Any]:
    """The compiled template and, for a lone ``{{ expr }}``, the compiled expression too."""
    env = template_environment()
    template = env.from_string(source)
    expression = None
    tree = env.parse(source)
    if (
        len(tree.body) == 1
        and isinstance(tree.body[0], nodes.Output)
        and len(tree.body[0].nodes) == 1
        and not isinstance(tree.body[0].nodes[0], nodes.TemplateData)
    ):
        inner = source.strip()
        if inner.startswith("{{") and inner.endswith("}}") and inner == source:
            inner = inner[2:-2].removeprefix("-").removesuffix("-")
            expression = env.compile_expression(inner, undefined_to_none=False)
    return template, expression


def _find_undefined(value: Any) -> jinja2.Undefined | None:
    if isinstance(value, jinja2.Undefined):
        return value
    if isinstance(value, Mapping):
        for item in value.values():
            found = _find_undefined(item)
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for item in value:
            found = _find_undefined(item)
            if found is not None:
                return found
    return None


def _native(value: Any) -> Any:
    """Tuples (Jinja literals) become lists so results stay JSON-shaped."""
    if isinstance(value, tuple):
        return [_native(item) for item in value]
    if isinstance(value, list):
        return [_native(item) for item in value]
    if isinstance(value, dict):
        return {key: _native(item) for key, item in value.items()}
    return value


def _render_string(source: str, context: dict[str, Any], field_path: str) -> Any:
    if not has_template_syntax(source):
        return source
    where = f"{field_path}: " if field_path else ""
    try:
        template, expression = _compile(source)
        if expression is not None:
            result = expression(**context)
            undefined = _find_undefined(result)
            if undefined is not None:
                undefined._fail_with_undefined_error()
            return _native(result)
        return template.render(context)
    except jinja2.TemplateSyntaxError as exc:
        message = f"{where}template syntax error: {exc.message}"
    except jinja2.UndefinedError as exc:  # includes SecurityError
        message = f"{where}template {source!r}: {exc}"
    except Exception as exc:  # a failing filter, a division by zero, …: all the user's template
        message = f"{where}template {source!r} failed: {type(exc).__name__}: {exc}"
    raise TemplateRenderError(message, field=field_path, template=source)


def _child(path: str, key: object) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    text = str(key)
    if text and all(char.isalnum() or char in "_-" for char in text):
        return f"{path}.{text}" if path else text
    return f"{path}[{text!r}]"


def render_value(value: Any, context: Mapping[str, Any], *, field: str = "") -> Any:
    """Render every string inside ``value`` (recursing through dicts and lists).

    Dict keys are not rendered. A string that is exactly one ``{{ expr }}`` yields the native
    result of ``expr``; other strings yield strings. Raises :class:`TemplateRenderError` naming
    the field path (``field`` plus the path inside ``value``) on any failure.
    """
    ctx = dict(context)

    def walk(item: Any, path: str) -> Any:
        if isinstance(item, str):
            return _render_string(item, ctx, path)
        if isinstance(item, Mapping):
            return {key: walk(sub, _child(path, key)) for key, sub in item.items()}
        if isinstance(item, list | tuple):
            return [walk(sub, _child(path, index)) for index, sub in enumerate(item)]
        return item

    return walk(value, field)


def iter_strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every ``(field path, string)`` inside a JSON-like value, in document order."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, sub in value.items():
            yield from iter_strings(sub, _child(path, key))
    elif isinstance(value, list | tuple):
        for index, sub in enumerate(value):
            yield from iter_strings(sub, _child(path, index))


def child_path(path: str, key: object) -> str:
    """``path`` extended by a key (``.name`` or ``["odd key"]``) or an index (``[3]``)."""
    return _child(path, key)

"""Templates: one sandbox, native types for lone expressions, loud failures for missing keys."""

from __future__ import annotations

from typing import Any

import pytest
from jinja2 import StrictUndefined, TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from shared.errors import InvalidInput
from shared.templating import (
    TemplateRenderError,
    analyze_template,
    render_value,
    template_environment,
)

CONTEXT: dict[str, Any] = {
    "input": {"region": "eu", "limit": 10, "tags": ["a", "b"], "nested": {"k": [1, 2]}},
    "steps": {"fetch": {"output": {"rows": [{"id": 1}, {"id": 2}], "count": 2}}},
    "scheduled_for": "2026-03-01T09:00:00+01:00",
    "execution_id": "ex-123",
    "workflow": {"name": "daily-report"},
    "attempt": 1,
    "now": "2026-03-01T09:00:05+01:00",
}


def test_the_environment_is_one_shared_immutable_sandbox_with_strict_undefined() -> None:
    env = template_environment()
    assert env is template_environment()
    assert isinstance(env, ImmutableSandboxedEnvironment)
    assert issubclass(env.undefined, StrictUndefined)


def test_strings_without_template_syntax_and_non_strings_are_returned_unchanged() -> None:
    value = {"a": "plain text", "b": 3, "c": None, "d": True, "e": 1.5}
    assert render_value(value, CONTEXT) == value


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ input }}", CONTEXT["input"]),
        ("{{ input.limit }}", 10),
        ("{{ input.tags }}", ["a", "b"]),
        ("{{ steps.fetch.output }}", CONTEXT["steps"]["fetch"]["output"]),
        ("{{ steps['fetch'].output.count }}", 2),
        ("{{ attempt > 0 }}", True),
        ("{{ none }}", None),
        ("{{ input.limit * 2.5 }}", 25.0),
        ("{{ (1, 2) }}", [1, 2]),
        ("{{- input.limit -}}", 10),
        ("{{ steps.fetch.output.rows | map(attribute='id') | list }}", [1, 2]),
    ],
)
def test_a_string_that_is_one_expression_keeps_the_native_type(
    template: str, expected: object
) -> None:
    assert render_value(template, CONTEXT) == expected


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("region={{ input.region }}", "region=eu"),
        ("{{ input.limit }} rows", "10 rows"),
        (" {{ input.limit }}", " 10"),
        ("{{ input.region }}-{{ attempt }}", "eu-1"),
        ("{% for t in input.tags %}{{ t }}{{ loop.index }}{% endfor %}", "a1b2"),
        ("{{ input.nested | tojson }}", '{"k": [1, 2]}'),
    ],
)
def test_mixed_strings_render_to_strings(template: str, expected: str) -> None:
    assert render_value(template, CONTEXT) == expected


def test_rendering_recurses_through_dicts_and_lists_but_leaves_keys_alone() -> None:
    value = {
        "{{ not_a_key_template }}": "x",
        "date": "{{ scheduled_for }}",
        "items": ["{{ input.limit }}", {"deep": "{{ workflow.name }}!"}],
    }
    assert render_value(value, CONTEXT) == {
        "{{ not_a_key_template }}": "x",
        "date": "2026-03-01T09:00:00+01:00",
        "items": [10, {"deep": "daily-report!"}],
    }


def test_a_missing_key_raises_naming_the_key_and_the_field() -> None:
    with pytest.raises(TemplateRenderError) as info:
        render_value({"r": "{{ input.zone }}"}, CONTEXT, field="steps[0].payload")
    message = str(info.value)
    assert message.startswith("steps[0].payload.r: ")
    assert "missing key 'zone'" in message
    assert "available keys: limit, nested, region, tags" in message
    assert info.value.field == "steps[0].payload.r"
    assert info.value.template == "{{ input.zone }}"


def test_a_missing_key_inside_a_mixed_string_raises_too() -> None:
    with pytest.raises(TemplateRenderError, match="missing key 'summarize'"):
        render_value("text: {{ steps.summarize.output }}", CONTEXT)


def test_a_missing_element_in_a_list_raises() -> None:
    with pytest.raises(TemplateRenderError, match="no element 5"):
        render_value("{{ input.tags[5] }}", CONTEXT)


def test_an_unknown_variable_raises() -> None:
    with pytest.raises(TemplateRenderError, match="'secrets' is undefined"):
        render_value("{{ secrets }}", CONTEXT)


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "x{{ input.__class__ }}",
        "{{ input.update({'region': 'us'}) }}",
        "{{ input.tags.append(3) }}",
    ],
)
def test_the_sandbox_blocks_private_attributes_and_mutation(template: str) -> None:
    with pytest.raises(TemplateRenderError, match="unsafe"):
        render_value(template, CONTEXT)
    assert CONTEXT["input"]["region"] == "eu"
    assert CONTEXT["input"]["tags"] == ["a", "b"]


def test_a_failing_expression_becomes_a_template_render_error() -> None:
    with pytest.raises(TemplateRenderError, match="ZeroDivisionError"):
        render_value("{{ 1 / 0 }}", CONTEXT)


def test_a_syntax_error_becomes_a_template_render_error() -> None:
    with pytest.raises(TemplateRenderError, match="template syntax error"):
        render_value("{{ input.region ", CONTEXT, field="url")


def test_template_render_error_is_an_invalid_input_error() -> None:
    assert issubclass(TemplateRenderError, InvalidInput)


def test_analysis_finds_top_level_variables_and_step_references() -> None:
    analysis = analyze_template(
        "{{ steps.fetch.output }} {{ steps['summarize'].output }} {{ input.x }} {{ foo }}"
    )
    assert analysis.variables == {"steps", "input", "foo"}
    assert analysis.step_references == ("fetch", "summarize")
    assert analysis.private_attributes == ()


def test_analysis_ignores_template_locals_loop_and_globals() -> None:
    analysis = analyze_template(
        "{% set n = 3 %}{% for row in steps.fetch.output %}{{ row }}{{ loop.index }}"
        "{% endfor %}{{ n }}{{ range(2) | list }}"
    )
    assert analysis.variables == {"steps"}


def test_analysis_reports_private_attributes_and_raises_on_syntax_errors() -> None:
    assert analyze_template("{{ x.__class__ }}").private_attributes == ("__class__",)
    with pytest.raises(TemplateSyntaxError):
        analyze_template("{% if %}")

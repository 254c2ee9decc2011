"""Property-based run of the OpenAPI document against the app (schemathesis).

Every operation gets a bounded, deterministic set of generated requests (valid and invalid) sent
with an admin key; no response may be a 5xx and every response must match the document (status
code, content type, body schema, headers).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode, checks

from tests.integration.test_api_support import ApiHarness, api_settings, harness

MAX_EXAMPLES = 25


@pytest.fixture
def api(pg_url: str, sqs: Any) -> Iterator[ApiHarness]:
    with harness(api_settings(pg_url, sqs), sqs) as h:
        h.apply()
        yield h


def _document() -> dict[str, Any]:
    """The OpenAPI document, from an app that never connects anywhere."""
    from api.app import create_app
    from shared.settings import Settings

    app = create_app(Settings(database_url="sqlite:///:memory:"))
    try:
        return app.openapi()
    finally:
        app.state.runtime.close()


schema = schemathesis.openapi.from_dict(_document())
# Valid and invalid requests, NUL bytes included (PostgreSQL refuses them in text and JSON).
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
    max_examples=MAX_EXAMPLES,
    deterministic=True,
    allow_x00=True,
    database="none",
)


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_the_api_honours_its_openapi_document(case: Any, api: ApiHarness) -> None:
    case.call_and_validate(
        app=api.app,
        headers=api.auth(),
        checks=[
            checks.not_a_server_error,
            checks.status_code_conformance,
            checks.content_type_conformance,
            checks.response_schema_conformance,
            checks.response_headers_conformance,
        ],
    )

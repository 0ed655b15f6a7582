"""schemathesis against the service's own OpenAPI document (`/schema`), on both stores: data
that fits the schema and data that does not, for every operation, with an admin key (so every
handler runs, not only the authentication guard). No answer is a 5xx, and every answer has a
declared content type and matches the schema declared for its status code.

The document is read from an app built here (it does not depend on the store); the requests go
to a live server per store holding rules, two stores and member M1, so some of them find
something. Under CI a bounded number of examples per operation (a few hundred in all).
"""

from __future__ import annotations

from typing import Any

import httpx
import msgspec
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from api.app import create_app
from api.openapi import declare_problem_responses
from ledger.settings import Settings
from tests.chain import ADMIN
from tests.conftest import ON_CI

pytestmark = pytest.mark.e2e
EXAMPLES_PER_OPERATION = 6 if ON_CI else 50
CHECKS = [not_a_server_error, content_type_conformance, response_schema_conformance]

_app = create_app(Settings(database_url="sqlite:///:memory:"))
# as /schema/openapi.json serves it (msgspec encodes the structs given as defaults)
DOCUMENT = declare_problem_responses(
    msgspec.json.decode(msgspec.json.encode(_app.openapi_schema.to_schema()))
)
schema = schemathesis.openapi.from_dict(DOCUMENT)


def test_the_document_tested_is_the_one_served(seeded_url: str) -> None:
    assert httpx.get(f"{seeded_url}/schema/openapi.json").json() == DOCUMENT


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=ON_CI,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_error_and_every_answer_matches_the_schema(case: Any, seeded_url: str) -> None:
    case.call_and_validate(base_url=seeded_url, headers=ADMIN, checks=CHECKS, timeout=30)

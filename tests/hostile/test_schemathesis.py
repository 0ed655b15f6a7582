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
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from api.app import create_app
from api.openapi import served_document
from ledger.settings import Settings
from tests.chain import ADMIN
from tests.conftest import ON_CI

pytestmark = pytest.mark.e2e
EXAMPLES_PER_OPERATION = 6 if ON_CI else 50
CHECKS = [not_a_server_error, content_type_conformance, response_schema_conformance]

_app = create_app(Settings(database_url="sqlite:///:memory:"))
# as /schema/openapi.json serves it (msgspec encodes the structs given as defaults)
DOCUMENT = served_document(
    msgspec.json.decode(msgspec.json.encode(_app.openapi_schema.to_schema()))
)
# Beside the document's own data: times anywhere in years 1 … 9999 and at their very edges,
# dates likewise (SPEC 3.1 bounds them; the API must refuse them with a 4xx, never a 5xx).
EXTREME_TIMES = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00", "1999-12-31T23:59:59Z"]
schemathesis.openapi.format(
    "date-time",
    st.one_of(
        st.sampled_from(EXTREME_TIMES),
        st.datetimes(timezones=st.timezones()).map(lambda t: t.isoformat()),
    ),
)
schemathesis.openapi.format("date", st.dates().map(lambda d: d.isoformat()))
schema = schemathesis.openapi.from_dict(DOCUMENT)
# Hostile values for every query parameter of every operation (NUL, a cursor of 2^70, negative,
# extreme times, control characters, long text), sent whatever the parameter's type.
HOSTILE_QUERY = [
    "\x00",
    "a\x00b",
    str(2**70),
    "-1",
    *EXTREME_TIMES,
    "0000-01",
    "9999-12",
    "\x07\x1b",
    "x" * 5_000,
]
PATH_VALUES = {
    "member_id": "M1",
    "card": "M1",
    "store_id": "S1",
    "receipt_no": "R1",
    "redemption_no": "X1",
    "key_id": "k1",
    "period": "2026-01",
    "date": "2026-01-15",
}


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


def _query_cases() -> list[tuple[str, str, str]]:
    return [
        (method.upper(), path, parameter["name"])
        for path, operations in DOCUMENT["paths"].items()
        for method, operation in operations.items()
        for parameter in operation.get("parameters", [])
        if parameter.get("in") == "query"
    ]


@pytest.mark.parametrize(("method", "path", "name"), _query_cases())
def test_hostile_query_values_are_refused_with_a_problem_document(
    seeded_url: str, method: str, path: str, name: str
) -> None:
    url = seeded_url + path.format(**PATH_VALUES)
    with httpx.Client(timeout=30) as http:
        for value in HOSTILE_QUERY:
            response = http.request(method, url, params={name: value}, headers=ADMIN)
            assert response.status_code < 500, (value[:20], response.text[:300])
            if response.status_code >= 400:
                assert response.headers["content-type"] == "application/problem+json"

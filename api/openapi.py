"""The OpenAPI document's error responses: what api/errors.py really answers.

Litestar documents a `400` of its own shape (`{status_code, detail, extra}` as
`application/json`) and no other error. Every error here is an RFC 9457 problem document
(`application/problem+json`), whatever the status, so each operation's errors are declared once
as `4XX` and `5XX` problem documents (schemathesis checks answers against this); a status a
handler documents itself keeps its own (`/health` answers 503 with its own body).
"""

from __future__ import annotations

from litestar import Litestar
from litestar.openapi.spec import (
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Reference,
    Schema,
)

from api.errors import PROBLEM_JSON

_TEXT = Schema(type=OpenAPIType.STRING)
PROBLEM_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    required=["type", "title", "status"],
    properties={
        "type": Schema(type=OpenAPIType.STRING, description="a stable slug, e.g. `not-found`"),
        "title": _TEXT,
        "status": Schema(type=OpenAPIType.INTEGER),
        "detail": _TEXT,
        "field": Schema(type=OpenAPIType.STRING, description="the offending input, if any"),
        "errors": Schema(type=OpenAPIType.ARRAY, items=Schema(type=OpenAPIType.OBJECT)),
        "request_id": Schema(type=OpenAPIType.STRING, description="finds the request's log"),
    },
    title="Problem",
)


def _problem(description: str) -> OpenAPIResponse:
    return OpenAPIResponse(
        description=description,
        content={
            PROBLEM_JSON: OpenAPIMediaType(schema=Reference(ref="#/components/schemas/Problem"))
        },
    )


def declare_problem_responses(app: Litestar) -> None:
    """Replace each operation's documented errors with problem documents (`4XX`, `5XX`)."""
    openapi = app.openapi_schema  # built once and kept: what /schema serves
    if openapi.components.schemas is None:  # pragma: no cover - Litestar always makes one
        openapi.components.schemas = {}
    openapi.components.schemas["Problem"] = PROBLEM_SCHEMA
    for item in (openapi.paths or {}).values():
        for method in ("get", "put", "post", "delete", "patch"):
            operation = getattr(item, method, None)
            if operation is None or operation.responses is None:
                continue
            # Litestar's own 400 goes; a status a handler declares itself (/health's 503) stays
            kept = {k: v for k, v in operation.responses.items() if k != "400"}
            operation.responses = kept | {
                "4XX": _problem("A client error (see `type` for which)"),
                "5XX": _problem("The store is unavailable (503), or an internal error"),
            }

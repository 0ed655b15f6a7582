"""The OpenAPI document's error responses: what api/errors.py really answers.

Litestar documents a `400` of its own shape (`{status_code, detail, extra}` as
`application/json`) and no other error. Every error here is an RFC 9457 problem document
(`application/problem+json`), whatever the status, so each operation's errors are declared once
as `4XX` and `5XX` problem documents (schemathesis checks answers against this); a status a
handler documents itself keeps its own (`/health` answers 503 with its own body). Applied when
`/schema` is first rendered, so building the app stays cheap.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request
from litestar.openapi.plugins import JsonRenderPlugin

from api.errors import PROBLEM_JSON
from api.openapi_operations import (
    OPERATIONS,
    PUBLIC,
    REQUEST_EXAMPLES,
    RESPONSE_EXAMPLES,
    example,
)
from ledger.policies.lots import LotTake
from projections.daily import DailyReport

METHODS = ("get", "put", "post", "delete", "patch")
REF_TEMPLATE = "#/components/schemas/{name}"
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Problem",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "description": "a stable slug, e.g. `not-found`"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "field": {"type": "string", "description": "the offending input, if any"},
        "errors": {"type": "array", "items": {"type": "object"}},
        "request_id": {"type": "string", "description": "finds the request's log lines"},
    },
}


def _problem(description: str) -> dict[str, Any]:
    reference = {"$ref": "#/components/schemas/Problem"}
    return {"description": description, "content": {PROBLEM_JSON: {"schema": reference}}}


BEARER = {
    "type": "http",
    "scheme": "bearer",
    "description": "An API key (`Authorization: Bearer <key>`), issued by an admin with `POST "
    "/v1/admin/api-keys`; its role (pos, service, finance, admin) decides what it may call.",
}


def describe_operations(document: dict[str, Any]) -> dict[str, Any]:
    """Each operation's summary, description and examples (`api.openapi_operations`), and the
    bearer security scheme (in place)."""
    components = document.setdefault("components", {})
    components.setdefault("securitySchemes", {})["bearer"] = BEARER
    document["security"] = [{"bearer": []}]
    schemas = components.get("schemas", {})
    for item in document.get("paths", {}).values():
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            words = OPERATIONS.get(operation.get("operationId", ""))
            if words is not None:
                operation["summary"], operation["description"] = words
                if words[1].startswith(PUBLIC):
                    operation["security"] = []
            _examples(operation, schemas)
    return document


def _examples(operation: dict[str, Any], schemas: dict[str, Any]) -> None:
    own = REQUEST_EXAMPLES.get(operation.get("operationId", ""))
    for media in operation.get("requestBody", {}).get("content", {}).values():
        media["example"] = own if own is not None else example(media.get("schema", {}), schemas)
    for status, response in operation.get("responses", {}).items():
        if not status.startswith("2"):
            continue
        for media in response.get("content", {}).values():
            if "example" in media:
                continue
            mine = RESPONSE_EXAMPLES.get(operation.get("operationId", ""))
            media["example"] = mine if mine is not None else example(media["schema"], schemas)


def declare_problem_responses(document: dict[str, Any]) -> dict[str, Any]:
    """Replace each operation's documented errors with problem documents (in place)."""
    document.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    for item in document.get("paths", {}).values():
        for method in METHODS:
            responses = item.get(method, {}).get("responses")
            if responses is None:
                continue
            responses.pop("400", None)  # Litestar's own; a handler's own statuses stay
            responses["4XX"] = _problem("A client error (see `type` for which)")
            responses["5XX"] = _problem("The store is unavailable (503), or an internal error")
    return document


# Structs encoded as JSON arrays (`array_like`), which Litestar documents as objects: their
# schemas as msgspec itself writes them.
ARRAY_LIKE: list[type[Any]] = [LotTake]
SETTLEMENT_CSV_EXAMPLE = (
    "\ufeffperiod,store_id,kind,franchisee,points_issued,fee_due_fen,redemption_cost_fen,"
    "stored_value_cost_fen,difference_fen,late\r\n2026-03,S001,franchise,"
    "Hangzhou Kangjian Pharmacy Co.,182400,91200,60000,5000,26200,false\r\n"
)


DAILY_CSV_EXAMPLE = (
    "\ufeffstore_id,date,sales_count,sales_amount_fen,points_earned,refunds_count,"
    "refunds_amount_fen,points_reversed,redemptions_count,redeemed_points,redemption_cost_fen,"
    "conversions_count,converted_points,credited_fen,stored_value_paid_fen,"
    "stored_value_refunded_fen,receipts\r\nS001,2026-03-10,2,24000,240,0,0,0,0,0,0,0,0,0,0,0,"
    "R1;R2\r\n"
)
CSV_FORMS = {
    "/v1/settlements/{period}": SETTLEMENT_CSV_EXAMPLE,
    "/v1/stores/{store_id}/daily/{date}": DAILY_CSV_EXAMPLE,
}


def _true_shapes(document: dict[str, Any]) -> None:
    """What Litestar cannot say from the handlers' types: array-like structs, and the
    settlement's CSV form (`?format=csv`)."""
    _, defs = msgspec.json.schema_components(ARRAY_LIKE, ref_template=REF_TEMPLATE)
    document.setdefault("components", {}).setdefault("schemas", {}).update(defs)
    for path, csv in CSV_FORMS.items():
        operation = document.get("paths", {}).get(path, {}).get("get")
        if operation is not None:
            content = operation["responses"]["200"].setdefault("content", {})
            content["text/csv; charset=utf-8"] = {"schema": {"type": "string"}, "example": csv}
    _, daily = msgspec.json.schema_components([DailyReport], ref_template=REF_TEMPLATE)
    document["components"]["schemas"].update(daily)
    day = document.get("paths", {}).get("/v1/stores/{store_id}/daily/{date}", {}).get("get")
    if day is not None:
        content = day["responses"]["200"].setdefault("content", {})
        content["application/json"] = {"schema": {"$ref": REF_TEMPLATE.format(name="DailyReport")}}


def served_document(document: dict[str, Any]) -> dict[str, Any]:
    """Litestar's document as `/schema` serves it: problem responses, the true shapes, words
    and examples."""
    _true_shapes(document)
    return describe_operations(declare_problem_responses(document))


class ProblemJsonRenderPlugin(JsonRenderPlugin):
    """Litestar's JSON rendering of the document, with the problem responses declared."""

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        return super().render(request, served_document(openapi_schema))

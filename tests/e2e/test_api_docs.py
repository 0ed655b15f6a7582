"""The API's documentation (issue 17): every operation in /schema has a summary, a
description and examples of its request and answer, and a bearer security scheme; /docs is an
interactive page whose every asset the service serves itself (nothing from a CDN), under a CSP
that allows only this origin."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from api.openapi_operations import RULES_EXAMPLE

pytestmark = pytest.mark.e2e
METHODS = ("get", "put", "post", "delete", "patch")
REPO = Path(__file__).resolve().parents[2]


def _operations(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{method.upper()} {path}", operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def test_every_operation_has_a_summary_a_description_and_examples(client: TestClient[Any]) -> None:
    document = client.get("/schema/openapi.json").json()
    operations = _operations(document)
    assert len(operations) >= 35
    missing = []
    for where, operation in operations:
        summary = operation.get("summary", "")
        if " " not in summary:  # Litestar's default is the function's name ("Read", "PostSale")
            missing.append(f"{where}: summary {summary!r}")
        if len(operation.get("description", "")) < 20:
            missing.append(f"{where}: description")
        bodies = operation.get("requestBody", {}).get("content", {}).values()
        missing.extend(f"{where}: request example" for m in bodies if not m.get("example"))
        answers = [
            media
            for status, response in operation["responses"].items()
            if status.startswith("2")
            for media in response.get("content", {}).values()
        ]
        if not answers or not all(media.get("example") for media in answers):
            missing.append(f"{where}: response example")
    assert missing == []


def test_the_document_declares_the_bearer_scheme_and_the_public_operations(
    client: TestClient[Any],
) -> None:
    document = client.get("/schema/openapi.json").json()
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert document["security"] == [{"bearer": []}]
    health = document["paths"]["/health/live"]["get"]
    assert health["security"] == []
    assert "security" not in document["paths"]["/v1/sales"]["post"]  # the document's own


def test_the_sale_example_is_a_sale_the_service_accepts(
    client: TestClient[Any], chain: Any
) -> None:
    document = client.get("/schema/openapi.json").json()
    body = document["paths"]["/v1/sales"]["post"]["requestBody"]["content"]["application/json"]
    chain.standard()
    assert chain.enrol(body["example"]["member_id"]).status_code == 201
    sale = body["example"] | {"store_id": "S1"}
    answer = client.post("/v1/sales", json=sale, headers=chain.pos("S1"))
    assert answer.status_code == 201, answer.text


def test_the_rules_example_is_the_quick_starts_rule_set() -> None:
    assert json.loads((REPO / "examples" / "rules.json").read_text()) == RULES_EXAMPLE


def test_the_docs_page_and_every_asset_it_names_are_served_here(client: TestClient[Any]) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "<script>" not in page.text  # no inline script: the CSP would refuse it
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert len(assets) >= 5
    for asset in assets:
        assert asset.startswith("/"), f"{asset} is not served by the service"
        answer = client.get(asset)
        assert answer.status_code == 200, asset
        assert len(answer.content) > 100, asset
    init = client.get("/docs/init.js").text
    assert "/schema/openapi.json" in init
    assert "SwaggerUIBundle" in client.get("/docs/assets/swagger-ui-bundle.js").text

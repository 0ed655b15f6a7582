"""/metrics counts and times requests per route template and status (one ASGI layer, issue 18),
on SQLite and PostgreSQL."""

from __future__ import annotations

import re

import pytest

from tests.chain import Chain

pytestmark = pytest.mark.e2e


def _value(metrics: str, name: str, **labels: str) -> float:
    """A sample's value (0 when it is not there), its labels matched whatever their order."""
    for match in re.finditer(rf"^{name}\{{(.*)\}} ([0-9.e+-]+)$", metrics, re.M):
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match.group(2))
    return 0.0


def test_requests_are_counted_by_route_template_and_status(chain: Chain) -> None:
    chain.standard()
    assert chain.enrol("M1").status_code == 201
    before = chain.client.get("/metrics").text
    assert chain.sale("R1").status_code == 201
    assert chain.sale("R2").status_code == 201
    assert chain.client.get("/v1/members/M1", headers=chain.pos()).status_code == 200
    assert chain.client.get("/v1/members/M1").status_code == 401  # refused by a middleware
    after = chain.client.get("/metrics").text

    def grew(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    sales = {"method": "POST", "path": "/v1/sales", "status_code": "201", "app_name": "ledger"}
    assert grew("ledger_requests_total", **sales) == 2
    assert grew("ledger_request_duration_seconds_count", **sales) == 2
    assert grew("ledger_request_duration_seconds_bucket", **sales, le="+Inf") == 2
    member = {"method": "GET", "path": "/v1/members/{member_id}"}
    assert grew("ledger_requests_total", **member, status_code="200") == 1
    assert grew("ledger_requests_total", **member, status_code="401") == 1
    assert _value(after, "ledger_requests_in_progress", method="POST", path="/v1/sales") == 0
    assert 'path="/metrics"' not in after  # the scrape itself is not counted

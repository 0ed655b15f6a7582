"""SPEC 3.1 bounds, on both stores: the findings of issue 14 as a hostile client made them.

Times outside [2000-01-01, 2100-01-01), periods outside 2000-01 … 2099-12, cursors beyond
2^63-1, control characters and over-long text: each a 422 naming the field, never a 500 or a
503, and nothing written; a refused request never makes the next one fail.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.chain import ADMIN, Chain, now_iso, sale_body
from tests.e2e.test_console import sign_in
from tests.polling import caught_up

pytestmark = pytest.mark.e2e

YEAR_ONE = "0001-01-01T00:00:00+14:00"
YEAR_9999 = "9999-12-31T23:59:59-12:00"


def _refused(response: Any, field: str | None = None) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    if field is not None:
        assert response.json()["field"] == field, response.text


@pytest.fixture
def ready(chain: Chain) -> Chain:
    chain.standard()
    assert chain.enrol("M1").status_code == 201
    assert chain.sale("R1").status_code == 201
    return chain


def test_an_enrolment_or_adjustment_in_year_one_is_refused_and_the_views_go_on(
    ready: Chain,
) -> None:
    """Finding 1: such a time answered 201 and froze three views for good."""
    _refused(ready.enrol("M2", occurred_at=YEAR_ONE), "occurred_at")
    _refused(ready.adjust("A1", 10, occurred_at=YEAR_ONE), "occurred_at")
    _refused(ready.enrol("M3", occurred_at="2100-01-01T00:00:00+08:00"), "occurred_at")
    _refused(ready.sale("R9", occurred_at=YEAR_9999), "occurred_at")
    assert ready.enrol("M2", occurred_at="2000-01-01T00:00:00+08:00").status_code == 201
    assert ready.client.get("/v1/members/M3", headers=ready.pos()).status_code == 404


def test_a_birthday_before_1900_or_in_the_future_is_refused(ready: Chain) -> None:
    _refused(ready.enrol("M2", birthday="1899-12-31"), "birthday")
    _refused(ready.enrol("M2", birthday="2999-01-01"), "birthday")
    assert ready.enrol("M2", birthday="1900-01-01").status_code == 201


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/v1/members/M1/history?reference=%00", "reference"),
        ("/v1/members/M1/history?type=%00", "type"),
        ("/v1/members/M1/history?store_id=%00", "store_id"),
        ("/v1/expiring?store_id=%00", "store_id"),
        ("/v1/members/M1/history?cursor=1180591620717411303424", "cursor"),
        ("/v1/members/M1/history?limit=-1", "limit"),
        ("/v1/expiring?cursor=1180591620717411303424", "cursor"),
        (f"/v1/members/M1/history?as_of={YEAR_ONE.replace('+', '%2B')}", "as_of"),
        (f"/v1/members/M1/history?as_of={YEAR_9999}", "as_of"),
        (f"/v1/members/M1/balance?as_of={YEAR_ONE.replace('+', '%2B')}", "as_of"),
        (f"/v1/liability?as_of={YEAR_ONE.replace('+', '%2B')}", "as_of"),
        (f"/v1/liability?as_of={YEAR_9999}", "as_of"),
        ("/v1/analytics/0000-01", "period"),
        ("/v1/analytics/9999-12", "period"),
        ("/v1/settlements/0000-01", "period"),
        ("/v1/settlements/9999-12?format=csv", "period"),
        ("/v1/stores/S1/cards?period=0000-01", "period"),
    ],
)
def test_bad_query_text_times_periods_and_cursors_are_422_and_never_trip_the_gate(
    ready: Chain, path: str, field: str
) -> None:
    """Findings 2 and 4: NUL in query text was a 503 that marked the store down; year 1, year
    9999, periods 0000-01 / 9999-12 and cursor=2^70 were 500s."""
    _refused(ready.client.get(path, headers=ADMIN), field)
    assert not ready.client.app.state.store_gate.down  # type: ignore[attr-defined]
    assert ready.sale("R2", lines=None).status_code == 201  # the next request is served


def test_closing_month_0000_01_is_refused(ready: Chain) -> None:
    _refused(ready.client.post("/v1/settlements/0000-01/close", headers=ADMIN), "period")


def test_nul_in_a_franchisee_or_a_name_is_422_and_the_settlement_view_goes_on(
    ready: Chain,
) -> None:
    """Finding 2: a NUL in a franchisee name froze the settlement view."""
    body = {"name": "Store X", "kind": "franchise", "franchisee": "F\u0000X"}
    _refused(ready.client.put("/v1/stores/SX", json=body, headers=ADMIN), "franchisee")
    _refused(ready.enrol("M2", name="A\u0000B"), "name")
    _refused(ready.enrol("M2", name="A\nB"), "name")
    lines = [{"sku": "A\u0001", "category": "otc", "amount_fen": 100, "quantity": 1}]
    _refused(
        ready.client.post("/v1/sales", json=sale_body("R3", lines=lines), headers=ready.pos()),
        "lines[0].sku",
    )
    # a free-text reason may hold a newline, never another control character
    assert ready.adjust("A1", 5, reason="line one\nline two").status_code == 201
    _refused(ready.adjust("A2", 5, reason="bell\u0007"), "reason")


def test_a_60000_character_revocation_reason_is_refused(ready: Chain) -> None:
    """Finding 8: it was stored."""
    key = ready.client.post(
        "/v1/admin/api-keys", json={"role": "service", "holder": "x"}, headers=ADMIN
    ).json()
    response = ready.client.delete(
        f"/v1/admin/api-keys/{key['key_id']}", params={"reason": "x" * 60_000}, headers=ADMIN
    )
    _refused(response, "reason")
    assert ready.client.get("/v1/members/M1", headers={"Authorization": f"Bearer {key['key']}"})


def test_the_consoles_cursor_as_of_and_period_fields_are_refused_not_500(
    client: TestClient,  # type: ignore[type-arg]
    ready: Chain,
) -> None:
    sign_in(client, ADMIN)
    for path in (
        "/console/members?card=M1&cursor=1180591620717411303424",
        "/console/members?card=M1&as_of=0001-01-01",
        "/console/finance?period=0000-01",
        "/console/finance?as_of=9999-12-31",
        "/console/finance/settlement.csv?period=9999-12",
        "/console/operations?period=0000-01",
    ):
        response = client.get(path)
        assert 400 <= response.status_code < 500, (path, response.status_code)


def test_a_write_dated_more_than_five_minutes_ahead_is_still_refused(ready: Chain) -> None:
    _refused(ready.sale("R4", occurred_at=now_iso(timedelta(minutes=6))), "occurred_at")


def test_a_value_the_database_refuses_is_422_and_never_marks_the_store_down(
    ready: Chain, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Behind the edge's own check (switched off here): PostgreSQL refuses NUL in text; that is
    the request's fault (422), and the store gate stays open for everybody else."""
    monkeypatch.setattr("api.validation._check_query", lambda request, zone, today: None)
    state = ready.client.app.state  # type: ignore[attr-defined]
    response = ready.client.get("/v1/members/M1/history?reference=%00", headers=ADMIN)
    on_postgres = state.ledger.settings.database_url.startswith("postgres")
    assert response.status_code == (422 if on_postgres else 200), response.text
    assert not state.store_gate.down
    assert ready.sale("R5").status_code == 201


def test_the_settlement_csv_neutralises_formulas_and_has_a_bom_and_true_false(
    ready: Chain,
) -> None:
    """Finding 8: a franchisee `=HYPERLINK(...)` was written as-is into the CSV (SPEC 2.7)."""
    body = {"name": "Store 3", "kind": "franchise", "franchisee": '=HYPERLINK("http://x","y")'}
    assert ready.client.put("/v1/stores/S3", json=body, headers=ADMIN).status_code == 201
    assert ready.sale("R6", store_id="S3").status_code == 201
    caught_up(ready.client)
    period = datetime.now(UTC).strftime("%Y-%m")
    text = ready.client.get(f"/v1/settlements/{period}?format=csv", headers=ADMIN).text
    assert text.startswith("\ufeffperiod,")
    rows = list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))
    row = next(r for r in rows if r["store_id"] == "S3")
    assert row["franchisee"] == '\'=HYPERLINK("http://x","y")'
    assert {r["late"] for r in rows} == {"false"}

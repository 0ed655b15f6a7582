"""POST /v1/sales over HTTP, on SQLite and PostgreSQL: the POS contract of SPEC 3."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.chain import ADMIN, Chain, now_iso, sale_body

pytestmark = pytest.mark.e2e


@pytest.fixture
def pos_chain(chain: Chain) -> Chain:
    chain.standard()
    assert chain.enrol("M1").status_code == 201
    return chain


def test_a_sale_returns_points_breakdown_balance_and_tier(pos_chain: Chain) -> None:
    lines = [
        {"sku": "T1", "category": "tcm", "amount_fen": 5000, "quantity": 2},
        {"sku": "P1", "category": "otc", "amount_fen": 1999, "quantity": 1, "no_points": True},
    ]
    response = pos_chain.sale("R1", lines=lines, occurred_at="2026-03-10T10:00:00+08:00")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["points_earned"] == 100
    assert [(b["line_no"], b["basis"], b["multiplier"]) for b in body["breakdown"]] == [
        (1, "category", "2"),
        (2, "no_points", "0"),
    ]
    assert body["balance"] == {
        "points": 100,
        "pending_points": 0,
        "stored_value_fen": 0,
        "held_points": 0,
    }
    assert body["tier"] == "normal" and body["tier_changed"] is False
    assert body["rule_version"] == 1
    assert pos_chain.member()["points"] == 100


def test_crossing_a_threshold_upgrades_in_the_same_response(pos_chain: Chain) -> None:
    big = [{"sku": "A", "category": "otc", "amount_fen": 200_000}]
    body = pos_chain.sale("R1", lines=big).json()
    assert body["tier_changed"] is True and body["tier"] == "silver"
    member = pos_chain.member()
    assert member["tier"] == "silver" and member["discount"] == "0.95"
    assert member["next_tier"] == {
        "code": "gold",
        "min_spend_fen": 1_000_000,
        "spend_needed_fen": 800_000,
    }


def test_a_retry_returns_the_original_result_with_200_and_changes_nothing(pos_chain: Chain) -> None:
    body = sale_body("R1")
    headers = pos_chain.pos()
    first = pos_chain.client.post("/v1/sales", json=body, headers=headers)
    second = pos_chain.client.post("/v1/sales", json=body, headers=headers)
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json() == first.json()
    assert pos_chain.member()["points"] == 100


def test_the_same_receipt_number_with_another_body_is_409(pos_chain: Chain) -> None:
    assert pos_chain.sale("R1").status_code == 201
    other = pos_chain.sale("R1", lines=[{"sku": "B", "amount_fen": 1}])
    assert other.status_code == 409
    assert other.json()["type"] == "idempotency-conflict"
    assert other.headers["content-type"].startswith("application/problem+json")


def test_receipt_numbers_are_per_store(pos_chain: Chain) -> None:
    assert pos_chain.sale("R1", store_id="S1").status_code == 201
    assert pos_chain.sale("R1", store_id="S2").status_code == 201
    assert pos_chain.member()["points"] == 200


def test_unknown_member_is_404(pos_chain: Chain) -> None:
    response = pos_chain.sale("R1", member_id="NOPE")
    assert response.status_code == 404
    assert response.json()["type"] == "member-not-found"
    assert response.json()["field"] == "member_id"


def test_a_sale_before_any_rule_set_is_409(pos_chain: Chain) -> None:
    response = pos_chain.sale("R1", occurred_at="2019-06-01T10:00:00+08:00")
    assert response.status_code == 409
    assert response.json()["type"] == "no-rule-set-in-force"


def test_a_sale_far_in_the_future_is_422(pos_chain: Chain) -> None:
    response = pos_chain.sale("R1", occurred_at=now_iso(timedelta(minutes=10)))
    assert response.status_code == 422
    assert response.json()["field"] == "occurred_at"
    assert pos_chain.sale("R2", occurred_at=now_iso(timedelta(minutes=4))).status_code == 201


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"lines": [{"sku": "A", "amount_fen": -5}]}, "lines[0].amount_fen"),
        ({"lines": [{"sku": "A", "amount_fen": 12.5}]}, "lines[0].amount_fen"),
        ({"lines": [{"sku": "A", "amount_fen": "100"}]}, "lines[0].amount_fen"),
        ({"lines": []}, "lines"),
        ({"lines": [{"sku": "A", "amount_fen": 1}] * 201}, "lines"),
        ({"occurred_at": "2026-03-10T10:00:00"}, "occurred_at"),
        ({"occurred_at": "yesterday"}, "occurred_at"),
        ({"receipt_no": ""}, "receipt_no"),
        ({"receipt_no": "x" * 65}, "receipt_no"),
        ({"extra": 1}, "extra"),
    ],
)
def test_invalid_sales_are_422_naming_the_field_and_write_nothing(
    pos_chain: Chain, change: dict[str, Any], field: str
) -> None:
    body = sale_body("R1") | change
    response = pos_chain.client.post("/v1/sales", json=body, headers=pos_chain.pos())
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["type"] == "invalid-input"
    assert field in problem["detail"]
    assert pos_chain.member()["points"] == 0


def test_malformed_json_is_400(pos_chain: Chain) -> None:
    response = pos_chain.client.post(
        "/v1/sales",
        content=b'{"store_id": "S1",',
        headers=pos_chain.pos() | {"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["type"] == "malformed-request"


def test_an_oversized_body_is_413(pos_chain: Chain) -> None:
    body = sale_body("R1") | {"padding": "x" * 400_000}
    response = pos_chain.client.post("/v1/sales", json=body, headers=pos_chain.pos())
    assert response.status_code == 413
    assert response.json()["type"] == "body-too-large"


def test_sales_need_a_key_of_the_store(pos_chain: Chain) -> None:
    body = sale_body("R1", store_id="S2")
    assert pos_chain.client.post("/v1/sales", json=body).status_code == 401
    wrong = {"Authorization": "Bearer not-a-key"}
    assert pos_chain.client.post("/v1/sales", json=body, headers=wrong).status_code == 401
    other_store = pos_chain.client.post("/v1/sales", json=body, headers=pos_chain.pos("S1"))
    assert other_store.status_code == 403
    assert other_store.json()["type"] == "forbidden"
    service = pos_chain.key("service")
    assert pos_chain.client.post("/v1/sales", json=body, headers=service).status_code == 403


def test_admin_posting_for_an_unknown_store_is_404(pos_chain: Chain) -> None:
    response = pos_chain.client.post(
        "/v1/sales", json=sale_body("R1", store_id="S9"), headers=ADMIN
    )
    assert response.status_code == 404
    assert response.json()["type"] == "store-not-found"

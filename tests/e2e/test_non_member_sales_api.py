"""Sales without a member (`member_id: null`) over HTTP, on SQLite and PostgreSQL: recorded once
per (store, receipt), earning nothing, refundable line by line (for analytics, SPEC 2.9)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.chain import Chain, now_iso, sale_body

pytestmark = pytest.mark.e2e

LINES = [
    {"sku": "A", "category": "otc", "amount_fen": 3000},
    {"sku": "B", "category": "tcm", "amount_fen": 1550, "no_points": True},
]


AT = now_iso(timedelta(hours=-2))
AFTER = now_iso(timedelta(hours=-1))


@pytest.fixture
def pos_chain(chain: Chain) -> Chain:
    chain.standard()
    return chain


def refund(chain: Chain, receipt_no: str, refund_no: str, lines: list[tuple[int, int]]) -> Any:
    body = {
        "refund_no": refund_no,
        "occurred_at": AFTER,
        "lines": [{"line_no": n, "amount_fen": fen} for n, fen in lines],
    }
    return chain.client.post(
        f"/v1/sales/S1/{receipt_no}/refunds", json=body, headers=chain.pos("S1")
    )


def test_a_sale_without_a_member_earns_nothing_and_shows_no_balance(pos_chain: Chain) -> None:
    response = pos_chain.sale("N1", member_id=None, lines=LINES)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["member_id"] is None and body["balance"] is None
    assert body["points_earned"] == 0
    assert body["amount_fen"] == 4550
    assert (body["store_id"], body["receipt_no"]) == ("S1", "N1")


def test_a_retry_replays_and_another_body_or_a_member_sale_conflicts(pos_chain: Chain) -> None:
    body = sale_body("N1", member_id=None, lines=LINES)
    first = pos_chain.client.post("/v1/sales", json=body, headers=pos_chain.pos())
    again = pos_chain.client.post("/v1/sales", json=body, headers=pos_chain.pos())
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    other = pos_chain.client.post(
        "/v1/sales", json=body | {"lines": LINES[:1]}, headers=pos_chain.pos()
    )
    assert other.status_code == 409 and other.json()["type"].endswith("idempotency-conflict")
    assert pos_chain.enrol("M1").status_code == 201
    as_member = pos_chain.sale("N1", member_id="M1", lines=LINES, occurred_at=body["occurred_at"])
    assert as_member.status_code == 409
    assert pos_chain.member()["points"] == 0


def test_a_member_sale_receipt_cannot_be_reposted_without_the_member(pos_chain: Chain) -> None:
    assert pos_chain.enrol("M1").status_code == 201
    at = now_iso()
    assert pos_chain.sale("R1", occurred_at=at).status_code == 201
    assert pos_chain.sale("R1", member_id=None, occurred_at=at).status_code == 409


def test_the_member_field_must_be_stated(pos_chain: Chain) -> None:
    body = sale_body("N1")
    del body["member_id"]
    response = pos_chain.client.post("/v1/sales", json=body, headers=pos_chain.pos())
    assert response.status_code == 422


def test_another_stores_key_is_refused(pos_chain: Chain) -> None:
    body = sale_body("N1", member_id=None, store_id="S2")
    response = pos_chain.client.post("/v1/sales", json=body, headers=pos_chain.pos("S1"))
    assert response.status_code == 403


def test_refunds_of_a_non_member_sale_are_recorded_and_bounded(pos_chain: Chain) -> None:
    assert pos_chain.sale("N1", member_id=None, lines=LINES, occurred_at=AT).status_code == 201
    first = refund(pos_chain, "N1", "F1", [(1, 1000)])
    assert first.status_code == 201, first.text
    body = first.json()
    assert (body["refunded_fen"], body["points_reversed"], body["balance"]) == (1000, 0, None)
    assert refund(pos_chain, "N1", "F1", [(1, 1000)]).json() == body  # a retry replays
    assert refund(pos_chain, "N1", "F1", [(1, 999)]).status_code == 409
    beyond = refund(pos_chain, "N1", "F2", [(1, 2001)])
    assert beyond.status_code == 409 and beyond.json()["type"].endswith("refund-exceeds-sale")
    assert refund(pos_chain, "N1", "F2", [(1, 2000), (2, 1550)]).status_code == 201
    assert refund(pos_chain, "N1", "F3", [(3, 1)]).status_code == 422
    assert refund(pos_chain, "NOPE", "F1", [(1, 1)]).status_code == 404


def test_the_schema_documents_both_receipts(pos_chain: Chain) -> None:
    schema = pos_chain.client.get("/schema/openapi.json").json()
    names = set(schema["components"]["schemas"])
    assert {"NonMemberSaleReceipt", "SaleReceipt", "NonMemberRefundReceipt"} <= names

"""Refunds over HTTP on both stores (SPEC 2.4): partial, repeated, exact, debt, pending points."""

from __future__ import annotations

from typing import Any

import pytest

from tests.chain import STEADY, Chain, now_iso

pytestmark = pytest.mark.e2e

LINES = [
    {"sku": "T1", "category": "tcm", "amount_fen": 10_000},  # 2×: 200 points
    {"sku": "A1", "category": "otc", "amount_fen": 5_000},  # 50 points
]


@pytest.fixture
def sold(chain: Chain) -> Chain:
    chain.standard()
    chain.enrol("M1")
    assert chain.sale("R1", lines=LINES).json()["points_earned"] == 250
    return chain


def test_partial_and_repeated_refunds_reverse_exactly_what_was_earned(sold: Chain) -> None:
    first = sold.refund("R1", "F1", [(1, 5_000)])
    assert first.status_code == 201, first.text
    assert first.json()["points_reversed"] == 100
    assert sold.refund("R1", "F2", [(1, 5_000)]).json()["points_reversed"] == 100
    last = sold.refund("R1", "F3", [(2, 5_000)]).json()
    assert last["points_reversed"] == 50
    assert last["balance"]["points"] == 0 == sold.member()["points"]
    assert sold.member()["tier_spend_fen"] == 0


def test_reversal_is_cumulative_so_pieces_add_up_to_the_whole(chain: Chain) -> None:
    chain.standard()
    chain.enrol("M1")
    lines = [{"sku": "A", "category": "otc", "amount_fen": 999}]  # 9 points (floor of 9.99)
    assert chain.sale("R1", lines=lines).json()["points_earned"] == 9
    reversed_ = [
        chain.refund("R1", f"F{n}", [(1, 333)]).json()["points_reversed"] for n in range(3)
    ]
    assert reversed_ == [3, 3, 3]  # floor(3.33)=3, floor(6.66)−3=3, 9−6=3
    assert chain.member()["points"] == 0


def test_a_refund_beyond_the_sale_is_409_and_changes_nothing(sold: Chain) -> None:
    assert sold.refund("R1", "F1", [(2, 4_000)]).status_code == 201
    too_much = sold.refund("R1", "F2", [(2, 1_001)])
    assert too_much.status_code == 409
    assert too_much.json()["type"] == "refund-exceeds-sale"
    assert too_much.json()["field"] == "lines[0].amount_fen"
    assert sold.member()["points"] == 210


@pytest.mark.parametrize(
    ("lines", "status", "field"),
    [
        ([{"line_no": 3, "amount_fen": 100}], 422, "lines[0].line_no"),
        ([{"line_no": 1, "amount_fen": 0}], 422, "lines[0].amount_fen"),
        ([{"line_no": 1, "amount_fen": -5}], 422, "lines[0].amount_fen"),
        ([{"line_no": 0, "amount_fen": 5}], 422, "lines[0].line_no"),
        ([], 422, "lines"),
    ],
)
def test_bad_refund_lines_are_422_naming_the_field(
    sold: Chain, lines: list[dict[str, Any]], status: int, field: str
) -> None:
    body = {"refund_no": "F1", "occurred_at": now_iso(), "lines": lines}
    response = sold.client.post("/v1/sales/S1/R1/refunds", json=body, headers=sold.pos())
    assert response.status_code == status, response.text
    assert response.json()["field"] == field
    assert sold.member()["points"] == 250


def test_refund_of_an_unknown_sale_is_404(sold: Chain) -> None:
    response = sold.refund("NOPE", "F1", [(1, 100)])
    assert response.status_code == 404 and response.json()["type"] == "sale-not-found"


def test_a_retry_replays_and_another_body_is_409(sold: Chain) -> None:
    body = {
        "refund_no": "F1",
        "occurred_at": now_iso(),
        "lines": [{"line_no": 1, "amount_fen": 100}],
    }
    first = sold.client.post("/v1/sales/S1/R1/refunds", json=body, headers=sold.pos())
    again = sold.client.post("/v1/sales/S1/R1/refunds", json=body, headers=sold.pos())
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    other = sold.refund("R1", "F1", [(1, 200)])
    assert other.status_code == 409 and other.json()["type"] == "idempotency-conflict"


def test_refunding_spent_points_leaves_a_debt_that_later_accruals_pay(sold: Chain) -> None:
    assert sold.redeem("X1", "voucher", 100).status_code == 201  # 150 left
    refund = sold.refund("R1", "F1", [(1, 10_000), (2, 5_000)]).json()
    assert refund["points_reversed"] == 250
    assert refund["debt_added"] == 100 and refund["debt_points"] == 100
    assert sold.member()["points"] == -100
    sold.sale("R2", lines=[{"sku": "A", "category": "otc", "amount_fen": 15_000}])
    assert sold.member()["points"] == 50


def test_refunds_reduce_tier_spend_but_never_downgrade(chain: Chain) -> None:
    chain.standard()
    chain.enrol("M1")
    big = [{"sku": "A", "category": "otc", "amount_fen": 250_000}]
    assert chain.sale("R1", lines=big).json()["tier"] == "silver"
    chain.refund("R1", "F1", [(1, 100_000)])
    member = chain.member()
    assert member["tier_spend_fen"] == 150_000
    assert member["tier"] == "silver"


def test_a_refund_in_the_return_window_takes_the_sales_pending_points(chain: Chain) -> None:
    locked = STEADY | {"accrual": STEADY["accrual"] | {"lock_days": 7}}
    chain.standard(locked)
    chain.enrol("M1")
    chain.sale(
        "R0",
        lines=[{"sku": "A", "category": "otc", "amount_fen": 5_000}],
        occurred_at="2026-01-10T10:00:00+08:00",
    )  # 50 available points, long unlocked
    sale = chain.sale("R1", lines=[{"sku": "A", "category": "otc", "amount_fen": 10_000}]).json()
    assert sale["balance"] == {
        "points": 50,
        "pending_points": 100,
        "stored_value_fen": 0,
        "held_points": 0,
    }
    # pending points cannot be spent
    assert chain.redeem("X1", "cash_offset", 100).status_code == 409
    refund = chain.refund("R1", "F1", [(1, 4_000)]).json()
    assert refund["points_reversed"] == 40
    assert refund["balance"]["pending_points"] == 60 and refund["balance"]["points"] == 50

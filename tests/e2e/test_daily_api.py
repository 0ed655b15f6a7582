"""`GET /v1/stores/{store_id}/daily/{date}` over HTTP on both stores (SPEC 3): a store's day by
the chain-time day of each event's `occurred_at` (a sale at 23:59 and one at 00:01 chain time
fall on two days although both are on one UTC day), full line amounts, JSON and CSV."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import TestClient

from tests.chain import Chain, sale_body
from tests.polling import caught_up

pytestmark = pytest.mark.e2e


def _day(chain: Chain, day: str, headers: dict[str, str], **params: str) -> Any:
    return chain.client.get(f"/v1/stores/S1/daily/{day}", params=params, headers=headers)


def test_a_store_day_is_its_chain_time_day(
    chain: Chain,
    client: TestClient,  # type: ignore[type-arg]
) -> None:
    chain.standard()
    assert chain.enrol("M1").status_code == 201
    lines = [
        {"sku": "A", "category": "otc", "amount_fen": 100_000, "insured_fen": 40_000},
        {"sku": "B", "category": "otc", "amount_fen": 20_000},
    ]
    late = sale_body("R1", lines=lines, occurred_at="2026-03-10T23:59:00+08:00")  # 15:59 UTC
    early = sale_body("R2", occurred_at="2026-03-11T00:01:00+08:00")  # 16:01 UTC, 10 March
    walk_in = sale_body("R3", member_id=None, occurred_at="2026-03-11T10:00:00+08:00")
    for body in (late, early, walk_in):
        assert chain.client.post("/v1/sales", json=body, headers=chain.pos()).status_code == 201
    at = "2026-03-11T11:00:00+08:00"
    refund = {"refund_no": "F1", "occurred_at": at, "lines": [{"line_no": 2, "amount_fen": 20_000}]}
    assert (
        chain.client.post("/v1/sales/S1/R1/refunds", json=refund, headers=chain.pos()).status_code
        == 201
    )
    assert chain.redeem("X1", "voucher", 100, occurred_at=at).status_code == 201
    assert chain.redeem("X2", "voucher", 100, occurred_at=at).status_code == 201
    assert chain.redemption_action("X2", "void").status_code == 201  # voided today (not 11 March)
    convert = chain.stored_value("conversions", conversion_no="C1", points=200, occurred_at=at)
    assert convert.status_code == 201
    assert (
        chain.stored_value("payments", payment_no="P1", amount_fen=150, occurred_at=at).status_code
        == 201
    )
    paid_back: dict[str, Any] = {
        "refund_no": "G1",
        "payment_no": "P1",
        "amount_fen": 50,
        "occurred_at": at,
    }
    assert chain.stored_value("refunds", **paid_back).status_code == 201
    caught_up(client)

    first = _day(chain, "2026-03-10", chain.finance())
    assert first.status_code == 200, first.text
    assert first.json() == {
        "store_id": "S1",
        "date": "2026-03-10",
        "sales": {"count": 1, "amount_fen": 120_000, "points_earned": 800},  # full amounts
        "refunds": {"count": 0, "amount_fen": 0, "points_reversed": 0},
        "redemptions": {"count": 0, "points": 0, "cost_fen": 0},
        "conversions": {"count": 0, "points": 0, "credited_fen": 0},
        "stored_value": {"paid_fen": 0, "refunded_fen": 0},
        "receipts": ["R1"],
    }
    second = _day(chain, "2026-03-11", chain.pos()).json()
    assert second["sales"] == {"count": 2, "amount_fen": 20_000, "points_earned": 100}
    assert second["receipts"] == ["R2", "R3"]
    assert second["refunds"] == {"count": 1, "amount_fen": 20_000, "points_reversed": 200}
    assert second["redemptions"] == {"count": 2, "points": 200, "cost_fen": 400}
    assert second["conversions"] == {"count": 1, "points": 200, "credited_fen": 200}
    assert second["stored_value"] == {"paid_fen": 150, "refunded_fen": 50}

    text = _day(chain, "2026-03-10", chain.finance(), format="csv")
    assert text.headers["content-type"].startswith("text/csv")
    header, row = text.text.removeprefix("\ufeff").strip().split("\r\n")
    assert header.startswith("store_id,date,sales_count,sales_amount_fen,points_earned,")
    assert row == "S1,2026-03-10,1,120000,800,0,0,0,0,0,0,0,0,0,0,0,R1"

    assert _day(chain, "2026-03-10", chain.pos("S2")).status_code == 403  # another store's key
    assert _day(chain, "2026-03-10", chain.service()).status_code == 403
    assert _day(chain, "2026-02-30", chain.finance()).status_code == 422
    assert _day(chain, "2026-3-10", chain.finance()).status_code == 422
    unknown = chain.client.get("/v1/stores/S9/daily/2026-03-10", headers=chain.finance())
    assert unknown.status_code == 404

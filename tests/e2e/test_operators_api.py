"""Who did it (SPEC 3), over HTTP on both stores: keys name their holder, POS writes may name
their cashier, and the history's `operator` is `{key_id, holder, cashier}`."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import TestClient

from tests.chain import ADMIN, Chain, now_iso, sale_body
from tests.polling import caught_up

pytestmark = pytest.mark.e2e


def _key(chain: Chain, body: dict[str, Any]) -> Any:
    return chain.client.post("/v1/admin/api-keys", json=body, headers=ADMIN)


def test_a_new_key_names_its_holder(chain: Chain) -> None:
    chain.standard()
    missing = _key(chain, {"role": "service"})
    assert missing.status_code == 422, missing.text
    assert missing.json()["field"] == "holder"
    too_long = _key(chain, {"role": "service", "holder": "x" * 101})
    assert too_long.status_code == 422
    issued = _key(chain, {"role": "pos", "store_id": "S1", "holder": "S1 till 2"})
    assert issued.status_code == 201, issued.text
    assert issued.json()["holder"] == "S1 till 2"
    listed = {k["key_id"]: k for k in chain.client.get("/v1/admin/api-keys", headers=ADMIN).json()}
    assert listed[issued.json()["key_id"]]["holder"] == "S1 till 2"
    rotated = chain.client.post(
        f"/v1/admin/api-keys/{issued.json()['key_id']}/rotate", headers=ADMIN
    )
    assert rotated.json()["holder"] == "S1 till 2"


def test_a_cashier_is_bounded_like_other_text(chain: Chain) -> None:
    chain.standard()
    assert chain.enrol("M1").status_code == 201
    for bad in ("x" * 33, "a\x07b", ""):
        refused = chain.client.post(
            "/v1/sales", json=sale_body("R1") | {"cashier": bad}, headers=chain.pos()
        )
        assert refused.status_code == 422, bad
    assert chain.client.get("/v1/members/M1", headers=chain.pos()).json()["points"] == 0


def test_the_history_names_the_holder_and_the_cashier(
    chain: Chain,
    client: TestClient,  # type: ignore[type-arg]
) -> None:
    chain.standard()
    assert chain.enrol("M1").status_code == 201
    lines = [{"sku": "A", "category": "otc", "amount_fen": 100_000}]
    body = sale_body("R1", lines=lines) | {"cashier": "张丽"}
    pos = chain.pos()
    assert chain.client.post("/v1/sales", json=body, headers=pos).status_code == 201
    assert chain.client.post("/v1/sales", json=body, headers=pos).status_code == 200  # a retry
    other = chain.client.post("/v1/sales", json=body | {"cashier": "王强"}, headers=pos)
    assert other.status_code == 409  # another body under the same receipt
    plain = sale_body("R2")
    assert chain.client.post("/v1/sales", json=plain, headers=pos).status_code == 201
    assert chain.client.post("/v1/sales", json=plain, headers=pos).status_code == 200
    refund = {
        "refund_no": "F1",
        "occurred_at": now_iso(),
        "lines": [{"line_no": 1, "amount_fen": 1000}],
        "cashier": "王强",
    }
    assert chain.client.post("/v1/sales/S1/R1/refunds", json=refund, headers=pos).status_code == 201
    assert chain.redeem("X1", "voucher", 100, cashier="张丽").status_code == 201
    assert (
        chain.stored_value(
            "conversions", conversion_no="C1", points=100, cashier="李娜"
        ).status_code
        == 201
    )
    assert (
        chain.stored_value("payments", payment_no="P1", amount_fen=50, cashier="李娜").status_code
        == 201
    )
    assert chain.adjust("A1", 10).status_code == 201
    caught_up(client)
    items = chain.client.get("/v1/members/M1/history", headers=chain.service()).json()["items"]
    by_ref = {(i["type"], i["reference"]): i["operator"] for i in items}
    assert by_ref[("PointsAccrued", "R1")]["holder"] == "till S1"
    assert by_ref[("PointsAccrued", "R1")]["cashier"] == "张丽"
    assert by_ref[("PointsAccrued", "R2")]["cashier"] is None
    assert by_ref[("PointsReversed", "F1")]["cashier"] == "王强"
    assert by_ref[("PointsRedeemed", "X1")]["cashier"] == "张丽"
    assert by_ref[("PointsConverted", "C1")]["cashier"] == "李娜"
    assert by_ref[("StoredValueCredited", "C1")]["cashier"] == "李娜"
    assert by_ref[("StoredValueDebited", "P1")]["cashier"] == "李娜"
    assert by_ref[("PointsAdjusted", "A1")] == {
        "key_id": by_ref[("PointsAdjusted", "A1")]["key_id"],
        "holder": "service desk",
        "cashier": None,
    }
    assert all(set(op) == {"key_id", "holder", "cashier"} for op in by_ref.values())

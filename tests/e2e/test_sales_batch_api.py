"""`POST /v1/sales/batch` over HTTP on both stores (SPEC 3): an offline store's upload, each sale
answered in order exactly as if posted alone (201, 200 replay, 409, 422 with its problem
document), never all-or-nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.chain import Chain, sale_body

pytestmark = pytest.mark.e2e


def otc(fen: int) -> list[dict[str, Any]]:
    return [{"sku": "A", "category": "otc", "amount_fen": fen}]


def _batch(chain: Chain, sales: list[Any]) -> list[dict[str, Any]]:
    response = chain.client.post("/v1/sales/batch", json={"sales": sales}, headers=chain.pos())
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    assert len(results) == len(sales)
    return results


def _alone(chain: Chain, sale: Any) -> tuple[int, Any]:
    response = chain.client.post("/v1/sales", json=sale, headers=chain.pos())
    body = response.json()
    if isinstance(body, dict):
        body.pop("request_id", None)
    return response.status_code, body


def test_a_batch_answers_each_sale_as_if_posted_alone(chain: Chain) -> None:
    chain.standard()
    assert chain.enrol("M1").status_code == 201
    assert chain.enrol("M2").status_code == 201
    sales: list[Any] = [
        sale_body("B1", lines=otc(10_000)),
        sale_body("B2", lines=otc(5_000)),  # the same member again: sees B1
        sale_body("B3", lines=[{"sku": "A", "amount_fen": -1}]),
        sale_body("B4", member_id="NOBODY"),
        sale_body("B5", store_id="S2"),
        sale_body("B6\u0007"),
        {"receipt_no": "B7"},
        sale_body("B8", member_id="M2", lines=otc(30_000)),
        sale_body("B9", member_id=None),
    ]
    results = _batch(chain, sales)
    assert [r["status"] for r in results] == [201, 201, 422, 404, 403, 422, 422, 201, 201]
    assert results[0]["body"]["balance"]["points"] == 100
    assert results[1]["body"]["balance"]["points"] == 150
    assert results[2]["body"]["field"] == "lines[0].amount_fen"
    assert results[3]["body"]["type"] == "member-not-found"
    assert results[7]["body"]["points_earned"] == 300
    assert chain.member("M1")["points"] == 150
    for n in (2, 3, 4, 5, 6):  # refused alone just as in the batch (and nothing was written)
        status, body = _alone(chain, sales[n])
        assert (status, body) == (results[n]["status"], results[n]["body"]), n

    b10 = sale_body("B10", lines=otc(2_000))
    again = [
        sales[0],  # a replay
        sale_body("B2", lines=otc(7_000)),  # the number reused with another body
        b10,
        b10,  # twice in one upload: the second is a replay
    ]
    results = _batch(chain, again)
    assert [r["status"] for r in results] == [200, 409, 201, 200]
    assert results[0]["body"] == _batch(chain, [sales[0]])[0]["body"]
    assert results[1]["body"]["type"] == "idempotency-conflict"
    assert chain.member("M1")["points"] == 170


def test_a_batch_is_bounded(chain: Chain) -> None:
    chain.standard()
    too_many = [sale_body(f"R{n}") for n in range(501)]
    response = chain.client.post("/v1/sales/batch", json={"sales": too_many}, headers=chain.pos())
    assert response.status_code == 422
    empty = chain.client.post("/v1/sales/batch", json={"sales": []}, headers=chain.pos())
    assert empty.status_code == 422
    service = chain.client.post("/v1/sales/batch", json={"sales": []}, headers=chain.service())
    assert service.status_code == 403

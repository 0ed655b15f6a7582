"""Finding members, lost cards and duplicates (SPEC 2.8) over HTTP on both stores: the phone
lookup (every form of a number, nothing once erased), replace-card (the new card reads the same
account, the old one answers 409 `card-replaced` to writes, its sales still refund) and merge
(lots keep their own expiry, pending lots, debt and stored value move, the ID number is released,
settlement and the liability do not move)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.chain import ADMIN, STEADY, Chain, now_iso, sale_body
from tests.polling import caught_up

pytestmark = pytest.mark.e2e

ID_NUMBER = "11010519491231002X"
# Points pending for 7 days; each lot expires 12 months after its sale (no calendar clearance,
# so that the lots' expiries differ whatever the date).
LOCKED: dict[str, Any] = STEADY | {
    "accrual": STEADY["accrual"] | {"lock_days": 7},
    "expiry": {"rolling_months": 12},
}


def otc(fen: int) -> list[dict[str, Any]]:
    return [{"sku": "A", "category": "otc", "amount_fen": fen}]


def _sale(chain: Chain, receipt: str, card: str, fen: int, days_ago: int = 0) -> Any:
    body = sale_body(
        receipt, member_id=card, lines=otc(fen), occurred_at=now_iso(-timedelta(days=days_ago))
    )
    return chain.client.post("/v1/sales", json=body, headers=chain.pos())


def _post(chain: Chain, card: str, action: str, body: dict[str, Any]) -> Any:
    return chain.client.post(f"/v1/members/{card}/{action}", json=body, headers=chain.service())


def _found(chain: Chain, phone: str) -> list[str]:
    response = chain.client.get("/v1/members", params={"phone": phone}, headers=chain.pos())
    assert response.status_code == 200, response.text
    return [item["member_id"] for item in response.json()["items"]]


def _history(chain: Chain, card: str) -> list[dict[str, Any]]:
    response = chain.client.get(f"/v1/members/{card}/history", headers=chain.service())
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def _lots(chain: Chain, card: str) -> list[tuple[str, str | None, int]]:
    response = chain.client.get(f"/v1/members/{card}/balance", headers=chain.service())
    assert response.status_code == 200, response.text
    return sorted(
        (lot["reference"], lot["expires_at"], lot["remaining"])
        for lot in response.json()["lots"]
        if lot["remaining"]
    )


def test_a_member_is_found_by_any_form_of_their_phone_until_erased(chain: Chain) -> None:
    chain.standard()
    assert chain.enrol("M1", phone="+86 138-0013-8000").status_code == 201
    assert chain.enrol("M2", phone="13900000000").status_code == 201
    for form in ("13800138000", "+8613800138000", "008613800138000", "138 0013 8000"):
        assert _found(chain, form) == ["M1"], form
    assert _found(chain, "13700000000") == []
    assert chain.client.get("/v1/members", params={"phone": "x1"}, headers=ADMIN).status_code == 422
    finance = chain.client.get("/v1/members", params={"phone": "139"}, headers=chain.finance())
    assert finance.status_code == 403
    erased = chain.client.post("/v1/members/M1/erase", json={"reason": "asked"}, headers=ADMIN)
    assert erased.status_code == 201
    assert _found(chain, "13800138000") == []
    assert _found(chain, "13900000000") == ["M2"]


def test_a_replaced_card_reads_the_account_and_refuses_writes(
    chain: Chain,
    client: TestClient,  # type: ignore[type-arg]
) -> None:
    chain.standard()
    assert chain.enrol("M1", phone="13800138000").status_code == 201
    assert _sale(chain, "R1", "M1", 100_000).status_code == 201
    before = chain.member("M1")
    replace = {"new_member_id": "N1", "store_id": "S1", "reason": "lost at the station"}
    first = _post(chain, "M1", "replace-card", replace)
    assert first.status_code == 201, first.text
    assert first.json()["member_id"] == "N1"
    assert _post(chain, "M1", "replace-card", replace).status_code == 200  # idempotent
    other = _post(chain, "M1", "replace-card", replace | {"new_member_id": "N2"})
    assert (other.status_code, other.json()["type"]) == (409, "card-replaced")
    new = chain.member("N1")
    assert {k: new[k] for k in ("points", "tier", "stored_value_fen", "expiring")} == {
        k: before[k] for k in ("points", "tier", "stored_value_fen", "expiring")
    }
    old = chain.member("M1")  # never 404: the account, naming its card now
    assert (old["member_id"], old["replaced_by"], old["points"]) == ("N1", "N1", before["points"])
    refused = _sale(chain, "R2", "M1", 1000)
    assert refused.status_code == 409
    assert (refused.json()["type"], refused.json()["current_member_id"]) == ("card-replaced", "N1")
    bonus = _post(
        chain,
        "M1",
        "adjustments",
        {"adjustment_no": "A1", "points": 5, "reason": "x", "ticket": "T"},
    )
    assert bonus.json()["type"] == "card-replaced"
    assert _sale(chain, "R3", "N1", 20_000).status_code == 201
    refund = chain.refund("R1", "F1", [(1, 100_000)])  # a sale made on the old card
    assert refund.status_code == 201, refund.text
    assert refund.json()["points_reversed"] == 1000
    assert chain.member("N1")["points"] == 200
    assert chain.enrol("N1").json()["type"] == "member-exists"
    assert _found(chain, "13800138000") == ["N1"]
    caught_up(client)
    assert _history(chain, "M1") == _history(chain, "N1")
    assert "CardReplaced" in [i["type"] for i in _history(chain, "M1")]


def test_a_merge_moves_lots_with_their_expiry_and_leaves_settlement_alone(
    chain: Chain,
    client: TestClient,  # type: ignore[type-arg]
) -> None:
    chain.standard(LOCKED)
    assert chain.enrol("M1", phone="13800138000").status_code == 201
    assert chain.enrol("D1", phone="13900000000", id_number=ID_NUMBER).status_code == 201
    assert _sale(chain, "R1", "M1", 50_000, days_ago=40).status_code == 201
    assert _sale(chain, "R2", "D1", 30_000, days_ago=330).status_code == 201  # available
    assert _sale(chain, "R3", "D1", 20_000).status_code == 201  # pending (7 days)
    convert = chain.stored_value("conversions", member_id="D1", conversion_no="C1", points=100)
    assert convert.status_code == 201
    lots_before = sorted(_lots(chain, "D1") + _lots(chain, "M1"))
    assert len({expires for _, expires, _ in lots_before}) == 3
    period = now_iso()[:7]
    caught_up(client)
    settlement = chain.client.get(f"/v1/settlements/{period}", headers=chain.finance()).json()
    liability = chain.client.get("/v1/liability", headers=chain.finance()).json()

    body = {"from_member_id": "D1", "reason": "one person, two cards"}
    merged = _post(chain, "M1", "merge", body)
    assert merged.status_code == 201, merged.text
    assert merged.json()["lots_moved"] == 2
    assert _post(chain, "M1", "merge", body).status_code == 200  # idempotent
    member = chain.member("M1")
    assert (member["points"], member["pending_points"]) == (500 + 300 - 100, 200)
    assert member["stored_value_fen"] == 100
    assert _lots(chain, "M1") == lots_before  # each lot keeps its own expiry
    refused = _sale(chain, "R4", "D1", 1000)
    assert (refused.status_code, refused.json()["type"]) == (409, "member-merged")
    assert refused.json()["current_member_id"] == "M1"
    assert chain.client.get("/v1/members/D1", headers=chain.pos()).status_code == 409
    assert _found(chain, "13900000000") == ["M1"]
    assert chain.enrol("M5", id_number=ID_NUMBER).status_code == 201  # the ID number released
    caught_up(client)
    assert chain.client.get(f"/v1/settlements/{period}", headers=chain.finance()).json() == (
        settlement
    )
    after = chain.client.get("/v1/liability", headers=chain.finance()).json()
    assert {k: after[k] for k in ("points", "value_fen", "stored_value_fen")} == {
        k: liability[k] for k in ("points", "value_fen", "stored_value_fen")
    }
    assert after["members"] == liability["members"] - 1
    for card in ("M1", "D1"):
        assert "MemberMerged" in [i["type"] for i in _history(chain, card)], card

    refund = chain.refund("R3", "F1", [(1, 20_000)])  # the duplicate's sale: its own lot first
    assert refund.status_code == 201, refund.text
    assert chain.member("M1")["pending_points"] == 0

"""The audit trail over HTTP on both stores: `GET /v1/members/{id}/history` explains every
change (SPEC 3's history entry), and `GET .../balance?as_of=` answers from events, exactly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.chain import Chain, now_iso
from tests.polling import caught_up

pytestmark = pytest.mark.e2e

ENTRY_FIELDS = {
    "seq",
    "type",
    "occurred_at",
    "recorded_at",
    "store_id",
    "reference",
    "points_delta",
    "balance_after",
    "rule_version",
    "explanation",
    "breakdown",
    "operator",
}


def otc(fen: int) -> list[dict[str, Any]]:
    return [{"sku": "A", "category": "otc", "amount_fen": fen}]


@pytest.fixture
def story(chain: Chain, client: TestClient) -> Chain:  # type: ignore[type-arg]
    """M1: enrolled; R1 1,500 points at S1; R2 400 at S2; 500 redeemed at S2; refund of half
    of R2; a credit of 40 by customer service (spend stays below silver: no tier change)."""
    chain.standard()
    assert chain.enrol("M1").status_code == 201
    assert chain.sale("R1", lines=otc(150_000)).status_code == 201
    assert chain.sale("R2", store_id="S2", lines=otc(40_000)).status_code == 201
    assert chain.redeem("X1", "cash_offset", 500, store_id="S2").status_code == 201
    assert chain.refund("R2", "F1", [(1, 20_000)], store_id="S2").status_code == 201
    assert chain.adjust("A1", 40, reason="missed points", ticket="T-9").status_code == 201
    caught_up(client)
    return chain


def history(chain: Chain, member: str = "M1", **params: Any) -> Any:
    response = chain.client.get(
        f"/v1/members/{member}/history", params=params, headers=chain.service()
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_every_change_is_explained_newest_first(story: Chain) -> None:
    items = history(story)["items"]
    assert [i["type"] for i in items] == [
        "PointsAdjusted",
        "PointsReversed",
        "PointsRedeemed",
        "PointsAccrued",
        "PointsAccrued",
        "MemberEnrolled",
    ]
    assert all(set(i) >= ENTRY_FIELDS for i in items)
    assert [i["points_delta"] for i in items] == [40, -200, -500, 400, 1500, 0]
    assert [i["balance_after"] for i in items] == [1240, 1200, 1400, 1900, 1500, 0]
    assert story.member()["points"] == items[0]["balance_after"]
    adjusted, reversed_, redeemed, accrued = items[0], items[1], items[2], items[4]
    assert accrued["rule_version"] == 1 and accrued["reference"] == "R1"
    assert accrued["breakdown"][0]["category"] == "otc"
    assert "1500 points" in accrued["explanation"]
    assert redeemed["store_id"] == "S2" and "lot" in redeemed["explanation"]
    assert reversed_["reference"] == "F1"
    assert adjusted["operator"] and "missed points" in adjusted["explanation"]
    assert "T-9" in adjusted["explanation"]


def test_pages_and_filters(story: Chain) -> None:
    first = history(story, limit=4)
    assert len(first["items"]) == 4 and first["next_cursor"] == first["items"][-1]["seq"]
    rest = history(story, limit=4, cursor=first["next_cursor"])
    assert [i["type"] for i in rest["items"]] == ["PointsAccrued", "MemberEnrolled"]
    assert rest["next_cursor"] is None
    assert [i["reference"] for i in history(story, store_id="S2")["items"]] == ["F1", "X1", "R2"]
    assert [i["points_delta"] for i in history(story, type="PointsAccrued")["items"]] == [
        400,
        1500,
    ]
    by_receipt = history(story, reference="R1")["items"]
    assert len(by_receipt) == 1 and by_receipt[0]["points_delta"] == 1500
    long_ago = history(story, as_of="2020-01-01T00:00:00+08:00")["items"]
    assert long_ago == []


def test_history_refusals(story: Chain) -> None:
    client, service = story.client, story.service()
    assert client.get("/v1/members/NOPE/history", headers=service).status_code == 404
    for params in ({"limit": 0}, {"limit": 10_000}, {"as_of": "2026-01-01T00:00:00"}):
        response = client.get("/v1/members/M1/history", params=params, headers=service)
        assert response.status_code in (400, 422), (params, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    assert client.get("/v1/members/M1/history", headers=story.pos()).status_code == 403


def test_balance_as_of_a_past_moment(chain: Chain) -> None:
    chain.standard()
    assert chain.enrol("M1").status_code == 201
    week_ago = datetime.now(UTC) - timedelta(days=7)
    yesterday = datetime.now(UTC) - timedelta(days=1)
    assert chain.sale("R1", lines=otc(100_000), occurred_at=week_ago.isoformat()).status_code == 201
    told = datetime.now(UTC)
    # An offline store uploads yesterday's sale only now.
    assert chain.sale("R2", lines=otc(50_000), occurred_at=yesterday.isoformat()).status_code == 201
    assert chain.redeem("X1", "cash_offset", 300).status_code == 201

    def balance(**params: str) -> Any:
        response = chain.client.get(
            "/v1/members/M1/balance", params=params, headers=chain.service()
        )
        assert response.status_code == 200, response.text
        return response.json()

    before = (week_ago - timedelta(seconds=1)).isoformat()
    assert balance(as_of=before)["points"] == 0
    assert balance(as_of=(week_ago + timedelta(days=1)).isoformat())["points"] == 1000
    assert balance(as_of=(yesterday + timedelta(hours=1)).isoformat())["points"] == 1500
    assert balance()["points"] == 1200 == chain.member()["points"]
    # What the member was told before the late upload: R2 was not in the ledger yet.
    then = balance(as_of=now_iso(), recorded_as_of=told.isoformat())
    assert then["points"] == 1000 and then["events_counted"] == 2
    lots = balance()["lots"]
    assert [(lot["reference"], lot["remaining"]) for lot in lots] == [("R1", 700), ("R2", 500)]
    response = chain.client.get(
        "/v1/members/M1/balance", params={"as_of": "2026-01-01T00:00"}, headers=chain.service()
    )
    assert response.status_code in (400, 422)

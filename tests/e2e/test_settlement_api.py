"""Franchise settlement, liability, expiry reminders and card stock over HTTP on both stores
(SPEC 2.7, 2.8), against hand-computed figures."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from litestar.testing import TestClient

from tests.chain import ADMIN, STEADY, Chain
from tests.polling import caught_up

pytestmark = pytest.mark.e2e

CHAIN_ZONE = ZoneInfo("Asia/Shanghai")


def month(instant: datetime) -> str:
    return instant.astimezone(CHAIN_ZONE).strftime("%Y-%m")


def next_month(period: str) -> str:
    year, mon = (int(p) for p in period.split("-"))
    return f"{year + mon // 12:04d}-{mon % 12 + 1:02d}"


def otc(fen: int) -> list[dict[str, Any]]:
    return [{"sku": "A", "category": "otc", "amount_fen": fen}]


def settlement(chain: Chain, period: str, **params: str) -> Any:
    response = chain.client.get(f"/v1/settlements/{period}", params=params, headers=chain.finance())
    assert response.status_code == 200, response.text
    return response.json() if not params else response


def row(report: dict[str, Any], store_id: str, late: bool = False) -> dict[str, Any]:
    found = [r for r in report["rows"] if r["store_id"] == store_id and r["late"] == late]
    assert len(found) == 1, report["rows"]
    result: dict[str, Any] = found[0]
    return result


@pytest.fixture
def past() -> datetime:
    """An instant in a month that has ended (so it can be closed)."""
    return datetime.now(UTC) - timedelta(days=62)


def test_the_spec_example_and_cross_store_redemptions(
    chain: Chain,
    client: TestClient,  # type: ignore[type-arg]
    past: datetime,
) -> None:
    chain.standard()
    assert chain.enrol("M1").status_code == 201
    # 50,000 points issued at franchise store S1 at 3 fen per point: a fee of 1,500 yuan.
    sale = chain.sale("R1", lines=otc(5_000_000), occurred_at=past.isoformat())
    assert sale.status_code == 201 and sale.json()["points_earned"] == 50_000
    # Earned at S1, redeemed at direct store S2: headquarters owes S2 the cost.
    redeemed = chain.redeem("X1", "voucher", 500, store_id="S2", occurred_at=past.isoformat())
    assert redeemed.status_code == 201 and redeemed.json()["cost_fen"] == 1500
    caught_up(client)
    report = settlement(chain, month(past))
    s1, s2 = row(report, "S1"), row(report, "S2")
    assert (s1["kind"], s1["franchisee"]) == ("franchise", "F-S1")
    assert (s1["points_issued"], s1["fee_due_fen"], s1["redemption_cost_fen"]) == (
        50_000,
        150_000,
        0,
    )
    assert s1["difference_fen"] == 150_000
    assert (s2["kind"], s2["points_issued"], s2["redemption_cost_fen"]) == ("direct", 0, 1500)
    assert s2["difference_fen"] == -1500
    assert report["totals"] == {
        "points_issued": 50_000,
        "fee_due_fen": 150_000,
        "redemption_cost_fen": 1500,
        "stored_value_cost_fen": 0,
        "difference_fen": 148_500,
        "hq_bonus_points": 0,
    }
    assert report["closed"] is False

    # A void and a refund now are settled in the month they happen, not back in the sale's.
    assert chain.redemption_action("X1", "void", store_id="S2").status_code == 201
    assert chain.refund("R1", "F1", [(1, 1_000_000)]).status_code == 201
    caught_up(client)
    now_report = settlement(chain, month(datetime.now(UTC)))
    assert row(now_report, "S2")["redemption_cost_fen"] == -1500
    assert (row(now_report, "S1")["points_issued"], row(now_report, "S1")["fee_due_fen"]) == (
        -10_000,
        -30_000,
    )
    assert settlement(chain, month(past)) == report  # the past month is unchanged

    csv_response = settlement(chain, month(past), format="csv")
    assert csv_response.headers["content-type"].startswith("text/csv")
    lines = list(csv.DictReader(io.StringIO(csv_response.text)))
    assert sum(int(r["fee_due_fen"]) for r in lines) == report["totals"]["fee_due_fen"]
    assert sum(int(r["difference_fen"]) for r in lines) == report["totals"]["difference_fen"]
    assert {r["store_id"] for r in lines} == {"S1", "S2"}


def test_closing_a_month_and_late_arrivals(
    chain: Chain,
    client: TestClient,  # type: ignore[type-arg]
    past: datetime,
) -> None:
    chain.standard()
    assert chain.enrol("M1").status_code == 201
    assert chain.sale("R1", lines=otc(100_000), occurred_at=past.isoformat()).status_code == 201
    period, finance = month(past), chain.finance()
    first = chain.client.post(f"/v1/settlements/{period}/close", headers=finance)
    assert first.status_code == 201, first.text
    assert len(first.json()["digest"]) == 64 and first.json()["events_digested"] == 1
    again = chain.client.post(f"/v1/settlements/{period}/close", headers=finance)
    assert again.status_code == 200 and again.json() == first.json()
    current = month(datetime.now(UTC))
    not_yet = chain.client.post(f"/v1/settlements/{current}/close", headers=finance)
    assert not_yet.status_code == 409 and not_yet.json()["type"].endswith("period-not-ended")
    bad = chain.client.post("/v1/settlements/2026-13/close", headers=finance)
    assert bad.status_code == 422
    assert (
        chain.client.post(f"/v1/settlements/{period}/close", headers=chain.pos()).status_code == 403
    )

    # An offline store uploads a sale of the closed month: it lands in the next open month, late.
    late_sale = chain.sale(
        "R2", lines=otc(20_000), occurred_at=(past + timedelta(minutes=5)).isoformat()
    )
    assert late_sale.status_code == 201
    caught_up(client)
    closed = settlement(chain, period)
    assert closed["closed"] is True and row(closed, "S1")["points_issued"] == 1000
    late = row(settlement(chain, next_month(period)), "S1", late=True)
    assert (late["points_issued"], late["fee_due_fen"]) == (200, 600)


def test_liability_and_expiry_reminders(
    chain: Chain,
    client: TestClient,  # type: ignore[type-arg]
    past: datetime,
) -> None:
    chain.standard()
    for member in ("M1", "M2", "M3"):
        assert chain.enrol(member).status_code == 201
    assert chain.sale("R1", lines=otc(100_000), occurred_at=past.isoformat()).status_code == 201
    assert chain.sale("R2", member_id="M2", lines=otc(30_000)).status_code == 201
    caught_up(client)
    finance = chain.finance()
    now = chain.client.get("/v1/liability", headers=finance).json()
    assert (now["points"], now["members"], now["value_fen"]) == (1300, 2, 3900)
    assert now["cost_per_point_fen"] == "3" and now["rule_version"] == 1
    before = chain.client.get(
        "/v1/liability",
        params={"as_of": (past - timedelta(seconds=1)).isoformat()},
        headers=finance,
    ).json()
    assert (before["points"], before["value_fen"]) == (0, 0)

    service = chain.service()
    soon = chain.client.get("/v1/expiring", params={"within_days": 1}, headers=service).json()
    assert soon["items"] == []
    year = chain.client.get("/v1/expiring", params={"within_days": 366}, headers=service).json()
    assert [(i["member_id"], i["points"]) for i in year["items"]] == [("M1", 1000), ("M2", 300)]
    assert year["next_cursor"] is None
    page = chain.client.get(
        "/v1/expiring", params={"within_days": 366, "limit": 1}, headers=service
    ).json()
    assert [i["member_id"] for i in page["items"]] == ["M1"] and page["next_cursor"] == 1
    bad = chain.client.get("/v1/expiring", params={"within_days": 0}, headers=service)
    assert bad.status_code == 422
    assert chain.client.get("/v1/liability", headers=service).status_code == 403

    caught_up(client)  # the keys issued above are events too
    metrics = chain.client.get("/metrics").text
    assert 'ledger_projection_lag_events{projection="history"} 0.0' in metrics


def test_card_dispatch_and_stock(chain: Chain, client: TestClient) -> None:  # type: ignore[type-arg]
    chain.standard()

    def dispatch(store_id: str, first: str, last: str) -> Any:
        return chain.client.post(
            f"/v1/stores/{store_id}/cards", json={"from": first, "to": last}, headers=ADMIN
        )

    assert dispatch("S1", "C0001", "C0100").status_code == 201
    assert dispatch("S1", "C0001", "C0100").status_code == 200
    overlap = dispatch("S2", "C0050", "C0150")
    assert overlap.status_code == 409 and overlap.json()["type"].endswith(
        "cards-already-dispatched"
    )
    for first, last in (("C0100", "C0001"), ("C01", "D99"), ("C0001", "C9999999")):
        assert dispatch("S2", first, last).status_code == 422
    assert dispatch("S9", "C2001", "C2002").status_code == 404
    assert dispatch("S2", "C0101", "C0120").status_code == 201

    assert chain.enrol("C0005").status_code == 201  # from S1's stock, at S1
    assert chain.enrol("C0110", store_id="S1").status_code == 201  # S2's card, enrolled at S1
    assert chain.enrol("Z1", store_id="S2").status_code == 201  # never dispatched
    caught_up(client)

    def stock(store_id: str) -> Any:
        response = chain.client.get(
            f"/v1/stores/{store_id}/cards",
            params={"period": month(datetime.now(UTC))},
            headers=chain.service(),
        )
        assert response.status_code == 200, response.text
        return response.json()

    s1, s2 = stock("S1"), stock("S2")
    assert (s1["dispatched"], s1["on_hand"], s1["activated"], s1["activated_in_period"]) == (
        100,
        99,
        2,
        2,
    )
    assert (s2["dispatched"], s2["on_hand"], s2["activated"]) == (20, 19, 1)
    own = chain.client.get("/v1/stores/S2/cards", headers=chain.pos("S1"))
    assert own.status_code == 403

    strict = dict(STEADY) | {"cards": {"require_dispatch": True}}
    strict["effective_from"] = "2021-01-01T00:00:00+08:00"
    assert chain.publish(strict).status_code == 201
    refused = chain.enrol("Q1")
    assert refused.status_code == 409 and refused.json()["type"].endswith("card-not-dispatched")
    assert chain.enrol("C0006").status_code == 201

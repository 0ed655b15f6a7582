"""GET /v1/analytics/{period} over HTTP on both stores (SPEC 2.9), against a small chain whose
every figure is computed by hand below: June 2026, stores S1–S4, members A–G, non-member sales,
a refund-heavy store (S4) and a card used 20 times in the month (D at S2)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from litestar.testing import TestClient

from api.app import create_app
from ledger.settings import Settings
from tests.chain import Chain
from tests.polling import caught_up

pytestmark = pytest.mark.e2e

PERIOD = "2026-06"
ENROLMENTS = [  # member, home store, enrolled (chain time +08:00)
    ("A", "S1", "2025-09-01T10:00:00"),
    ("B", "S1", "2025-09-01T11:00:00"),
    ("C", "S1", "2026-06-03T09:00:00"),  # new in June
    ("D", "S2", "2026-01-05T10:00:00"),
    ("E", "S2", "2025-05-01T10:00:00"),
    ("F", "S1", "2026-07-01T00:10:00"),  # after June ends (chain time): not a member yet
    ("G", "S3", "2024-01-01T10:00:00"),
]
MEMBER_SALES = [  # member, store, occurred_at, fen
    ("A", "S1", "2025-11-10T10:00:00", 3000),
    ("A", "S1", "2025-12-10T10:00:00", 3000),
    ("A", "S1", "2026-06-05T10:00:00", 8000),
    ("A", "S1", "2026-06-30T23:30:00", 500),  # 15:30 UTC: still June in chain time
    ("B", "S1", "2025-11-15T10:00:00", 2000),
    ("B", "S1", "2026-01-15T10:00:00", 2000),
    ("C", "S1", "2026-06-03T09:30:00", 12000),
    ("C", "S2", "2026-06-20T10:00:00", 6000),  # away from home: S2's sale, C's purchase
    ("D", "S2", "2026-02-01T10:00:00", 1000),
    *[("D", "S2", f"2026-06-{day:02d}T12:00:00", 1000) for day in range(1, 21)],
    ("E", "S2", "2025-10-10T10:00:00", 5000),
    ("E", "S2", "2026-03-01T10:00:00", 5000),
    ("E", "S2", "2026-04-05T10:00:00", 5000),
    ("F", "S1", "2026-07-01T00:20:00", 9000),  # July
    ("G", "S3", "2025-06-15T10:00:00", 7000),  # before the 12 RFM months
]
NON_MEMBER_SALES = [  # store, occurred_at, fen
    ("S1", "2026-06-07T10:00:00", 5000),
    ("S1", "2026-06-08T10:00:00", 3000),
    ("S2", "2026-06-09T10:00:00", 2000),
    ("S3", "2026-06-10T10:00:00", 10000),
    ("S4", "2026-06-11T10:00:00", 4000),
    ("S4", "2026-06-12T10:00:00", 6000),
    ("S4", "2026-07-02T10:00:00", 6000),  # July
]


def lines(fen: int) -> list[dict[str, Any]]:
    return [{"sku": "A", "category": "otc", "amount_fen": fen}]


@pytest.fixture
def june(chain: Chain, client: TestClient) -> Chain:  # type: ignore[type-arg]
    chain.standard()
    chain.store("S3", "franchise")
    chain.store("S4", "direct")
    for member, store, at in ENROLMENTS:
        assert chain.enrol(member, store, occurred_at=at + "+08:00").status_code == 201
    receipts: dict[tuple[str, str], str] = {}
    for n, (member, store, at, fen) in enumerate(MEMBER_SALES):
        receipts[member, at] = f"R{n}"
        response = chain.sale(
            f"R{n}", member_id=member, store_id=store, lines=lines(fen), occurred_at=at + "+08:00"
        )
        assert response.status_code == 201, response.text
    for n, (store, at, fen) in enumerate(NON_MEMBER_SALES):
        response = chain.sale(
            f"N{n}", member_id=None, store_id=store, lines=lines(fen), occurred_at=at + "+08:00"
        )
        assert response.status_code == 201, response.text
    refunds = [  # store, receipt, occurred_at, fen: S1 a little, S4 half its June sales
        ("S1", receipts["A", "2026-06-05T10:00:00"], "2026-06-06T10:00:00", 100),
        ("S4", "N5", "2026-06-15T10:00:00", 5000),
        ("S2", receipts["D", "2026-06-01T12:00:00"], "2026-07-03T10:00:00", 1000),  # July
    ]
    for n, (store, receipt_no, at, fen) in enumerate(refunds):
        body = {
            "refund_no": f"F{n}",
            "occurred_at": at + "+08:00",
            "lines": [{"line_no": 1, "amount_fen": fen}],
        }
        response = client.post(
            f"/v1/sales/{store}/{receipt_no}/refunds", json=body, headers=chain.pos(store)
        )
        assert response.status_code == 201, response.text
    chain.finance(), chain.service()  # their keys are events too: issued before catching up
    caught_up(client)
    return chain


def analytics(chain: Chain, store_id: str | None = None) -> dict[str, Any]:
    params = {"store_id": store_id} if store_id else {}
    response = chain.client.get(f"/v1/analytics/{PERIOD}", params=params, headers=chain.finance())
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def segments(report: dict[str, Any]) -> dict[str, int]:
    return {s["segment"]: s["members"] for s in report["rfm"]["segments"] if s["members"]}


def test_the_chain_in_june(june: Chain) -> None:
    report = analytics(june)
    assert (report["period"], report["store_id"], report["lag_events"]) == (PERIOD, None, 0)
    assert report["windows"] == {
        "period_from": "2026-06-01",
        "end": "2026-07-01",
        "active_from": "2026-04-01",
        "churn_base_from": "2025-10-04",
        "recent_from": "2026-04-02",
        "rfm_from": "2025-07-01",
    }
    # A B C D E G enrolled by the end (F the minute after); C in June. Active since April: A C
    # D E, with 2 + 2 + 20 + 1 purchases then. Churn base (≥ 2 purchases 2025-10-04..2026-04-01):
    # A, B, E; B bought nothing since 2026-04-02.
    assert report["members"] == {
        "total_members": 6,
        "new_members": 1,
        "active_members": 4,
        "active_ratio": "0.6667",
        "active_purchases": 25,
        "average_purchase_frequency": "6.2500",
        "churn_base_members": 3,
        "churned_members": 1,
        "churn_rate": "0.3333",
    }
    # June: members 24 receipts (S1 3, S2 21) for 46,500 fen; non-members 6 for 30,000 fen.
    assert report["sales"] == {
        "member_sales": 24,
        "member_sales_fen": 46500,
        "non_member_sales": 6,
        "non_member_sales_fen": 30000,
        "sales": 30,
        "sales_fen": 76500,
        "member_sales_share": "0.6078",
        "member_traffic_share": "0.8000",
        "member_average_ticket_fen": 1937,
        "average_ticket_fen": 2550,
        "refunds": 2,
        "refunded_fen": 5100,
        "refund_rate": "0.0667",
    }
    stores = {s["store_id"]: s["sales"] for s in report["stores"]}
    assert sorted(stores) == ["S1", "S2", "S3", "S4"]
    s1, s2, s3, s4 = (stores[s] for s in ("S1", "S2", "S3", "S4"))
    assert (s1["sales"], s1["sales_fen"], s1["member_sales_share"]) == (5, 28500, "0.7193")
    assert (s1["member_average_ticket_fen"], s1["average_ticket_fen"]) == (6833, 5700)
    assert (s1["refunds"], s1["refunded_fen"], s1["refund_rate"]) == (1, 100, "0.0035")
    assert (s2["sales"], s2["member_traffic_share"], s2["member_average_ticket_fen"]) == (
        22,
        "0.9545",
        1238,
    )
    assert (s2["refunds"], s2["refund_rate"]) == (0, "0.0000")
    assert (s3["member_sales"], s3["member_average_ticket_fen"], s3["member_sales_share"]) == (
        0,
        None,
        "0.0000",
    )
    assert (s4["sales_fen"], s4["refunded_fen"], s4["refund_rate"]) == (10000, 5000, "0.5000")
    # RFM over 2025-07-01..2026-06-30: A B C D E, 32 purchases and 72,500 fen, means 6.4 and
    # 14,500. A (4, 14,500, recent), C (2, 18,000, recent), E (3, 15,000, 2026-04-05): only
    # M high; D (21, 21,000): all high; B: all low.
    assert report["rfm"]["scored_members"] == 5
    assert (report["rfm"]["mean_purchases"], report["rfm"]["mean_amount_fen"]) == (
        "6.4000",
        "14500.0000",
    )
    assert segments(report) == {
        "important_value": 1,
        "important_development": 3,
        "general_winback": 1,
    }
    assert len(report["rfm"]["segments"]) == 8
    # D: 20 purchases at S2 in June; S4 refunded half its sales, the median store 1/570.
    assert report["anomalies"] == {
        "frequent_cards": [
            {"member_id": "D", "store_id": "S2", "purchases": 20, "amount_fen": 20000}
        ],
        "refund_outliers": [
            {
                "store_id": "S4",
                "refund_rate": "0.5000",
                "chain_median_refund_rate": "0.0018",
                "refunded_fen": 5000,
                "sales_fen": 10000,
            }
        ],
    }


def test_one_store_counts_its_own_members_and_its_own_sales(june: Chain) -> None:
    s1 = analytics(june, "S1")
    assert s1["store_id"] == "S1"
    # A B C are S1's members (C's purchase at S2 counts for her); B churned.
    assert s1["members"] == {
        "total_members": 3,
        "new_members": 1,
        "active_members": 2,
        "active_ratio": "0.6667",
        "active_purchases": 4,
        "average_purchase_frequency": "2.0000",
        "churn_base_members": 2,
        "churned_members": 1,
        "churn_rate": "0.5000",
    }
    assert (s1["sales"]["sales"], s1["sales"]["member_sales_fen"]) == (5, 20500)
    assert [s["store_id"] for s in s1["stores"]] == ["S1"]
    assert segments(s1) == {"important_value": 1, "important_development": 1, "general_winback": 1}
    assert s1["anomalies"] == {"frequent_cards": [], "refund_outliers": []}

    s2 = analytics(june, "S2")
    members = s2["members"]
    assert (members["total_members"], members["active_members"], members["active_ratio"]) == (
        2,
        2,
        "1.0000",
    )
    assert (members["average_purchase_frequency"], members["churn_rate"]) == ("10.5000", "0.0000")
    assert [c["member_id"] for c in s2["anomalies"]["frequent_cards"]] == ["D"]

    s4 = analytics(june, "S4")
    assert s4["members"]["total_members"] == 0 and s4["members"]["active_ratio"] is None
    assert [o["store_id"] for o in s4["anomalies"]["refund_outliers"]] == ["S4"]


def test_a_month_without_anything_has_zeros_and_no_ratios(june: Chain) -> None:
    report = analytics(june)
    empty = june.client.get("/v1/analytics/2019-01", headers=june.service()).json()
    assert empty["members"]["total_members"] == 0 and empty["members"]["churn_rate"] is None
    assert empty["sales"]["sales"] == 0 and empty["sales"]["member_sales_share"] is None
    assert empty["stores"] == [] and empty["rfm"]["scored_members"] == 0
    assert report["view_position"] == empty["view_position"] > 0


def test_bad_periods_unknown_stores_and_roles(june: Chain) -> None:
    get = june.client.get
    for period in ("2026-13", "2026-6", "june"):
        response = get(f"/v1/analytics/{period}", headers=june.finance())
        assert response.status_code == 422, period
    unknown = get(f"/v1/analytics/{PERIOD}", params={"store_id": "S9"}, headers=june.finance())
    assert unknown.status_code == 404
    assert get(f"/v1/analytics/{PERIOD}", headers=june.pos("S1")).status_code == 403
    assert get(f"/v1/analytics/{PERIOD}", headers=june.service()).status_code == 200


def test_a_lagging_view_answers_with_what_it_has_and_says_how_far_behind(
    settings: Settings,
) -> None:
    unfollowed = msgspec.structs.replace(settings, run_projections=False)
    with TestClient(create_app(unfollowed)) as client:
        chain = Chain(client).standard()
        finance = chain.finance()
        sale = chain.sale("N1", member_id=None, occurred_at="2026-06-01T10:00:00+08:00")
        assert sale.status_code == 201
        response = client.get(f"/v1/analytics/{PERIOD}", headers=finance)
        assert response.status_code == 200, response.text
        report = response.json()
        assert report["sales"]["sales"] == 0 and report["view_position"] == 0
        assert report["lag_events"] == client.app.state.ledger.core.log_position() > 0

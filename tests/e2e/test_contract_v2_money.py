"""Contract version 2, money (SPEC 2.3, 2.7) over HTTP on both stores: the rows of issue 15's
table about cash offsets, the catalogue, stored value and the liability, with the table's
numbers."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.chain import STEADY, Chain
from tests.polling import caught_up

pytestmark = pytest.mark.e2e

CATALOGUE = [
    {"sku": "GIFT-TOWEL", "kind": "gift", "points": 100, "cost_fen": 1200},
    {
        "sku": "VC-100",
        "kind": "exchange",
        "points": 200,
        "cash_price_fen": 500,
        "cost_fen": 800,
        "drug_class": "otc_b",
        "stores": ["S1"],
    },
]
WITH_CATALOGUE = STEADY | {"redemption": STEADY["redemption"] | {"catalogue": CATALOGUE}}


def otc(fen: int) -> list[dict[str, Any]]:
    return [{"sku": "A", "category": "otc", "amount_fen": fen}]


def redeem(chain: Chain, number: str, body: dict[str, Any], store_id: str = "S1") -> Any:
    base = {
        "store_id": store_id,
        "redemption_no": number,
        "member_id": "M1",
        "occurred_at": datetime.now(UTC).isoformat(),
    }
    return chain.client.post("/v1/redemptions", json=base | body, headers=chain.pos(store_id))


def month_now() -> str:
    return (datetime.now(UTC) + timedelta(hours=8)).strftime("%Y-%m")


def row(report: dict[str, Any], store_id: str) -> dict[str, Any]:
    (found,) = [r for r in report["rows"] if r["store_id"] == store_id and not r["late"]]
    result: dict[str, Any] = found
    return result


@pytest.fixture
def rich(chain: Chain) -> Chain:
    """Member M1 with 3,000 points, a catalogue in the rules."""
    chain.standard(WITH_CATALOGUE)
    assert chain.enrol("M1").status_code == 201
    assert chain.sale("R1", lines=otc(300_000)).status_code == 201
    return chain


def test_a_cash_offset_needs_the_receipt_amount(rich: Chain) -> None:
    """Row 6: a cash offset of 150 points on a 2-yuan receipt is 422 with `receipt_amount_fen`
    (over half of it), and 422 without it too (it is required)."""
    capped = rich.redeem("X1", "cash_offset", 150, receipt_amount_fen=200)
    assert capped.status_code == 422 and capped.json()["field"] == "points"
    missing = redeem(rich, "X2", {"kind": "cash_offset", "points": 150})
    assert missing.status_code == 422 and missing.json()["field"] == "receipt_amount_fen"
    assert rich.member()["points"] == 3000


def test_gifts_and_exchanges_come_from_the_catalogue(rich: Chain) -> None:
    """Row 7: a store cannot declare a gift's cost (100 points, `cost_fen` 1,000,000 is 422);
    the catalogue fixes points and cost; an unknown SKU is 422, an item limited to other
    stores 409; headquarters pays back the catalogue's cost."""
    declared = redeem(rich, "X1", {"kind": "gift", "sku": "GIFT-TOWEL", "cost_fen": 1_000_000})
    assert declared.status_code == 422, declared.text
    legacy = redeem(rich, "X2", {"kind": "gift", "gift_sku": "GIFT-TOWEL", "points": 100})
    assert legacy.status_code == 422
    gift = redeem(rich, "X3", {"kind": "gift", "sku": "GIFT-TOWEL"})
    assert gift.status_code == 201, gift.text
    body = gift.json()
    assert (body["points_redeemed"], body["cost_fen"], body["sku"]) == (100, 1200, "GIFT-TOWEL")
    exchange = redeem(rich, "X4", {"kind": "exchange", "sku": "VC-100", "points": 200})
    assert exchange.status_code == 201 and exchange.json()["cash_price_fen"] == 500
    wrong_points = redeem(rich, "X5", {"kind": "exchange", "sku": "VC-100", "points": 150})
    assert wrong_points.status_code == 422 and wrong_points.json()["field"] == "points"
    unknown = redeem(rich, "X6", {"kind": "gift", "sku": "GIFT-NONE"})
    assert unknown.status_code == 422 and unknown.json()["type"] == "unknown-catalogue-item"
    elsewhere = redeem(rich, "X7", {"kind": "exchange", "sku": "VC-100"}, store_id="S2")
    assert elsewhere.status_code == 409 and elsewhere.json()["type"] == "not-redeemable-here"
    caught_up(rich.client)
    report = rich.client.get(f"/v1/settlements/{month_now()}", headers=rich.finance()).json()
    assert row(report, "S1")["redemption_cost_fen"] == 1200 + 800


@pytest.mark.parametrize("drug_class", ["rx", "otc_a"])
def test_prescription_and_class_a_otc_drugs_are_refused_at_publish(
    chain: Chain, drug_class: str
) -> None:
    """Row 7: 处方药 and 甲类非处方药 may not be given away or sold for points."""
    item = {"sku": "RX-1", "kind": "gift", "points": 100, "cost_fen": 900, "drug_class": drug_class}
    rules = STEADY | {"redemption": STEADY["redemption"] | {"catalogue": [item]}}
    refused = chain.publish(rules | {"effective_from": "2020-01-01T00:00:00+08:00"})
    assert refused.status_code == 422, refused.text
    assert refused.json()["field"] == "redemption.catalogue[0].drug_class"


def test_stored_value_is_settled_where_it_is_spent(rich: Chain) -> None:
    """Row 8: points converted at one store cost it nothing; stored value spent at a franchise
    store (net of its refunds) is paid back to it: `stored_value_cost_fen`."""
    convert = rich.stored_value("conversions", store_id="S2", conversion_no="C1", points=1000)
    assert convert.status_code == 201 and convert.json()["credited_fen"] == 1000
    pay = rich.stored_value("payments", payment_no="P1", amount_fen=600)
    assert pay.status_code == 201, pay.text
    back = rich.stored_value("refunds", refund_no="V1", payment_no="P1", amount_fen=100)
    assert back.status_code == 201, back.text
    caught_up(rich.client)
    report = rich.client.get(f"/v1/settlements/{month_now()}", headers=rich.finance()).json()
    s1, s2 = row(report, "S1"), row(report, "S2")
    assert s1["stored_value_cost_fen"] == 500 and s2["stored_value_cost_fen"] == 0
    assert s1["difference_fen"] == s1["fee_due_fen"] - s1["redemption_cost_fen"] - 500
    assert report["totals"]["stored_value_cost_fen"] == 500
    assert report["totals"]["difference_fen"] == sum(r["difference_fen"] for r in report["rows"])
    text = rich.client.get(
        f"/v1/settlements/{month_now()}", params={"format": "csv"}, headers=rich.finance()
    ).text
    assert text.startswith("\ufeffperiod,")  # row 13: the BOM spreadsheet programs need
    (header, *_) = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    assert header.index("stored_value_cost_fen") == header.index("redemption_cost_fen") + 1


def test_the_liability_values_each_lot_at_its_own_versions_cost(chain: Chain) -> None:
    """Row 9: 1,000 points earned under version 1 (3 fen a point) and 1,000 under version 2
    (2.8 fen) are worth 5,800 fen, not 2,000 × 2.8 = 5,600; stored value beside it; a member
    in debt counts 0."""
    chain.standard()
    second = STEADY | {
        "effective_from": "2026-06-01T00:00:00+08:00",
        "settlement": {"cost_per_point_fen": "2.8"},
    }
    assert chain.publish(second).status_code == 201
    chain.enrol("M1")
    chain.sale("R1", lines=otc(100_000), occurred_at="2026-03-01T10:00:00+08:00")
    chain.sale("R2", lines=otc(100_000), occurred_at="2026-07-01T10:00:00+08:00")
    assert chain.stored_value("conversions", conversion_no="C1", points=100).status_code == 201
    chain.enrol("M2")
    chain.sale("R3", member_id="M2", lines=otc(10_000), occurred_at="2026-09-02T10:00:00+08:00")
    chain.adjust("A1", -100, member_id="M2")
    assert chain.refund("R3", "F1", [(1, 10_000)]).json()["debt_added"] == 100
    caught_up(chain.client)
    got = chain.client.get("/v1/liability", headers=chain.finance()).json()
    # M1: 900 left of version 1's lot (the conversion took the earliest expiry), 1,000 of v2's
    assert (got["points"], got["members"]) == (1900, 1)
    assert got["value_fen"] == 900 * 3 + 1000 * 28 // 10 == 5500
    assert got["stored_value_fen"] == 100
    assert [(v["rule_version"], v["points"]) for v in got["by_version"]] == [(1, 900), (2, 1000)]
    then = chain.client.get(
        "/v1/liability", params={"as_of": "2026-08-01T00:00:00+08:00"}, headers=chain.finance()
    ).json()
    assert (then["points"], then["value_fen"], then["stored_value_fen"]) == (2000, 5800, 0)

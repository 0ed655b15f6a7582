"""Redemptions over HTTP on both stores: the four kinds, FIFO lots, holds, voids (SPEC 2.3)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.chain import ADMIN, STEADY, Chain, now_iso
from tests.e2e.conftest import Clock

pytestmark = pytest.mark.e2e

LOT_2026_01 = "2026-01-15T10:00:00+08:00"  # expires 2027-01-15 (rolling 12 months)
LOT_2026_06 = "2026-06-15T10:00:00+08:00"  # expires 2027-04-01 (2026's clearance)


def otc(fen: int) -> list[dict[str, Any]]:
    return [{"sku": "A", "category": "otc", "amount_fen": fen}]


CATALOGUE = [
    {"sku": "G-TOWEL", "kind": "gift", "points": 100, "cost_fen": 800},
    {"sku": "E-1", "kind": "exchange", "points": 200, "cash_price_fen": 990, "cost_fen": 500},
]


@pytest.fixture
def rich(chain: Chain) -> Chain:
    """Member M1 with 3,000 points in one lot; a gift and an exchange in the catalogue."""
    chain.standard(STEADY | {"redemption": STEADY["redemption"] | {"catalogue": CATALOGUE}})
    assert chain.enrol("M1").status_code == 201
    assert chain.sale("R1", lines=otc(300_000)).status_code == 201
    return chain


def points(chain: Chain) -> int:
    value: int = chain.member()["points"]
    return value


@pytest.mark.parametrize(
    ("kind", "spent", "fields", "value_fen", "cost_fen"),
    [
        ("cash_offset", 500, {}, 500, 500),
        ("cash_offset", 500, {"receipt_amount_fen": 1000}, 500, 500),
        ("voucher", 500, {}, 1500, 1500),
        ("gift", 100, {"sku": "G-TOWEL"}, 800, 800),  # the catalogue's points and cost
        ("exchange", 200, {"sku": "E-1"}, 500, 500),
    ],
)
def test_each_kind_spends_points_and_records_value_and_cost(
    rich: Chain, kind: str, spent: int, fields: dict[str, Any], value_fen: int, cost_fen: int
) -> None:
    response = rich.redeem("X1", kind, spent, **fields)
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["points_redeemed"], body["value_fen"], body["cost_fen"]) == (
        spent,
        value_fen,
        cost_fen,
    )
    assert body["status"] == "redeemed" and body["kind"] == kind
    assert body["balance"]["points"] == 3000 - spent == points(rich)


@pytest.mark.parametrize(
    ("kind", "spent", "fields", "slug"),
    [
        ("voucher", 300, {}, "invalid-input"),  # not a ladder step
        ("cash_offset", 500, {"receipt_amount_fen": 600}, "invalid-input"),  # over 50% of 6 yuan
        ("gift", 100, {}, "invalid-input"),  # sku missing
        ("gift", 100, {"sku": "G-TOWEL", "cost_fen": 800}, "invalid-input"),  # not the POS's say
        ("cash_offset", 500, {"receipt_amount_fen": None}, "invalid-input"),  # receipt required
        ("cash_offset", 0, {}, "invalid-input"),
        ("cash_offset", -5, {}, "invalid-input"),
        ("teleport", 100, {}, "invalid-input"),
    ],
)
def test_bad_redemptions_are_4xx_and_change_nothing(
    rich: Chain, kind: str, spent: int, fields: dict[str, Any], slug: str
) -> None:
    response = rich.redeem("X1", kind, spent, **fields)
    assert response.status_code == 422, response.text
    assert response.json()["type"] == slug
    assert response.headers["content-type"].startswith("application/problem+json")
    assert points(rich) == 3000


def test_more_than_the_balance_is_409_and_changes_nothing(rich: Chain) -> None:
    response = rich.redeem("X1", "cash_offset", 3001)
    assert response.status_code == 409
    assert response.json()["type"] == "insufficient-points"
    assert points(rich) == 3000
    assert rich.redeem("X1", "cash_offset", 3000).status_code == 201  # the number is still free
    assert points(rich) == 0


def test_a_retry_replays_and_another_body_is_409(rich: Chain) -> None:
    at = now_iso()
    first = rich.redeem("X1", "voucher", 100, occurred_at=at)
    again = rich.redeem("X1", "voucher", 100, occurred_at=at)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    other = rich.redeem("X1", "voucher", 500, occurred_at=at)
    assert other.status_code == 409 and other.json()["type"] == "idempotency-conflict"
    assert points(rich) == 2900


def test_a_pos_redeems_only_for_its_own_store(rich: Chain) -> None:
    body = {"store_id": "S2", "redemption_no": "X1", "member_id": "M1"}
    response = rich.client.post(
        "/v1/redemptions",
        json=body | {"occurred_at": now_iso(), "kind": "voucher", "points": 100},
        headers=rich.pos("S1"),
    )
    assert response.status_code == 403


def test_points_come_fifo_by_expiry_and_a_void_puts_them_back(chain: Chain) -> None:
    chain.standard()
    chain.enrol("M1")
    # posted out of order (an offline store uploads late): FIFO goes by expiry, not posting
    later = chain.sale("R2", lines=otc(10_000), occurred_at=LOT_2026_06).json()
    earlier = chain.sale("R1", lines=otc(10_000), occurred_at=LOT_2026_01).json()
    assert later["points_earned"] == earlier["points_earned"] == 100
    before = chain.member()["expiring"]

    redeemed = chain.redeem("X1", "cash_offset", 150).json()
    lot_r1, lot_r2 = 3, 2  # a lot's id is the member version of the accrual that made it
    assert redeemed["takes"] == [[lot_r1, 100], [lot_r2, 50]]
    assert chain.member()["expiring"] == [
        {"points": 50, "expires_at": "2027-04-01T00:00:00+08:00", "overdue": False}
    ]

    voided = chain.redemption_action("X1", "void")
    assert voided.status_code == 201
    assert voided.json()["points_restored"] == 150
    assert chain.member()["expiring"] == before
    assert chain.member()["points"] == 200
    again = chain.redemption_action("X1", "void")
    assert again.status_code == 200 and again.json() == voided.json()
    assert chain.member()["points"] == 200


def test_voiding_an_unknown_redemption_is_404(rich: Chain) -> None:
    response = rich.redemption_action("NOPE", "void")
    assert response.status_code == 404
    assert response.json()["type"] == "redemption-not-found"


def test_a_hold_reserves_points_until_captured(rich: Chain) -> None:
    held = rich.redeem("H1", "voucher", 2000, hold=True)
    assert held.status_code == 201, held.text
    body = held.json()
    assert body["status"] == "held" and body["points_held"] == 2000
    assert body["balance"]["points"] == 1000 and body["balance"]["held_points"] == 2000
    # nobody else can spend the reserved points
    assert rich.redeem("X2", "voucher", 2000, store_id="S2").status_code == 409
    captured = rich.redemption_action("H1", "capture")
    assert captured.status_code == 201, captured.text
    assert captured.json()["status"] == "redeemed" and captured.json()["points_redeemed"] == 2000
    assert rich.redemption_action("H1", "capture").status_code == 200
    member = rich.member()
    assert member["points"] == 1000


def test_a_voided_hold_gives_its_points_back(rich: Chain) -> None:
    assert rich.redeem("H1", "voucher", 2000, hold=True).status_code == 201
    voided = rich.redemption_action("H1", "void")
    assert voided.status_code == 201 and voided.json()["released_hold"] == 2000
    assert points(rich) == 3000
    captured = rich.redemption_action("H1", "capture")
    assert captured.status_code == 409 and captured.json()["type"] == "redemption-voided"


def test_an_abandoned_hold_lapses_by_itself(rich: Chain, clock: Clock) -> None:
    assert rich.redeem("H1", "voucher", 2000, hold=True).status_code == 201
    assert points(rich) == 1000
    clock.advance(minutes=16)  # hold_minutes defaults to 15
    assert points(rich) == 3000
    captured = rich.redemption_action("H1", "capture")
    assert captured.status_code == 409 and captured.json()["type"] == "hold-lapsed"
    assert rich.redeem("X2", "cash_offset", 3000, store_id="S2").status_code == 201


def test_concurrent_redemptions_never_overdraw(live_url: str) -> None:
    with httpx.Client(base_url=live_url, timeout=30) as client:
        chain = Chain(client).standard()
        chain.enrol("M1")
        assert chain.sale("R1", lines=otc(100_000)).status_code == 201  # 1,000 points
        keys = {"S1": chain.pos("S1"), "S2": chain.pos("S2")}
    at = now_iso()

    def attempt(n: int) -> int:
        store = "S1" if n % 2 else "S2"
        body = {
            "store_id": store,
            "redemption_no": f"C{n}",
            "member_id": "M1",
            "occurred_at": at,
            "kind": "cash_offset",
            "points": 300,
            "receipt_amount_fen": 600,
        }
        with httpx.Client(base_url=live_url, timeout=60) as terminal:
            return terminal.post("/v1/redemptions", json=body, headers=keys[store]).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(attempt, range(10)))
    assert sorted(statuses) == [201] * 3 + [409] * 7
    with httpx.Client(base_url=live_url, timeout=30) as client:
        assert client.get("/v1/members/M1", headers=ADMIN).json()["points"] == 100

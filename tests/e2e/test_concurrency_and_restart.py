"""Many POS terminals at once, and a service restart: nothing lost, nothing posted twice."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from litestar.testing import TestClient

from api.app import create_app
from ledger.settings import Settings
from tests.chain import ADMIN, Chain, now_iso, sale_body

pytestmark = pytest.mark.e2e

THREADS = 8
SALES_PER_THREAD = 5


def _setup(client: httpx.Client) -> Chain:
    chain = Chain(client).standard()
    assert chain.enrol("M1").status_code == 201
    return chain


def test_concurrent_sales_for_one_member_all_count_exactly_once(live_url: str) -> None:
    with httpx.Client(base_url=live_url, timeout=30) as client:
        chain = _setup(client)
        headers = {1: chain.pos("S1"), 2: chain.pos("S2")}

    def post(receipt: int) -> list[int]:
        store = 1 + receipt % 2
        amount = 1000 * (1 + receipt % 7)  # 10..70 yuan
        body = sale_body(
            f"R{receipt}",
            store_id=f"S{store}",
            lines=[{"sku": "A", "category": "otc", "amount_fen": amount}],
        )
        with httpx.Client(base_url=live_url, timeout=60) as terminal:
            # each sale is sent twice, as a POS retrying after a timeout would
            return [
                terminal.post("/v1/sales", json=body, headers=headers[store]).status_code
                for _ in range(2)
            ]

    receipts = range(THREADS * SALES_PER_THREAD)
    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(post, receipts))

    assert sorted(s for pair in results for s in pair) == sorted([201, 200] * len(receipts))
    expected = sum(10 * (1 + r % 7) for r in receipts)  # 1 point per yuan
    with httpx.Client(base_url=live_url, timeout=30) as client:
        member = client.get("/v1/members/M1", headers=ADMIN).json()
    assert member["points"] == expected


def test_a_restart_keeps_members_sales_rules_and_keys(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        chain = _setup(client)
        pos = chain.pos("S1")
        body = sale_body("R1")
        first = client.post("/v1/sales", json=body, headers=pos).json()
        before = chain.member()

    with TestClient(create_app(settings)) as client:
        # the same POS key still works, the member reads back the same, a retry still replays
        again = client.post("/v1/sales", json=body, headers=pos)
        assert (again.status_code, again.json()) == (200, first)
        assert client.get("/v1/members/M1", headers=pos).json() == before
        after = Chain(client)
        after.keys["S1"] = pos
        assert after.sale("R2").status_code == 201
        assert after.member()["points"] == before["points"] + 100


def test_an_expiry_run_beside_pos_traffic_expires_exactly_the_due_lot(live_url: str) -> None:
    with httpx.Client(base_url=live_url, timeout=30) as client:
        chain = _setup(client)
        pos = chain.pos("S1")
        old = [{"sku": "A", "category": "otc", "amount_fen": 10_000}]
        chain.sale("OLD", lines=old, occurred_at="2025-06-01T10:00:00+08:00")  # due 2026-04-01

    def post(n: int) -> int:
        with httpx.Client(base_url=live_url, timeout=60) as terminal:
            body = sale_body(f"R{n}")
            return terminal.post("/v1/sales", json=body, headers=pos).status_code

    def expire() -> dict[str, int]:
        with httpx.Client(base_url=live_url, timeout=60) as admin:
            response = admin.post("/v1/admin/expiry-runs", json={"as_of": now_iso()}, headers=ADMIN)
            result: dict[str, int] = response.json()
            return result

    with ThreadPoolExecutor(6) as pool:
        sales = [pool.submit(post, n) for n in range(20)]
        run = pool.submit(expire)
        assert [f.result() for f in sales] == [201] * 20
        assert run.result()["points_expired"] == 100
    with httpx.Client(base_url=live_url, timeout=30) as client:
        assert client.get("/v1/members/M1", headers=ADMIN).json()["points"] == 20 * 100

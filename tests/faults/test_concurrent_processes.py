"""Concurrent writers on one member from two `ledger serve` processes on one store: no lost
update, no overdraw. Terminals post sales and many more redemptions for the same member through
both processes at once; every answer is an acknowledgement or `insufficient-points` (never a
contention 503 or a 500), no balance is ever negative, and the final balance is exactly the
opening balance plus the acknowledged sales minus the acknowledged redemptions.

SQLite too: its file locks serialise writers across processes, and each process's optimistic
version check (the member's next version is unique in the log) catches a stale cached member.
Only the first process follows the log with projections (one writer per view).
"""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.chain import Chain, now_iso, sale_body
from tests.faults.conftest import ledger_serve

pytestmark = [pytest.mark.e2e, pytest.mark.solo]
TERMINALS = 6
OPERATIONS = 12  # per terminal: every third a sale of 100 points, the rest redemptions of 100
OPENING_POINTS = 1_000


def _operate(
    base_urls: list[str], pos: dict[str, str], terminal: int
) -> list[tuple[str, int, dict[str, Any]]]:
    done: list[tuple[str, int, dict[str, Any]]] = []
    clients = [httpx.Client(base_url=url, timeout=60) for url in base_urls]
    with contextlib.ExitStack() as stack:
        for client in clients:
            stack.enter_context(client)
        for n in range(OPERATIONS):
            client = clients[(terminal + n) % len(clients)]  # alternate between the processes
            if n % 3 == 0:
                kind = "sale"
                response = client.post("/v1/sales", json=sale_body(f"T{terminal}-{n}"), headers=pos)
            else:
                kind = "redemption"
                body = {
                    "store_id": "S1",
                    "redemption_no": f"T{terminal}-{n}",
                    "member_id": "M1",
                    "occurred_at": now_iso(),
                    "kind": "voucher",
                    "points": 100,
                }
                response = client.post("/v1/redemptions", json=body, headers=pos)
            done.append((kind, response.status_code, response.json()))
    return done


def test_two_api_processes_writing_one_member_lose_no_update_and_never_overdraw(
    database_url: str, tmp_path: Path
) -> None:
    with contextlib.ExitStack() as stack:
        first = stack.enter_context(ledger_serve(database_url, tmp_path / "first.log"))
        with httpx.Client(base_url=first, timeout=30) as client:
            chain = Chain(client).standard()
            assert chain.enrol("M1").status_code == 201
            opening = [{"sku": "A", "category": "otc", "amount_fen": OPENING_POINTS * 100}]
            assert chain.sale("OPENING", lines=opening).status_code == 201
            pos = chain.pos("S1")
        second = stack.enter_context(
            ledger_serve(
                database_url, tmp_path / "second.log", extra_env={"LEDGER_PROJECTIONS": "off"}
            )
        )
        with ThreadPoolExecutor(TERMINALS) as pool:
            runs = [pool.submit(_operate, [first, second], pos, t) for t in range(TERMINALS)]
            results = [r for run in runs for r in run.result()]
        with httpx.Client(base_url=second, timeout=30) as client:
            final = client.get("/v1/members/M1", headers=pos).json()

    refused = [body for kind, status, body in results if status == 409]
    assert {b["type"] for b in refused} <= {"insufficient-points"}, refused[:3]
    statuses = {(kind, status) for kind, status, _ in results}
    assert statuses <= {("sale", 201), ("redemption", 201), ("redemption", 409)}, statuses
    sales = sum(1 for kind, status, _ in results if (kind, status) == ("sale", 201))
    redeemed = sum(1 for kind, status, _ in results if (kind, status) == ("redemption", 201))
    assert refused, "the load never drove the member to zero: no overdraw was attempted"
    assert all(body["balance"]["points"] >= 0 for _, status, body in results if status == 201)
    assert final["points"] == OPENING_POINTS + 100 * sales - 100 * redeemed >= 0
    for log in ("first.log", "second.log"):  # both processes wrote
        assert '"path": "/v1/redemptions", "status": 201' in (tmp_path / log).read_text()

"""Issue 16: an offline store's upload, `POST /v1/sales/batch` against single `POST /v1/sales`.

`python -m bench.batch_sales` serves the ledger in this process (uvicorn, one worker, rate limits
off) on a throwaway PostgreSQL database (or SQLite with `--sqlite`), enrols `--members` members
at one store, then posts `--sales` sales (one line each, members in turn) twice over: one by one
from `--clients` threads, and as batches of `--batch` from one client. Prints one JSON line per
way: sales, seconds, sales/s, and the statuses seen (all 201 unless something is wrong).

    .venv/bin/python -m bench.batch_sales --sales 5000
"""

from __future__ import annotations

import argparse
import collections
import json
import secrets
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from api.app import create_app
from bench.harness import DEFAULT_PG_ADMIN_URL, random_database_name, throwaway_database
from ledger.settings import Settings

ADMIN_KEY = "bench-admin-key-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
RULES = {
    "effective_from": "2020-01-01T00:00:00+08:00",
    "accrual": {"fen_per_point": 100, "points_per_unit": 1},
    "expiry": {"rolling_months": 12},
}


@contextmanager
def served(database_url: str) -> Iterator[str]:
    settings = Settings(
        database_url=database_url,
        admin_key=ADMIN_KEY,
        master_key=secrets.token_bytes(32),
        rate_limit_pos=0,
        rate_limit_other=0,
    )
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=0, log_level="error")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the server did not start (see its log above)")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _sale(receipt: str, member: str) -> dict[str, Any]:
    return {
        "store_id": "S1",
        "receipt_no": receipt,
        "member_id": member,
        "occurred_at": datetime.now(UTC).isoformat(),
        "lines": [{"sku": "A", "category": "otc", "amount_fen": 1990}],
    }


def _prepare(http: httpx.Client, members: int) -> dict[str, str]:
    assert http.put("/v1/rules", json=RULES, headers=ADMIN).status_code == 201
    store = {"name": "S1", "kind": "franchise", "franchisee": "F1"}
    http.put("/v1/stores/S1", json=store, headers=ADMIN)
    body = {"role": "pos", "store_id": "S1", "holder": "bench till"}
    pos = {
        "Authorization": f"Bearer {http.post('/v1/admin/api-keys', json=body, headers=ADMIN).json()['key']}"
    }
    for n in range(members):
        enrol = {"member_id": f"M{n}", "store_id": "S1"}
        assert http.post("/v1/members", json=enrol, headers=pos).status_code == 201
    return pos


def singly(
    url: str, pos: dict[str, str], sales: list[dict[str, Any]], clients: int
) -> dict[str, Any]:
    statuses: collections.Counter[int] = collections.Counter()
    shares = [sales[n::clients] for n in range(clients)]

    def run(share: list[dict[str, Any]]) -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            for sale in share:
                statuses[http.post("/v1/sales", json=sale, headers=pos).status_code] += 1

    started = time.perf_counter()
    workers = [threading.Thread(target=run, args=(share,)) for share in shares]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return _figures(f"single posts, {clients} clients", len(sales), started, statuses)


def batched(
    url: str, pos: dict[str, str], sales: list[dict[str, Any]], size: int
) -> dict[str, Any]:
    statuses: collections.Counter[int] = collections.Counter()
    started = time.perf_counter()
    with httpx.Client(base_url=url, timeout=120) as http:
        for n in range(0, len(sales), size):
            response = http.post(
                "/v1/sales/batch", json={"sales": sales[n : n + size]}, headers=pos
            )
            assert response.status_code == 200, response.text
            for result in response.json()["results"]:
                statuses[result["status"]] += 1
    return _figures(f"batches of {size}, 1 client", len(sales), started, statuses)


def _figures(
    way: str, count: int, started: float, statuses: collections.Counter[int]
) -> dict[str, Any]:
    seconds = time.perf_counter() - started
    return {
        "way": way,
        "sales": count,
        "seconds": round(seconds, 2),
        "sales_per_second": round(count / seconds, 1),
        "statuses": dict(statuses),
    }


def run(database_url: str, args: argparse.Namespace) -> None:
    with served(database_url) as url, httpx.Client(base_url=url, timeout=60) as http:
        pos = _prepare(http, args.members)
        members = [f"M{n}" for n in range(args.members)]
        single = [_sale(f"S{n}", members[n % len(members)]) for n in range(args.sales)]
        batch = [_sale(f"B{n}", members[n % len(members)]) for n in range(args.sales)]
        store = "sqlite" if args.sqlite else "postgres"
        for figures in (
            singly(url, pos, single, args.clients),
            batched(url, pos, batch, args.batch),
        ):
            print(json.dumps({"store": store} | figures), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sales", type=int, default=5000)
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--sqlite", action="store_true")
    parser.add_argument("--pg-admin-url", default=DEFAULT_PG_ADMIN_URL)
    args = parser.parse_args()
    if args.sqlite:
        folder = Path(tempfile.mkdtemp(prefix="ledger-batch-"))
        run(f"sqlite:///{folder / 'ledger.db'}", args)
        return
    with throwaway_database(args.pg_admin_url, random_database_name("batch")) as url:
        run(url, args)


if __name__ == "__main__":
    main()

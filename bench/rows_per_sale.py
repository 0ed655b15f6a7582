"""Rows and bytes a member's sale adds to PostgreSQL, log and views (docs/DEPLOY.md's capacity
table): a fresh database, the standard test chain, SALES sales over the HTTP app in process,
the views caught up; then each table's rows and size (`pg_total_relation_size`, indexes and
TOAST included) against the empty chain's. `python -m bench.rows_per_sale [--sales N]`."""

from __future__ import annotations

import argparse
import uuid

import psycopg
from litestar.testing import TestClient

from api.app import create_app
from ledger.infrastructure.persistence import PostgresTuning
from ledger.settings import Settings
from tests.chain import Chain, sale_body
from tests.conftest import ADMIN_KEY, PG_ADMIN_URL, TEST_MASTER_KEY

MEMBERS = 100
SIZES = "SELECT relname, pg_total_relation_size(relid) FROM pg_stat_user_tables"


def _sizes(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return {name: int(size) for name, size in conn.execute(SIZES)}


def _rows(url: str, tables: list[str]) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        counted = {}
        for table in tables:
            row = conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()  # noqa: S608 - our tables
            counted[table] = int(row[0]) if row else 0
        return counted


def measure(url: str, sales: int) -> None:
    settings = Settings(
        database_url=url,
        admin_key=ADMIN_KEY,
        master_key=TEST_MASTER_KEY,
        rate_limit_pos=0,
        rate_limit_other=0,
        postgres=PostgresTuning(connect_timeout_seconds=10),
    )
    with TestClient(create_app(settings)) as client:
        chain = Chain(client).standard()
        for m in range(MEMBERS):
            chain.enrol(f"M{m}")
        pos = chain.pos("S1")
        state = client.app.state
        state.queries.projections.wait(state.ledger.core.log_position(), timeout=60)
        size_before = _sizes(url)
        rows_before = _rows(url, list(size_before))
        for n in range(sales):
            body = sale_body(f"R{n}") | {"member_id": f"M{n % MEMBERS}"}
            assert client.post("/v1/sales", json=body, headers=pos).status_code == 201
        state.queries.projections.wait(state.ledger.core.log_position(), timeout=60)
    size_after = _sizes(url)
    rows_after = _rows(url, list(size_after))
    print(f"per member sale ({sales} sales over {MEMBERS} members):")
    for table in sorted(size_after):
        rows = (rows_after[table] - rows_before[table]) / sales
        size = (size_after[table] - size_before[table]) / sales
        if rows or size:
            print(f"  {table:28s} {rows:6.2f} rows {size:8.0f} bytes")
    rows = sum(rows_after.values()) - sum(rows_before.values())
    size = sum(size_after.values()) - sum(size_before.values())
    print(f"  {'total':28s} {rows / sales:6.2f} rows {size / sales:8.0f} bytes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sales", type=int, default=2_000)
    args = parser.parse_args()
    name = f"ledger_rows_per_sale_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        measure(f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}", args.sales)
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()

"""Fixtures: every store-backed test runs on SQLite and on a throwaway PostgreSQL database.

One PostgreSQL database is created per test run (and per xdist worker) and dropped at the end;
each test gets its own schema in it. Under CI=true a PostgreSQL test fails, never skips, when
the server cannot be reached.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from ledger.infrastructure.persistence import PostgresTuning
from ledger.settings import Settings

PG_ADMIN_URL = os.environ.get(
    "LEDGER_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
TEST_MASTER_KEY = bytes.fromhex("11" * 32)
ADMIN_KEY = "test-admin-key-0123456789"
STORES = ["sqlite", "postgres"]
ON_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# A busy 2-core machine running the whole suite can take longer than production's 2 s to hand
# out a pooled PostgreSQL connection; the fault tests set their own (fast) value.
os.environ.setdefault("LEDGER_PG_CONNECT_TIMEOUT", "10")
# A test process holds several pools (the core's, each projection runner's), each opening
# pool_size connections at start and growing by up to max_overflow on demand; two xdist workers
# plus a served process share the CI server's default 100 connections, and the parallel pass
# reached 102 with production's sizes. One connection kept per pool and 6 more on demand keep
# it well under. Tests that size pools set their own values.
os.environ.setdefault("LEDGER_PG_POOL_SIZE", "1")
os.environ.setdefault("LEDGER_PG_MAX_OVERFLOW", "6")
TEST_POSTGRES = PostgresTuning(connect_timeout_seconds=10, pool_size=1, max_overflow=6)
# The suite drives one key far past a till's rate; the rate limit has tests of its own.
os.environ.setdefault("LEDGER_RATE_LIMIT_POS", "0")
os.environ.setdefault("LEDGER_RATE_LIMIT_OTHER", "0")

# Bounded examples under CI keep `make test` within its budget; locally the default explores more.
hypothesis_settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.register_profile("dev", max_examples=200, deadline=None)
hypothesis_settings.load_profile("ci" if ON_CI else "dev")


def _unreachable(reason: str) -> None:
    if ON_CI:
        pytest.fail(f"PostgreSQL is required under CI: {reason}")
    pytest.skip(f"PostgreSQL not reachable: {reason}")


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh database for this run (this worker); yields its URL, drops it afterwards."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"ledger_test_{uuid.uuid4().hex[:8]}_{worker}"
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as e:
        _unreachable(str(e))
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def new_pg_schema(pg_database: str) -> str:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return f"{pg_database}?schema={schema}"


@pytest.fixture(params=STORES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty store: a SQLite file, or a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    pg: str = request.getfixturevalue("pg_database")
    return new_pg_schema(pg)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        admin_key=ADMIN_KEY,
        master_key=TEST_MASTER_KEY,
        rate_limit_pos=0,
        rate_limit_other=0,
        postgres=TEST_POSTGRES,
    )

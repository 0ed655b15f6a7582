"""Several API processes started together on an empty PostgreSQL schema all come up: they race
to make the tables and eventsourcing's insert function, and a lost race is retried."""

from __future__ import annotations

import multiprocessing
from multiprocessing.queues import Queue

import pytest

from ledger.application import open_ledger
from ledger.settings import Settings
from tests.conftest import TEST_MASTER_KEY, new_pg_schema

pytestmark = [pytest.mark.integration, pytest.mark.solo]
PROCESSES = 6


def _start(url: str, results: Queue[str]) -> None:
    try:
        open_ledger(Settings(database_url=url, master_key=TEST_MASTER_KEY)).close()
        results.put("ok")
    except Exception as e:  # the test reports whatever went wrong
        results.put(f"{type(e).__name__}: {e}")


def test_processes_started_together_on_an_empty_schema_all_come_up(pg_database: str) -> None:
    context = multiprocessing.get_context("spawn")
    for _ in range(2):  # the race is lost often, not always (without the retry: most runs)
        url = new_pg_schema(pg_database)
        results: Queue[str] = context.Queue()
        processes = [context.Process(target=_start, args=(url, results)) for _ in range(PROCESSES)]
        for p in processes:
            p.start()
        for p in processes:
            p.join(timeout=120)
        assert [results.get(timeout=5) for _ in processes] == ["ok"] * PROCESSES

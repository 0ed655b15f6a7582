"""Several `ledger serve` processes on one PostgreSQL database (SPEC 4): started together on an
empty database they all come up; each projection runs in exactly one of them (a lease: an
advisory lock, `ledger.infrastructure.leases`); when the holder is killed with SIGKILL under POS
traffic, another process takes every lease over within seconds, and the views then equal a
replay (`ledger verify`).

SQLite is one process by design (DEPLOY.md), so these run on PostgreSQL only.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from bench.harness import REPO, VENV_BIN, free_port, stop_process_group, wait_for_projections
from ledger.infrastructure.leases import Leases
from projections.runtime import PROJECTIONS
from tests.chain import Chain, sale_body
from tests.conftest import ADMIN_KEY, TEST_MASTER_KEY, new_pg_schema
from tests.polling import answering, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.solo]
TAKEOVER_SECONDS_MAX = 10.0


def _env(database_url: str) -> dict[str, str]:
    return dict(os.environ) | {
        "LEDGER_DATABASE_URL": database_url,
        "LEDGER_ADMIN_KEY": ADMIN_KEY,
        "LEDGER_MASTER_KEY": TEST_MASTER_KEY.hex(),
        "LEDGER_PG_CONNECT_TIMEOUT": "10",
        "LEDGER_START_TIMEOUT": "30",
        # small pools: four processes share a test server with the rest of the suite
        "LEDGER_PG_POOL_SIZE": "1",
        "LEDGER_PG_MAX_OVERFLOW": "4",
    }


class Process:
    """`ledger serve` in its own process group, logging to a file."""

    def __init__(self, database_url: str, log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        argv = [str(VENV_BIN / "ledger"), "serve", "--port", str(self.port)]
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own command
                argv,
                cwd=REPO,
                env=_env(database_url),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )

    def leases(self) -> list[str]:
        """The leases this process has taken, in order, from its log."""
        lines = self.log_path.read_text(errors="replace").splitlines()
        return [json.loads(line)["lease"] for line in lines if '"lease_taken"' in line]

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


@contextlib.contextmanager
def processes(database_url: str, tmp_path: Path, count: int) -> Iterator[list[Process]]:
    started: list[Process] = []
    try:
        started.extend(Process(database_url, tmp_path / f"serve-{n}.log") for n in range(count))
        yield started
    finally:
        for p in started:
            if p.process.poll() is None:
                stop_process_group(p.process)


def test_four_processes_started_together_on_an_empty_database_all_come_up(
    pg_database: str, tmp_path: Path
) -> None:
    url = new_pg_schema(pg_database)
    with processes(url, tmp_path, 4) as started:
        for p in started:
            answering(p.url, timeout=90)
        with httpx.Client(base_url=started[0].url, timeout=30) as client:
            chain = Chain(client).standard()
            assert chain.enrol("M1").status_code == 201
            assert chain.sale("R1").status_code == 201
        for p in started:
            assert wait_for_projections(p.url, 30) in ({}, dict.fromkeys(PROJECTIONS, 0))
            with httpx.Client(base_url=p.url, timeout=30) as client:
                assert client.get("/v1/members/M1", headers=chain.pos("S1")).status_code == 200
        time.sleep(2)  # a few lease rounds: nobody takes a lease that is held
        logs = "".join(p.log_path.read_text(errors="replace") for p in started)
        taken = sorted(lease for p in started for lease in p.leases())  # before any stops
    assert "Traceback" not in logs
    assert "Failed to record tracking" not in logs
    assert taken == sorted(PROJECTIONS), "each projection runs in exactly one process"


def _pos_traffic(url: str, pos: dict[str, str], stop: threading.Event) -> list[int]:
    statuses = []
    with httpx.Client(base_url=url, timeout=30) as client:
        n = 0
        while not stop.is_set():
            response = client.post("/v1/sales", json=sale_body(f"T{n}"), headers=pos)
            statuses.append(response.status_code)
            n += 1
    return statuses


def test_the_lease_holder_killed_under_pos_traffic_is_taken_over_and_views_equal_a_replay(
    pg_database: str, tmp_path: Path
) -> None:
    url = new_pg_schema(pg_database)
    with processes(url, tmp_path, 1) as (holder,):
        answering(holder.url, timeout=90)
        standby = Process(url, tmp_path / "standby.log")
        try:
            answering(standby.url, timeout=90)
            assert sorted(holder.leases()) == sorted(PROJECTIONS)
            assert standby.leases() == []
            with httpx.Client(base_url=holder.url, timeout=30) as client:
                chain = Chain(client).standard()
                assert chain.enrol("M1").status_code == 201
                pos = chain.pos("S1")
            stop = threading.Event()
            done: list[list[int]] = []
            traffic = threading.Thread(
                target=lambda: done.append(_pos_traffic(standby.url, pos, stop))
            )
            traffic.start()
            time.sleep(2)
            killed_at = time.monotonic()
            holder.kill()
            wait_until(
                lambda: sorted(standby.leases()) == sorted(PROJECTIONS),
                TAKEOVER_SECONDS_MAX,
                "the standby took every projection's lease over",
                interval=0.1,
            )
            took = time.monotonic() - killed_at
            time.sleep(2)  # traffic goes on under the new holder
            stop.set()
            traffic.join()
            assert wait_for_projections(standby.url, 60) in ({}, dict.fromkeys(PROJECTIONS, 0))
            verify = subprocess.run(  # noqa: S603 - our own command
                [str(VENV_BIN / "ledger"), "verify"],
                cwd=REPO,
                env=_env(url),
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
        finally:
            stop_process_group(standby.process)
    statuses = done[0]
    print(f"takeover in {took:.2f} s; {len(statuses)} sales during the test")
    assert set(statuses) == {201}, statuses
    assert len(statuses) > 10
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_a_lease_whose_session_dies_passes_to_the_standby_and_the_holder_knows(
    pg_database: str,
) -> None:
    url = new_pg_schema(pg_database)
    holder, standby = Leases(url, interval=0.2), Leases(url, interval=0.2)
    try:
        for leases in (holder, standby):
            leases.want(["scheduler"])
            leases.start()
        assert holder.holds("scheduler")
        assert not standby.holds("scheduler")
        with psycopg.connect(pg_database, autocommit=True) as admin:  # the holder's session dies
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_locks"
                " WHERE locktype = 'advisory' AND pid <> pg_backend_pid()"
                " AND pid = ANY(SELECT pid FROM pg_stat_activity WHERE application_name LIKE %s)",
                ["%(locks)"],
            )
        wait_until(lambda: standby.holds("scheduler"), 5, "the standby took the lease")
        wait_until(lambda: not holder.holds("scheduler"), 5, "the holder saw its lease go")
    finally:
        holder.stop()
        standby.stop()

"""Fault-test plumbing: a PostgreSQL cluster the test owns (so it may stop and start it), and
`ledger serve` as a real process (bench.harness.serve: its own process group, stopped whole).

The cluster runs from the machine's PostgreSQL binaries as user `postgres` (initdb refuses
root), in a temporary directory owned by `postgres`, on a free port, trust auth, loopback only.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from bench.harness import free_port, serve
from tests.conftest import ADMIN_KEY, TEST_MASTER_KEY
from tests.e2e.conftest import chain, client, clock, live_url  # noqa: F401 - e2e fixtures, used here too
from tests.polling import answering

PG_BIN = Path(os.environ.get("LEDGER_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))


class Cluster:
    """A throwaway PostgreSQL cluster: `stop()` kills it as a crash would, `start()` brings
    it back on the same port and data directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, *argv: str) -> None:
        command = ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else list(argv)
        done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed: {done.stdout}{done.stderr}")

    def init(self) -> None:
        self._as_postgres(
            str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
            "--no-sync", "-E", "UTF8",
        )  # fmt: skip

    def start(self) -> None:
        # fsync off: an immediate stop kills PostgreSQL's processes, not the machine, so what
        # was committed is in the page cache either way; the test is about the service.
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root}"
            " -c fsync=off -c max_connections=60"
        )
        self._as_postgres(
            str(PG_BIN / "pg_ctl"), "start", "-w", "-t", "60", "-D", str(self.data),
            "-l", str(self.root / "server.log"), "-o", options,
        )  # fmt: skip

    def stop(self, mode: str = "immediate") -> None:
        self._as_postgres(str(PG_BIN / "pg_ctl"), "stop", "-w", "-m", mode, "-D", str(self.data))

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """A PostgreSQL cluster of this test's own, started; stopped and deleted afterwards."""
    if not (PG_BIN / "pg_ctl").exists():
        pytest.fail(f"no PostgreSQL binaries in {PG_BIN} (set LEDGER_TEST_PG_BIN)")
    root = Path(tempfile.mkdtemp(prefix="ledger-faults-pg-"))
    shutil.chown(root, "postgres", "postgres")
    root.chmod(0o700)
    pg = Cluster(root)
    try:
        pg.init()
        pg.start()
        yield pg
    finally:
        if pg.running():
            with contextlib.suppress(RuntimeError):
                pg.stop("fast")
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def ledger_serve(
    database_url: str, log_path: Path, workers: int = 1, extra_env: dict[str, str] | None = None
) -> Iterator[str]:
    """`ledger serve` on `database_url` as a process; yields its base URL once /health is 200.
    It runs with production's connect timeout (the suite's own is longer, for a busy machine)."""
    with serve(
        database_url,
        workers=workers,
        extra_env={"LEDGER_PG_CONNECT_TIMEOUT": "2"} | (extra_env or {}),
        admin_key=ADMIN_KEY,
        master_key_hex=TEST_MASTER_KEY.hex(),
        log_path=log_path,
        ready_timeout=60,
    ) as server:
        yield server.base_url


def wait_until_healthy(base_url: str, timeout: float) -> float:
    """Seconds until `/health` answers 200 again (fails the test after `timeout`)."""
    started = time.monotonic()
    answering(base_url, timeout)
    return time.monotonic() - started


def pg_reachable(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False

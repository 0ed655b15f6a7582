"""Projections as a process of their own (`ledger project`), on both stores: killed with
SIGKILL in the middle of a batch (its transaction has written rows and not committed) and
restarted, its views end identical to a replay from scratch (what `ledger verify` checks),
with every event applied exactly once.

To kill mid-batch for certain, the process is frozen (SIGSTOP) at random moments until it is
caught with a view transaction open that has written: on PostgreSQL a session of the process
(found by its application_name) with a transaction id, on SQLite a view file whose write lock
is held. Then it is killed while frozen."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from ledger.application import Ledger
from ledger.domain.commands import EnrolMember, PostSale, RegisterStore, SaleLine
from ledger.settings import Settings
from projections.runtime import Projections, projection_env
from replay_tools.projections_cli import VERIFY_PREFIX, differences
from tests.conftest import TEST_MASTER_KEY
from tests.polling import wait_until
from tests.rulesets import SPEC_EXAMPLE, doc, ruleset

pytestmark = [pytest.mark.integration, pytest.mark.solo]
SALES = 1_500
APP_NAME = "ledger-project-under-test"
KILLS = 3


def _chain(settings: Settings) -> tuple[int, int]:
    """The log's head, and how many member events it holds."""
    ledger = Ledger(settings)
    try:
        ledger.rules.publish(
            ruleset(doc(SPEC_EXAMPLE, effective_from="2020-01-01T00:00:00+08:00")), "t"
        )
        ledger.access.configure_store(
            "S1", RegisterStore(name="One", kind="franchise", franchisee="F"), "t"
        )
        now = datetime.now(UTC)
        for m in range(10):
            ledger.members.enrol(EnrolMember(member_id=f"M{m}", store_id="S1"), "t", now)
        for n in range(SALES):
            lines = [SaleLine(sku="A", amount_fen=1000 + n, category="otc")]
            sale = PostSale(
                store_id="S1",
                receipt_no=f"R{n}",
                member_id=f"M{n % 10}",
                occurred_at=now - timedelta(minutes=1),
                lines=lines,
            )
            ledger.sales.post(sale, "t", now)
        member_events = sum(len(ledger.members.events(f"M{m}")) for m in range(10))
        return ledger.core.log_position(), member_events
    finally:
        ledger.close()


def _project(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    env = os.environ | {
        "LEDGER_DATABASE_URL": settings.database_url,
        "LEDGER_MASTER_KEY": TEST_MASTER_KEY.hex(),
        "PGAPPNAME": APP_NAME,  # libpq's application_name: finds its sessions
    }
    with log.open("ab") as out:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "ledger", "project"], env=env, stdout=out, stderr=out
        )


def _writing_mid_batch(settings: Settings) -> bool:
    """Whether a (frozen) projection process has a view transaction open that has written."""
    if settings.database_url.startswith("sqlite"):
        env = projection_env(settings.database_url)
        files = [v for k, v in env.items() if k.endswith("_SQLITE_DBNAME") and k != "SQLITE_DBNAME"]
        for file in files:
            if not Path(file).exists():
                continue
            probe = sqlite3.connect(file, timeout=0, isolation_level=None)
            try:
                probe.execute("BEGIN IMMEDIATE")
                probe.execute("ROLLBACK")
            except sqlite3.OperationalError:
                return True  # the write lock is held: a batch has written and not committed
            finally:
                probe.close()
        return False
    base = settings.database_url.split("?", 1)[0]
    with psycopg.connect(base, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE application_name = %s AND backend_xid IS NOT NULL",
            (APP_NAME,),
        ).fetchone()
    return bool(row and row[0])


def _kill_mid_batch(settings: Settings, process: subprocess.Popen[bytes], deadline: float) -> bool:
    """Freeze the process at random moments until it is caught mid-batch, then SIGKILL it."""
    caught = False
    while not caught and process.poll() is None and time.monotonic() < deadline:
        time.sleep(random.uniform(0, 0.02))  # noqa: S311 - a random moment, not a secret
        process.send_signal(signal.SIGSTOP)
        caught = _writing_mid_batch(settings)
        if not caught:
            process.send_signal(signal.SIGCONT)
    process.send_signal(signal.SIGKILL)
    process.wait()
    return caught


def test_a_projection_process_killed_mid_batch_resumes_and_ends_identical(
    settings: Settings, tmp_path: Path
) -> None:
    log = tmp_path / "project.log"
    head, member_events = _chain(settings)
    views = Projections(settings)
    kills: list[int] = []
    try:
        for _ in range(KILLS):
            process = _project(settings, log)
            deadline = time.monotonic() + 60
            caught = _kill_mid_batch(settings, process, deadline)
            assert caught, f"never caught mid-batch; its output:\n{log.read_text()[-3000:]}"
            kills.append(min(views.positions().values()))
        assert kills[-1] < head, f"the log was fully applied before the last kill: {kills}"

        process = _project(settings, log)
        try:
            wait_until(
                lambda: min(views.positions().values()) >= head,
                120,
                "the restarted projections did not catch up",
            )
        finally:
            process.send_signal(signal.SIGTERM)
            status = process.wait(timeout=30)
            assert status == 0, f"exit {status}; its output:\n{log.read_text()[-3000:]}"
    finally:
        views.stop()

    live = Projections(settings)
    scratch = Projections(settings, prefix=VERIFY_PREFIX)
    try:
        scratch.drop()
        scratch.replay(head)
        assert differences(live, scratch) == []
        history = dict(live.history.dump())["entries"]
        assert len(history) == member_events  # each member event once: no gaps, no repeats
        assert len({(r[0], r[1]) for r in history}) == len(history)
    finally:
        live.stop()
        scratch.stop()

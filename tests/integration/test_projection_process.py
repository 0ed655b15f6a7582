"""Projections as a process of their own (`ledger project`), on both stores: killed with
SIGKILL in the middle of the log and restarted, its views end identical to a replay from
scratch (what `ledger verify` checks), with every event applied exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest

from ledger.application import Ledger
from ledger.commands import EnrolMember, PostSale, RegisterStore, SaleLine
from ledger.settings import Settings
from projections.runtime import Projections
from replay_tools.projections_cli import VERIFY_PREFIX, differences
from tests.conftest import TEST_MASTER_KEY
from tests.rulesets import SPEC_EXAMPLE, doc, ruleset

pytestmark = pytest.mark.integration
SALES = 1_500


def _chain(settings: Settings) -> tuple[int, int]:
    """The log's head, and how many member events it holds."""
    ledger = Ledger(settings)
    try:
        ledger.publish_rules(
            ruleset(doc(SPEC_EXAMPLE, effective_from="2020-01-01T00:00:00+08:00")), "t"
        )
        ledger.configure_store(
            "S1", RegisterStore(name="One", kind="franchise", franchisee="F"), "t"
        )
        now = datetime.now(UTC)
        for m in range(10):
            ledger.enrol(EnrolMember(member_id=f"M{m}", store_id="S1"), "t", now)
        for n in range(SALES):
            lines = [SaleLine(sku="A", amount_fen=1000 + n, category="otc")]
            sale = PostSale(
                store_id="S1",
                receipt_no=f"R{n}",
                member_id=f"M{n % 10}",
                occurred_at=now - timedelta(minutes=1),
                lines=lines,
            )
            ledger.post_sale(sale, "t", now)
        member_events = sum(len(ledger.member_events(f"M{m}")) for m in range(10))
        return ledger.log_position(), member_events
    finally:
        ledger.close()


def _project(settings: Settings) -> subprocess.Popen[bytes]:
    env = os.environ | {
        "LEDGER_DATABASE_URL": settings.database_url,
        "LEDGER_MASTER_KEY": TEST_MASTER_KEY.hex(),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "ledger.cli", "project"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_a_killed_projection_process_resumes_and_ends_identical(settings: Settings) -> None:
    head, member_events = _chain(settings)
    views = Projections(settings)
    kills: list[int] = []
    try:
        # Kill it three times as soon as it has made progress (batches are up to 500 events,
        # so a kill lands while a batch's transaction is open more often than not).
        for _ in range(3):
            before = min(views.positions().values())
            process = _project(settings)
            deadline = time.monotonic() + 60
            try:
                while min(views.positions().values()) == before and time.monotonic() < deadline:
                    time.sleep(0.002)
            finally:
                process.send_signal(signal.SIGKILL)
                process.wait()
            kills.append(min(views.positions().values()))
        assert any(0 < at < head for at in kills), f"no kill landed mid-log: {kills} of {head}"

        process = _project(settings)
        try:
            deadline = time.monotonic() + 120
            while min(views.positions().values()) < head:
                assert time.monotonic() < deadline, "the restarted projections did not catch up"
                time.sleep(0.05)
        finally:
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
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

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
SALES = 300


def _chain(settings: Settings) -> int:
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
        return ledger.log_position()
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


def _positions(settings: Settings) -> dict[str, int]:
    views = Projections(settings)
    try:
        return views.positions()
    finally:
        views.stop()


def test_a_killed_projection_process_resumes_and_ends_identical(settings: Settings) -> None:
    head = _chain(settings)
    process = _project(settings)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            at = _positions(settings)
            if min(at.values()) > 20:
                break
            time.sleep(0.01)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    at_kill = _positions(settings)
    assert 0 < min(at_kill.values()) < head, "the kill must land in the middle of the log"

    process = _project(settings)
    try:
        deadline = time.monotonic() + 120
        while min(_positions(settings).values()) < head:
            assert time.monotonic() < deadline, "the restarted projections did not catch up"
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0

    live = Projections(settings)
    scratch = Projections(settings, prefix=VERIFY_PREFIX)
    try:
        scratch.drop()
        scratch.replay(head)
        assert differences(live, scratch) == []
        history = dict(live.history.dump())["entries"]
        assert len(history) == 10 + SALES  # each member event once: no gaps, no repeats
        assert len({(r[0], r[1]) for r in history}) == len(history)
    finally:
        live.stop()
        scratch.stop()

"""Tamper evidence on both stores: after a demo chain every hash chain holds and a closed month's
digest matches; an event row edited or deleted behind the service's back is named by `ledger
verify`; an edit re-sealed all along its chain is still caught by the closed month's digest;
concurrent writers keep every chain whole."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

import psycopg
import pytest

from entry.cli import main
from ledger.application import Ledger
from ledger.domain.commands import EnrolMember, PostSale, RegisterStore, SaleLine
from ledger.infrastructure import hashchain
from ledger.settings import Settings
from replay_tools.tamper import check_chains, plain, stored_rows
from tests.conftest import TEST_MASTER_KEY
from tests.rulesets import SPEC_EXAMPLE, doc, ruleset

pytestmark = pytest.mark.integration
DEMO = ["demo", "--stores", "3", "--members", "20", "--days", "45", "--seed", "5"]
DEMO += ["--start", "2025-01-01"]  # so that PERIOD is its first month
PERIOD = "2025-01"  # the demo's first month
ACCRUED = "ledger.member:PointsAccrued"


def _use(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("LEDGER_DATABASE_URL", url)
    monkeypatch.setenv("LEDGER_MASTER_KEY", TEST_MASTER_KEY.hex())


@contextmanager
def _raw(url: str) -> Iterator[tuple[Any, str, str]]:
    """A connection to the store behind the service's back, the events table and the
    placeholder."""
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url[len("sqlite:///") :])
        try:
            yield conn, "stored_events", "?"
            conn.commit()
        finally:
            conn.close()
        return
    parts = urlsplit(url)
    schema = parts.query.split("schema=", 1)[1]
    with psycopg.connect(parts._replace(query="").geturl(), autocommit=True) as pg:
        yield pg, f'"{schema}".ledger_events', "%s"


def _aggregate_rows(url: str, aggregate: str) -> list[tuple[str, int, str, bytes]]:
    with _raw(url) as (conn, table, p):
        rows = conn.execute(
            f"SELECT originator_id, originator_version, topic, state FROM {table} "  # noqa: S608
            f"WHERE originator_id = {p} ORDER BY originator_version",
            (aggregate,),
        ).fetchall()
    return [(str(r[0]), r[1], r[2], bytes(r[3])) for r in rows]


def _write(url: str, aggregate: str, version: int, state: bytes | None) -> None:
    """Replace (or, with None, delete) one stored event row."""
    with _raw(url) as (conn, table, p):
        if state is None:
            conn.execute(
                f"DELETE FROM {table} WHERE originator_id = {p} AND originator_version = {p}",  # noqa: S608
                (aggregate, version),
            )
        else:
            conn.execute(
                f"UPDATE {table} SET state = {p} "  # noqa: S608
                f"WHERE originator_id = {p} AND originator_version = {p}",
                (state, aggregate, version),
            )


def _accrual_in_the_middle(url: str) -> tuple[str, int, bytes]:
    """A member's accrual of the closed month with later events after it: (id, version, state)."""
    with _raw(url) as (conn, table, p):
        rows = conn.execute(
            f"SELECT originator_id, originator_version, state FROM {table} "  # noqa: S608
            f"WHERE topic = {p} AND originator_version > 2 ORDER BY originator_version",
            (ACCRUED,),
        ).fetchall()
    for aggregate, version, state in rows:
        if b'"occurred_at":"2025-01-1' in bytes(state):
            later = _aggregate_rows(url, str(aggregate))
            if later[-1][1] > version:
                return str(aggregate), version, bytes(state)
    raise AssertionError("the demo has no accrual of January in the middle of a member's chain")


def _more_points(state: bytes) -> bytes:
    start = state.index(b'"points":') + len(b'"points":')
    end = state.index(b",", start)
    return state[:start] + str(int(state[start:end]) + 1000).encode() + state[end:]


@pytest.fixture
def demo(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> str:
    """A demo chain whose first month is closed; the store's URL."""
    _use(monkeypatch, settings.database_url)
    assert main(DEMO) == 0
    ledger = Ledger(settings)
    try:
        receipt, created = ledger.settlement.close(PERIOD, "finance", datetime.now(UTC))
    finally:
        ledger.close()
    assert created and receipt.events_digested > 10 and receipt.digest is not None
    return settings.database_url


def test_after_a_demo_chain_every_chain_holds_and_the_closed_month_matches(
    demo: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["verify"]) == 0
    out = capsys.readouterr().out
    assert "intact; digests of 1 closed months: match" in out
    assert "identical to a replay" in out


def test_verify_names_an_event_row_edited_behind_the_services_back(
    demo: str, capsys: pytest.CaptureFixture[str]
) -> None:
    aggregate, version, state = _accrual_in_the_middle(demo)
    _write(demo, aggregate, version, _more_points(state))
    assert main(["verify", "--chains-only"]) == 1
    out = capsys.readouterr().out
    assert f"chain: {UUID(aggregate)} v{version} at position " in out
    assert "does not match its contents" in out and "1 broken" in out


def test_verify_names_an_event_deleted_from_the_middle_of_a_chain(
    demo: str, capsys: pytest.CaptureFixture[str]
) -> None:
    aggregate, version, _ = _accrual_in_the_middle(demo)
    _write(demo, aggregate, version, None)
    assert main(["verify", "--chains-only"]) == 1
    out = capsys.readouterr().out
    assert f"chain: {UUID(aggregate)} v{version + 1} " in out
    assert f"version {version} is missing" in out


def test_an_edit_resealed_along_its_chain_is_caught_by_the_closed_months_digest(
    demo: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Someone who knows the hashing rewrites a January accrual and every later hash of that
    member: the chains hold again, but the digest recorded when January closed does not."""
    aggregate, version, _ = _accrual_in_the_middle(demo)
    prev = hashchain.GENESIS
    for _, v, topic, state in _aggregate_rows(demo, aggregate):
        _, body = hashchain.split(_more_points(state) if v == version else state)
        chain = hashchain.link(prev, aggregate, v, topic, body)
        _write(demo, aggregate, v, body.replace(b'"chain":""', f'"chain":"{chain}"'.encode(), 1))
        prev = chain
    assert main(["verify", "--chains-only"]) == 1
    out = capsys.readouterr().out
    assert "intact" in out
    assert f"digest: {PERIOD} recorded " in out and "1 wrong" in out


def _sale(n: int, card: str, now: datetime) -> PostSale:
    return PostSale(
        store_id="S1",
        receipt_no=f"R{n}",
        member_id=card,
        occurred_at=now - timedelta(minutes=1),
        lines=[SaleLine(sku="A", amount_fen=10_000 + n, category="otc")],
    )


def test_concurrent_commands_and_snapshots_keep_every_chain_whole(settings: Settings) -> None:
    """Four threads post sales for three members (group commits of several commands, clashes
    retried); each passes a snapshot; an expiry run saves several lots of one member at once; a
    fresh process goes on from the snapshot."""
    now = datetime.now(UTC)
    ledger = Ledger(settings)
    try:
        ledger.rules.publish(
            ruleset(doc(SPEC_EXAMPLE, effective_from="2020-01-01T00:00:00+08:00")), "t"
        )
        ledger.access.configure_store("S1", RegisterStore(name="One", kind="franchise"), "t")
        for card in ("M1", "M2", "M3"):
            ledger.members.enrol(EnrolMember(member_id=card, store_id="S1"), "t", now)
        with ThreadPoolExecutor(max_workers=4) as pool:
            sales = [_sale(n, f"M{n % 3 + 1}", now) for n in range(306)]
            list(pool.map(lambda sale: ledger.sales.post(sale, "op", now), sales))
        assert ledger.core.snapshots is not None
        assert list(ledger.core.snapshots.get(ledger.members.key("M1")))  # past version 100
        later = now + timedelta(days=800)
        assert ledger.runs.expire(later, "t", later).lots_expired > 3  # several per member
    finally:
        ledger.close()
    restarted = Ledger(settings)
    try:
        restarted.sales.post(_sale(1_000, "M1", later), "op", later)
        report = check_chains(stored_rows(restarted), plain(restarted))
    finally:
        restarted.close()
    assert report.broken == 0 and report.first == []
    assert report.events > 306 * 2 + 3

"""`ledger export` / `ledger import`: the whole log round-trips exactly, on both stores and from
SQLite to PostgreSQL, and an import never writes into a store that already has events."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from uuid import UUID

import msgspec
import pytest
from eventsourcing.persistence import StoredEvent

from ledger.application import Ledger
from ledger.domain.apikey import Principal
from ledger.domain.commands import (
    AdjustPoints,
    EnrolMember,
    PostSale,
    RefundLine,
    RefundSale,
    RegisterStore,
    SaleLine,
    Voucher,
)
from ledger.settings import Settings
from replay_tools import logio
from replay_tools.logio import LogError, LogEvent, export_log, import_log, read_header
from tests.conftest import TEST_MASTER_KEY, new_pg_schema
from tests.rulesets import SPEC_EXAMPLE, doc, ruleset

pytestmark = pytest.mark.integration
NOW = datetime(2026, 6, 15, 4, 0, tzinfo=UTC)
CARDS = ("M1", "M2")


def _at(hours_ago: int) -> datetime:
    return NOW - timedelta(hours=hours_ago)


def build_chain(ledger: Ledger) -> None:
    """Rules, two stores, two members, sales, a refund, a redemption and a void, an adjustment."""
    ledger.rules.publish(
        ruleset(doc(SPEC_EXAMPLE, effective_from="2020-01-01T00:00:00+08:00")), "t"
    )
    ledger.access.configure_store(
        "S1", RegisterStore(name="One", kind="franchise", franchisee="F1"), "t"
    )
    ledger.access.configure_store("S2", RegisterStore(name="Two", kind="direct"), "t")
    ledger.members.enrol(
        EnrolMember(member_id="M1", store_id="S1", birthday=date(1990, 6, 1)), "t", NOW
    )
    ledger.members.enrol(EnrolMember(member_id="M2", store_id="S2", name="王小明"), "t", NOW)
    for n, (store, card, fen) in enumerate(
        [("S1", "M1", 50_000), ("S2", "M1", 12_345), ("S2", "M2", 250_000), ("S1", "M2", 999)]
    ):
        lines = [
            SaleLine(sku="A", category="otc", amount_fen=fen),
            SaleLine(sku="B", category="tcm", amount_fen=1_000),
        ]
        sale = PostSale(
            store_id=store, receipt_no=f"R{n}", member_id=card, occurred_at=_at(10 - n), lines=lines
        )
        ledger.sales.post(sale, "pos", NOW)
    refund = RefundSale(
        refund_no="RF1", occurred_at=_at(5), lines=[RefundLine(line_no=1, amount_fen=2_000)]
    )
    ledger.sales.refund("S1", "R0", refund, "pos", NOW)
    for number in ("X1", "X2"):
        voucher = Voucher(
            store_id="S2", redemption_no=number, member_id="M1", occurred_at=_at(4), points=100
        )
        ledger.redemptions.redeem(voucher, "pos", NOW)
    ledger.redemptions.void("S2", "X2", "pos", NOW)
    adjustment = AdjustPoints(adjustment_no="A1", points=50, reason="goodwill", ticket="T-1")
    ledger.stored_value.adjust("M2", adjustment, "service", NOW)


def _log(ledger: Ledger) -> list[tuple[str, int, str, bytes]]:
    """Every stored event in notification order, without the ids (which may have gaps)."""
    notifications = ledger.core.recorder.select_notifications(1, 100_000)
    return [(str(n.originator_id), n.originator_version, n.topic, n.state) for n in notifications]


def _other_url(settings: Settings, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if settings.database_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'other.db'}"
    return new_pg_schema(request.getfixturevalue("pg_database"))


@pytest.fixture
def source(settings: Settings) -> Iterator[Ledger]:
    ledger = Ledger(settings)
    build_chain(ledger)
    yield ledger
    ledger.close()


@pytest.fixture
def target(settings: Settings, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Ledger]:
    """An empty store of the same kind as `settings`."""
    other = msgspec.structs.replace(settings, database_url=_other_url(settings, tmp_path, request))
    ledger = Ledger(other)
    yield ledger
    ledger.close()


def _assert_same_ledger(source: Ledger, target: Ledger) -> None:
    assert _log(target) == _log(source)
    for card in CARDS:
        assert target.members.view(card, NOW) == source.members.view(card, NOW)
    assert target.sales.record("S1", "R0") == source.sales.record("S1", "R0")
    assert target.access.get_store("S1") == source.access.get_store("S1")


def test_export_then_import_into_an_empty_store_round_trips_exactly(
    source: Ledger, target: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logio, "PAGE_EVENTS", 5)  # several pages and batches from a small chain
    monkeypatch.setattr(logio, "BATCH_EVENTS", 7)
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    exported = export_log(source, first)
    assert exported == len(_log(source)) > 20
    header = read_header(first)
    assert (header.application, header.count) == ("Ledger", exported)
    assert import_log(target, first) == exported
    assert export_log(target, second) == exported
    assert second.read_bytes() == first.read_bytes()
    _assert_same_ledger(source, target)


def test_import_from_sqlite_into_postgresql_round_trips_exactly(
    tmp_path: Path, pg_database: str
) -> None:
    lite = Ledger(
        Settings(database_url=f"sqlite:///{tmp_path / 'a.db'}", master_key=TEST_MASTER_KEY)
    )
    pg = Ledger(Settings(database_url=new_pg_schema(pg_database), master_key=TEST_MASTER_KEY))
    try:
        build_chain(lite)
        export_log(lite, tmp_path / "lite.jsonl")
        import_log(pg, tmp_path / "lite.jsonl")
        export_log(pg, tmp_path / "pg.jsonl")
        assert (tmp_path / "pg.jsonl").read_bytes() == (tmp_path / "lite.jsonl").read_bytes()
        _assert_same_ledger(lite, pg)
    finally:
        lite.close()
        pg.close()


def test_member_keys_travel_beside_the_log_and_an_erased_member_stays_erased(
    source: Ledger, target: Ledger, tmp_path: Path
) -> None:
    source.members.enrol(EnrolMember(member_id="M3", store_id="S1", phone="13900000000"), "t", NOW)
    source.personal.erase("M3", "asked", "admin", NOW)
    path = tmp_path / "log.jsonl"
    export_log(source, path)
    keys = logio.keys_path(path)
    assert oct(keys.stat().st_mode & 0o777) == "0o600"
    # M1 (birthday), M2 (name) and the identity index's own secret; not M3
    assert len(keys.read_bytes().splitlines()) == 3
    import_log(target, path)
    reader = Principal(key_id="k", role="service", store_id=None)
    copied = target.personal.read("M2", reader, "export", NOW)
    assert copied.data is not None
    assert copied.data.name == "王小明"
    assert target.personal.read("M3", reader, "export", NOW).status == "erased"


def test_importing_into_a_store_with_events_is_refused_and_writes_nothing(
    source: Ledger, target: Ledger, tmp_path: Path
) -> None:
    export_log(source, tmp_path / "log.jsonl")
    target.access.configure_store("S9", RegisterStore(name="Nine", kind="direct"), "t")
    before = _log(target)
    with pytest.raises(LogError, match="not empty"):
        import_log(target, tmp_path / "log.jsonl")
    assert _log(target) == before


def test_a_truncated_file_is_refused_before_anything_is_written(
    source: Ledger, target: Ledger, tmp_path: Path
) -> None:
    path = tmp_path / "log.jsonl"
    export_log(source, path)
    path.write_bytes(b"".join(path.read_bytes().splitlines(keepends=True)[:-1]))
    with pytest.raises(LogError, match="promises"):
        import_log(target, path)
    assert target.core.recorder.max_notification_id() is None


@pytest.mark.unit
def test_state_that_is_not_utf8_round_trips_as_base64() -> None:
    state = bytes(range(256))
    stored = StoredEvent(originator_id=UUID(int=42), originator_version=3, topic="a:B", state=state)
    line = msgspec.json.encode(LogEvent.of(stored))
    assert b'"state_b64"' in line
    assert msgspec.json.decode(line, type=LogEvent).stored() == stored


def test_the_commands_export_and_import_print_a_summary(
    source: Ledger,
    settings: Settings,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = argparse.ArgumentParser()
    logio.add_commands(parser.add_subparsers(dest="command", required=True))
    monkeypatch.setenv("LEDGER_MASTER_KEY", TEST_MASTER_KEY.hex())
    path = tmp_path / "log.jsonl"

    def run(url: str, *argv: str) -> int:
        monkeypatch.setenv("LEDGER_DATABASE_URL", url)
        args = parser.parse_args(argv)
        code: int = args.run(args)
        return code

    count = len(_log(source))
    assert run(settings.database_url, "export", str(path)) == 0
    out = capsys.readouterr().out
    assert re.fullmatch(
        rf"export: {count} events to {path} in \d+\.\d s \([\d,]+ events/s\)\n", out
    )
    assert run(settings.database_url, "import", str(path)) == 1
    assert "not empty" in capsys.readouterr().err
    assert run(_other_url(settings, tmp_path, request), "import", str(path)) == 0
    assert capsys.readouterr().out.startswith(f"import: {count} events from {path} in ")


def test_the_export_is_readable_by_its_owner_only(source: Ledger, tmp_path: Path) -> None:
    """Finding 8 of issue 14: the log (every purchase: health data) was written 0644."""
    path = tmp_path / "log.jsonl"
    path.write_text("a file left from before, with a wide mode")
    path.chmod(0o644)
    export_log(source, path)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert oct(logio.keys_path(path).stat().st_mode & 0o777) == "0o600"

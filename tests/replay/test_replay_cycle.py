"""The replay tools together on a demo chain, on both stores, through the `ledger` command:
`demo` → `rebuild` → `verify` passes; `export` → `import` into an empty store → `rebuild` gives
the same views; and `verify` catches a view edited behind the projections' back."""

from __future__ import annotations

from pathlib import Path

import pytest

from entry.cli import main
from ledger.settings import Settings
from projections.runtime import Projections
from projections.sqlview import Row
from tests.conftest import STORES, TEST_MASTER_KEY, new_pg_schema

pytestmark = pytest.mark.integration
DEMO = ["demo", "--stores", "3", "--members", "25", "--days", "20", "--seed", "3"]


def _use(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("LEDGER_DATABASE_URL", url)
    monkeypatch.setenv("LEDGER_MASTER_KEY", TEST_MASTER_KEY.hex())


def _views(url: str) -> dict[str, list[Row]]:
    """Every view table; history rows without their log position (an import renumbers)."""
    views = Projections(Settings(database_url=url, master_key=TEST_MASTER_KEY))
    try:
        tables: dict[str, list[Row]] = {}
        for name, view in views.views.items():
            for table, rows in view.dump():
                renumbered = (name, table) == ("history", "entries")
                tables[f"{name}.{table}"] = (
                    sorted(r[:1] + r[2:] for r in rows) if renumbered else rows
                )
        return tables
    finally:
        views.stop()


@pytest.fixture(params=STORES)
def second_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'imported.db'}"
    pg: str = request.getfixturevalue("pg_database")
    return new_pg_schema(pg)


def test_demo_rebuild_verify_export_import(
    database_url: str,
    second_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _use(monkeypatch, database_url)
    assert main(DEMO) == 0
    assert main(["rebuild"]) == 0
    assert "rebuild: history, settlement, members, analytics, daily from" in capsys.readouterr().out
    assert main(["verify"]) == 0
    assert "identical to a replay" in capsys.readouterr().out
    original = _views(database_url)
    assert len(original["history.entries"]) > 50
    assert original["settlement.rows"] and original["members.lots"]

    log = tmp_path / "log.jsonl"
    assert main(["export", str(log)]) == 0
    _use(monkeypatch, second_url)
    assert main(["import", str(log)]) == 0
    assert main(["rebuild"]) == 0
    assert main(["verify"]) == 0
    assert _views(second_url) == original


def test_verify_names_a_tampered_view(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _use(monkeypatch, settings.database_url)
    assert main(DEMO) == 0
    assert main(["rebuild", "settlement"]) == 0
    views = Projections(settings, ["settlement"])
    try:
        with views.settlement.transaction() as cursor:
            cursor.execute("UPDATE {rows} SET redemption_cost_fen = redemption_cost_fen + 1")
    finally:
        views.stop()
    capsys.readouterr()
    assert main(["verify", "settlement"]) == 1
    out = capsys.readouterr().out
    assert "settlement.rows: live has" in out and "differences in settlement" in out

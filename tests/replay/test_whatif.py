"""`ledger what-if`: the sales of a period revalued under another rule set, per store and in
total, with the tier and birthday the POS used, and nothing written to the log."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import msgspec
import pytest

from ledger.application import Ledger
from ledger.domain.commands import EnrolMember, PostSale, RegisterStore, SaleLine
from ledger.domain.sale import Sale, SaleReceipt
from ledger.settings import Settings
from replay_tools import whatif
from replay_tools.whatif import StoreWhatIf, what_if
from tests.conftest import TEST_MASTER_KEY
from tests.rulesets import accrual, doc, ruleset

pytestmark = pytest.mark.integration
NOW = datetime(2026, 7, 1, tzinfo=UTC)
FROM = datetime.fromisoformat("2026-05-01T00:00:00+08:00")
TO = datetime.fromisoformat("2026-06-01T00:00:00+08:00")
LEVELS = [
    {"code": "normal", "min_spend_fen": 0, "discount": "0.97"},
    {"code": "silver", "min_spend_fen": 100_000, "discount": "0.95", "points_multiplier": "2"},
]
RULES_A = doc(
    accrual=accrual(category_multipliers={"tcm": "2"}, birthday={"multiplier": "3"}),
    tiers={"levels": LEVELS},
    settlement={"cost_per_point_fen": "2.5"},
)
RULES_B = doc(  # the TCM multiplier doubled
    RULES_A, accrual=accrual(category_multipliers={"tcm": "4"}, birthday={"multiplier": "3"})
)


def _line(category: str, amount_fen: int) -> SaleLine:
    return SaleLine(sku=category.upper(), category=category, amount_fen=amount_fen)


# (store, receipt, card, business time, lines); points under A → B worked out by hand below.
SALES: list[tuple[str, str, str, str, list[SaleLine]]] = [
    # before the period: not counted
    ("S1", "R0", "M1", "2026-04-30T23:59:59+08:00", [_line("tcm", 10_000)]),
    # A: 10000×2 + 5000 = 25000 fen → 250; B: 10000×4 + 5000 → 450
    ("S1", "R1", "M1", "2026-05-10T10:00:00+08:00", [_line("tcm", 10_000), _line("otc", 5_000)]),
    # M3's birthday (×3): A: 1234×2×3 = 7404 → 74; B: 1234×4×3 = 14808 → 148
    ("S1", "R2", "M3", "2026-05-20T10:00:00+08:00", [_line("tcm", 1_234)]),
    # M2 still normal (this sale upgrades to silver): A = B = 1000
    ("S2", "R3", "M2", "2026-05-11T10:00:00+08:00", [_line("otc", 100_000)]),
    # M2 silver (×2): A: (565×2 + 1000)×2 = 4260 → 42; B: (565×4 + 1000)×2 = 6520 → 65
    ("S2", "R4", "M2", "2026-05-12T10:00:00+08:00", [_line("tcm", 565), _line("otc", 1_000)]),
    # at the end of the period, excluded: [from, to)
    ("S2", "R5", "M1", "2026-06-01T00:00:00+08:00", [_line("tcm", 10_000)]),
]


@pytest.fixture
def ledger(settings: Settings) -> Iterator[Ledger]:
    app = Ledger(settings)
    app.rules.publish(ruleset(RULES_A), "t")
    app.access.configure_store(
        "S1", RegisterStore(name="One", kind="franchise", franchisee="F1"), "t"
    )
    app.access.configure_store("S2", RegisterStore(name="Two", kind="direct"), "t")
    app.members.enrol(EnrolMember(member_id="M1", store_id="S1"), "t", NOW)
    app.members.enrol(EnrolMember(member_id="M2", store_id="S2"), "t", NOW)
    app.members.enrol(
        EnrolMember(member_id="M3", store_id="S1", birthday=date(1990, 5, 20)), "t", NOW
    )
    for store, receipt, card, at, lines in SALES:
        sale = PostSale(
            store_id=store,
            receipt_no=receipt,
            member_id=card,
            occurred_at=datetime.fromisoformat(at),
            lines=lines,
        )
        app.sales.post(sale, "pos", NOW)
    yield app
    app.close()


def test_the_recorded_sales_earned_what_the_hand_computation_says(ledger: Ledger) -> None:
    earned = {r: ledger.sales.record(s, r) for s, r, *_ in SALES}
    points = {r: sale.valuation.points for r, sale in earned.items() if isinstance(sale, Sale)}
    assert points == {"R0": 200, "R1": 250, "R2": 74, "R3": 1000, "R4": 42, "R5": 200}


def test_doubling_a_category_multiplier_gives_the_hand_computed_figures(ledger: Ledger) -> None:
    report = what_if(ledger, ruleset(RULES_B), FROM, TO)
    assert report.stores == [
        StoreWhatIf(
            store_id="S1",
            sales=2,
            points_earned=324,
            points_would_earn=598,
            difference=274,
            liability_difference_fen=685,  # 274 × 2.5
        ),
        StoreWhatIf(
            store_id="S2",
            sales=2,
            points_earned=1042,
            points_would_earn=1065,
            difference=23,
            liability_difference_fen=58,  # 23 × 2.5 = 57.5, half-up
        ),
    ]
    totals = report.totals
    assert (totals.sales, totals.points_earned, totals.points_would_earn) == (4, 1366, 1663)
    assert (totals.difference, totals.liability_difference_fen) == (297, 743)  # 742.5 half-up


def test_the_rules_in_force_give_no_difference_and_nothing_is_written(ledger: Ledger) -> None:
    before = ledger.core.recorder.max_notification_id()
    report = what_if(ledger, ruleset(RULES_A), FROM, TO)
    assert [(s.store_id, s.sales, s.difference) for s in report.stores] == [
        ("S1", 2, 0),
        ("S2", 2, 0),
    ]
    assert (report.totals.difference, report.totals.liability_difference_fen) == (0, 0)
    what_if(ledger, ruleset(RULES_B), FROM, TO)
    assert ledger.core.recorder.max_notification_id() == before


def _run(settings: Settings, monkeypatch: pytest.MonkeyPatch, *argv: str) -> int:
    parser = argparse.ArgumentParser()
    whatif.add_commands(parser.add_subparsers(dest="command", required=True))
    monkeypatch.setenv("LEDGER_MASTER_KEY", TEST_MASTER_KEY.hex())
    monkeypatch.setenv("LEDGER_DATABASE_URL", settings.database_url)
    args = parser.parse_args(["what-if", *argv, "--from", FROM.isoformat(), "--to", TO.isoformat()])
    code: int = args.run(args)
    return code


def test_the_command_prints_one_json_document_with_json(
    ledger: Ledger,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rules = tmp_path / "rules-b.json"
    rules.write_bytes(msgspec.json.encode(RULES_B))
    assert _run(settings, monkeypatch, str(rules), "--json") == 0
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert document["from"] == FROM.isoformat() and document["to"] == TO.isoformat()
    assert "rule_version_alternative" not in document
    assert [s["difference"] for s in document["stores"]] == [274, 23]
    assert document["totals"]["liability_difference_fen"] == 743
    assert captured.err.startswith("what-if: 4 sales at 2 stores")


def test_the_command_prints_a_table_and_a_summary_line(
    ledger: Ledger,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rules = tmp_path / "rules-b.json"
    rules.write_bytes(msgspec.json.encode(RULES_B))
    assert _run(settings, monkeypatch, str(rules)) == 0
    out = capsys.readouterr().out
    assert "S1" in out and "+274" in out and "+743" in out
    assert out.splitlines()[-1].startswith("what-if: 4 sales at 2 stores")


def test_the_command_compares_with_a_published_version(
    ledger: Ledger,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert _run(settings, monkeypatch, "--rule-version", "1", "--json") == 0
    document = json.loads(capsys.readouterr().out)
    assert document["rule_version_alternative"] == 1
    assert document["totals"]["difference"] == 0
    assert _run(settings, monkeypatch, "--rule-version", "9") == 1
    assert "no published rule set version 9" in capsys.readouterr().err


def test_an_invalid_rules_file_is_refused(
    ledger: Ledger,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rules = tmp_path / "bad.json"
    rules.write_bytes(msgspec.json.encode(doc(RULES_A, accrual=accrual(typo=1))))
    assert _run(settings, monkeypatch, str(rules)) == 1
    assert "typo" in capsys.readouterr().err


def test_an_offline_sale_is_revalued_with_the_tier_held_at_its_time(settings: Settings) -> None:
    """The what-if replay values with the POS's function and inputs (SPEC 2.1): an offline
    sale dated before the member's upgrade, uploaded after it, is valued at the tier it was
    held at then, and its insured part earns nothing; under the same rules nothing differs."""
    app = Ledger(settings)
    try:
        app.rules.publish(ruleset(RULES_A), "t")
        app.access.configure_store("S1", RegisterStore(name="One", kind="direct"), "t")
        app.members.enrol(EnrolMember(member_id="M4", store_id="S1"), "t", NOW)
        upgrade = PostSale(
            store_id="S1",
            receipt_no="U1",
            member_id="M4",
            occurred_at=datetime.fromisoformat("2026-05-15T10:00:00+08:00"),
            lines=[_line("otc", 100_000)],
        )
        upgraded, _ = app.sales.post(upgrade, "pos", NOW)
        assert isinstance(upgraded, SaleReceipt) and upgraded.tier_changed  # silver (×2)
        offline = msgspec.structs.replace(
            upgrade,
            receipt_no="U0",
            occurred_at=datetime.fromisoformat("2026-05-10T10:00:00+08:00"),
            lines=[SaleLine(sku="RX", category="rx", amount_fen=10_000, insured_fen=4_000)],
        )
        receipt, _ = app.sales.post(offline, "pos", NOW)
        assert receipt.points_earned == 60  # normal then: (10000 − 4000) / 100, not × 2
        report = what_if(app, ruleset(RULES_A), FROM, TO)
        assert (report.totals.sales, report.totals.points_earned) == (2, 1060)
        assert report.totals.difference == 0
    finally:
        app.close()

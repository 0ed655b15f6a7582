"""`ledger demo`: a small demo chain has everything a demo should show, on both stores, and the
same seed writes the same events (voids inside the period); the command ends the period
yesterday by default, prints freshly issued keys and sample cards, and refuses a period in the
future and a store that already has events."""

from __future__ import annotations

import argparse
import re
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest

from ledger.application import Ledger
from ledger.domain.model import now_utc
from ledger.settings import Settings
from replay_tools import demo
from replay_tools.demo import DemoPlan, PlanRefused, generate
from tests.conftest import TEST_MASTER_KEY

pytestmark = pytest.mark.integration

# 45 days across the clearance of last year's points (2025-04-01) and a mid-period rule version;
# seed 9 is one whose 200 members do a bit of everything, voids, conversions and stored value
# spent at another store than it was converted at included.
RICH = DemoPlan(stores=3, members=200, days=45, seed=9, start=date(2025, 3, 1))


def _events(ledger: Ledger) -> list[tuple[str, Any]]:
    """Every event in log order, as (event class name, the event decoded)."""
    return [
        (n.topic.rsplit(".", 1)[-1].rsplit(":", 1)[-1], ledger.core.mapper.to_domain_event(n))
        for n in ledger.core.recorder.select_notifications(1, 1_000_000)
    ]


def test_a_small_demo_has_stores_tiers_and_every_kind_of_movement(settings: Settings) -> None:
    ledger = Ledger(settings)
    try:
        result = generate(ledger, RICH)
        events = _events(ledger)
        counts = Counter(name for name, _ in events)
        stores = [ledger.access.get_store(s) for s in ("S001", "S002", "S003")]
        now = now_utc()
        tiers = {ledger.members.view(f"{n:012d}", now).tier for n in range(1, RICH.members + 1)}
    finally:
        ledger.close()

    assert {s.kind for s in stores if s is not None} == {"direct", "franchise"}
    assert result.events == len(events)
    assert counts["RuleSetPublished"] == result.rule_versions == 2
    assert counts["MemberEnrolled"] == result.members == RICH.members
    assert counts["SaleRecorded"] == counts["PointsAccrued"] == result.sales > 0
    assert counts["SaleRefunded"] == counts["PointsReversed"] == result.refunds > 0
    assert counts["NonMemberSaleRecorded"] == result.non_member_sales > 0
    assert counts["NonMemberSaleRefunded"] == result.non_member_refunds
    assert counts["PointsRedeemed"] == result.redemptions > 0
    assert counts["RedemptionVoided"] == result.voids > 0
    assert counts["PointsConverted"] == result.conversions > 0
    assert counts["StoredValueDebited"] == result.payments > 0
    assert counts["PointsAdjusted"] == result.adjustments > result.migrated_members > 0
    assert counts["PointsExpired"] > 0 and result.points_expired > 0
    assert counts["TierChanged"] >= result.upgrades > 0
    assert len(tiers) > 1

    home = {e.member_id: e.store_id for name, e in events if name == "MemberEnrolled"}
    redeemed = [e for name, e in events if name == "RedemptionRecorded"]
    assert len({type(e.request).__name__ for e in redeemed}) >= 3
    assert any(e.store_id != home[e.member_id] for e in redeemed)  # earned in one, spent in another
    sales = [e for name, e in events if name == "SaleRecorded"]
    assert all(isinstance(line.amount_fen, int) for sale in sales for line in sale.lines)
    assert {line.category for sale in sales for line in sale.lines} >= {
        "rx",
        "otc",
        "supplement",
        "tcm",
        "device",
    }
    assert any(line.no_points for sale in sales for line in sale.lines)
    insured = [line for sale in sales for line in sale.lines if line.insured_fen]
    assert len(insured) == result.insured_lines > 0
    assert all(0 < line.insured_fen <= line.amount_fen for line in insured)
    assert all(line.category == "rx" for line in insured)  # medical insurance pays for drugs

    # contract version 2: a catalogue, bonuses, stored value spent at other stores
    bonuses = [e for name, e in events if name == "BonusGranted"]
    assert counts["BonusGranted"] == result.bonuses > 0
    assert {(b.code, b.cost_to) for b in bonuses} == {("registration", "hq"), ("referral", "store")}
    assert all(b.referred_member_id for b in bonuses if b.code == "referral")
    gifts = [
        e.request for e in redeemed if type(e.request).__name__ in ("StoredGift", "StoredExchange")
    ]
    assert gifts and all(g.sku and g.cost_fen is None for g in gifts)  # named by SKU only
    converted_at: dict[str, set[str]] = {}
    for name, e in events:
        if name == "PointsConverted":
            converted_at.setdefault(str(e.originator_id), set()).add(e.store_id)
    paid = [e for name, e in events if name == "StoredValueDebited"]
    assert any(e.store_id not in converted_at.get(str(e.originator_id), set()) for e in paid)

    # A void happens at its business time, in the period (and its month's settlement), not on
    # the day the demo ran.
    start = datetime(2025, 3, 1, tzinfo=ZoneInfo("Asia/Shanghai"))
    voids = [e for name, e in events if name == "RedemptionVoided"]
    assert voids and all(start <= e.occurred_at < start + timedelta(days=45) for e in voids)


def _stable(ledger: Ledger) -> list[tuple[str, Any]]:
    """The log as (event class, event state) without what a rerun cannot reproduce: the
    recorded `timestamp` of every event (and so its hash, `chain`), and the ciphertext of
    personal data (a random key and nonce per member: only whether there is any is compared).
    Everything else is compared, ids included: they are uuid5 of card, store and receipt
    numbers, and keyed hashes under the same master key; and the business time of voids,
    which the demo gives the ledger as the void's `now`."""
    out = []
    for name, event in _events(ledger):
        state = msgspec.to_builtins(event)
        del state["timestamp"], state["chain"]
        if name == "MemberEnrolled":
            state["sealed"] = state["sealed"] is not None
        out.append((name, state))
    return out


def test_one_seed_writes_the_same_events_twice(tmp_path: Path) -> None:
    runs = []
    for n in (1, 2):
        url = f"sqlite:///{tmp_path / f'demo{n}.db'}"
        ledger = Ledger(Settings(database_url=url, master_key=TEST_MASTER_KEY))
        try:
            summary = generate(ledger, RICH)
            runs.append((msgspec.structs.replace(summary, seconds=0.0), _stable(ledger)))
        finally:
            ledger.close()
    (first_summary, first), (second_summary, second) = runs
    assert first_summary == second_summary
    assert first_summary.voids > 0  # voids too write the same events twice
    assert len(first) == len(second) > 0
    assert first == second


def _command(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ledger")
    demo.add_commands(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_the_command_ends_yesterday_prints_keys_and_cards_and_refuses_what_it_cannot_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("LEDGER_DATABASE_URL", url)
    monkeypatch.setenv("LEDGER_MASTER_KEY", TEST_MASTER_KEY.hex())
    args = _command(["demo", "--stores", "2", "--members", "8", "--days", "20", "--seed", "5"])
    assert (args.stores, args.members, args.days, args.start) == (2, 8, 20, None)
    assert args.run(args) == 0
    out = capsys.readouterr().out
    assert out.startswith("demo: 2 stores (1 franchise), 8 members, ")
    keys = dict(re.findall(r"^  (service|finance|pos) +(pl_\S+)", out, re.M))
    cards = re.findall(r"^  (\d{12}) +\w+ +[\d,]+ points  \w", out, re.M)
    assert "console: http://127.0.0.1:8000/console" in out

    zone = ZoneInfo("Asia/Shanghai")
    today = datetime.now(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    ledger = Ledger(Settings(database_url=url, master_key=TEST_MASTER_KEY))
    try:
        principals = {role: ledger.access.authenticate(key) for role, key in keys.items()}
        sales = [e for name, e in _events(ledger) if name == "SaleRecorded"]
        assert len(cards) == 4 and all(ledger.members.view(c, now_utc()) for c in cards)
    finally:
        ledger.close()
    assert {role: p.role for role, p in principals.items() if p} == {
        "service": "service",
        "finance": "finance",
        "pos": "pos",
    }
    assert principals["pos"] is not None and principals["pos"].store_id == "S001"
    # The period is the 20 days before today (chain time): it ends yesterday.
    assert sales and all(today - timedelta(days=20) <= e.occurred_at < today for e in sales)
    assert demo.default_start(20, "Asia/Shanghai") == (today - timedelta(days=20)).date()

    assert args.run(args) == 2  # the store has events now
    assert "empty event store" in capsys.readouterr().err
    future = _command(["demo", "--start", f"{now_utc().year + 1}-01-01", "--days", "1"])
    assert future.run(future) == 2
    assert "after now" in capsys.readouterr().err


def test_a_plan_with_nothing_to_do_is_refused() -> None:
    with pytest.raises(PlanRefused):
        demo.check_plan(DemoPlan(members=0), now_utc())

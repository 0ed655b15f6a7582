"""Lot expiry (SPEC 2.5), the return window, and tier arithmetic (SPEC 2.2)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from ledger.policies.chaintime import add_months, next_daily
from ledger.policies.lots import available_at, expires_at
from ledger.policies.tiers import SpendEntry, level_for_spend, next_tier, window_spend
from tests.rulesets import SPEC_EXAMPLE, accrual, doc, ruleset

pytestmark = pytest.mark.unit
SH = ZoneInfo("Asia/Shanghai")


def test_points_of_2025_expire_at_the_start_of_april_2026() -> None:
    rules = ruleset(doc(expiry={"clearance_month": 3, "clearance_day": 31}))
    assert expires_at(rules, datetime(2025, 7, 1, 12, tzinfo=SH)) == datetime(2026, 4, 1, tzinfo=SH)


def test_the_earlier_of_rolling_and_clearance_wins() -> None:
    rules = ruleset(doc(expiry={"rolling_months": 12, "clearance_month": 3, "clearance_day": 31}))
    early = datetime(2025, 2, 10, 15, 30, tzinfo=SH)  # rolling: 2026-02-10 15:30, clearance later
    assert expires_at(rules, early) == datetime(2026, 2, 10, 15, 30, tzinfo=SH)
    late = datetime(2025, 11, 10, tzinfo=SH)  # clearance 2026-04-01 comes first
    assert expires_at(rules, late) == datetime(2026, 4, 1, tzinfo=SH)


def test_clearance_year_is_the_chain_year_of_the_accrual() -> None:
    rules = ruleset(doc(expiry={"clearance_month": 3, "clearance_day": 31}))
    new_year_in_shanghai = datetime(
        2025, 12, 31, 17, tzinfo=ZoneInfo("UTC")
    )  # 2026-01-01 01:00 +08
    assert expires_at(rules, new_year_in_shanghai) == datetime(2027, 4, 1, tzinfo=SH)


def test_no_expiry_section_means_points_never_expire() -> None:
    assert expires_at(ruleset(doc()), datetime(2025, 1, 1, tzinfo=SH)) is None


def test_adding_months_clamps_to_the_end_of_a_shorter_month() -> None:
    assert add_months(datetime(2025, 1, 31, 9, tzinfo=SH), 1, SH) == datetime(
        2025, 2, 28, 9, tzinfo=SH
    )
    assert add_months(datetime(2024, 2, 29, 9, tzinfo=SH), -24, SH) == datetime(
        2022, 2, 28, 9, tzinfo=SH
    )


def test_lock_days_keep_new_points_pending() -> None:
    rules = ruleset(doc(accrual=accrual(lock_days=7)))
    sale = datetime(2026, 3, 1, 10, tzinfo=SH)
    assert available_at(rules, sale) == sale + timedelta(days=7)


def test_tier_spend_counts_only_the_rolling_window() -> None:
    rules = ruleset(SPEC_EXAMPLE)
    now = datetime(2026, 6, 1, tzinfo=SH)
    entries = [
        SpendEntry(datetime(2024, 5, 31, tzinfo=SH), 500_000),  # older than 24 months
        SpendEntry(datetime(2024, 6, 2, tzinfo=SH), 150_000),
        SpendEntry(datetime(2026, 5, 31, tzinfo=SH), 60_000),
        SpendEntry(datetime(2026, 6, 2, tzinfo=SH), 99_999),  # after as_of
    ]
    assert window_spend(entries, now, rules) == 210_000


def test_level_and_next_tier_follow_the_thresholds() -> None:
    rules = ruleset(SPEC_EXAMPLE)
    level = level_for_spend(rules, 200_000)
    assert level is not None and level.code == "silver"
    upcoming = next_tier(rules, "silver", 250_000)
    assert upcoming is not None
    assert (upcoming.code, upcoming.spend_needed_fen) == ("gold", 750_000)
    assert next_tier(rules, "vip", 9_000_000) is None


def test_the_daily_run_is_the_next_0005_in_chain_time() -> None:
    zone = ZoneInfo("Asia/Shanghai")
    run_at = time(0, 5)
    before = datetime(2026, 3, 31, 16, 4, tzinfo=UTC)  # 00:04 on 1 April in Shanghai
    assert next_daily(before, run_at, zone) == datetime(2026, 4, 1, 0, 5, tzinfo=zone)
    exactly = datetime(2026, 4, 1, 0, 5, tzinfo=zone)
    assert next_daily(exactly, run_at, zone) == datetime(2026, 4, 2, 0, 5, tzinfo=zone)

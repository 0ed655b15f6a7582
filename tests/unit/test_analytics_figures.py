"""The analytics figures as pure functions (SPEC 2.9): windows, ratios, RFM classes, refund
outliers."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from ledger.domain.errors import InvalidInput
from projections.analytics_report import (
    MemberActivity,
    StoreMonth,
    member_figures,
    ratio,
    refund_outliers,
    rfm_figures,
    windows,
)

pytestmark = pytest.mark.unit


def test_windows_cross_the_year_and_count_days_back_from_the_month_after() -> None:
    w = windows("2026-01")
    assert (w.period_from, w.end) == (date(2026, 1, 1), date(2026, 2, 1))
    assert w.active_from == date(2025, 11, 1)
    assert w.recent_from == date(2025, 11, 3)  # 90 days before 1 February
    assert w.churn_base_from == date(2025, 5, 7)  # 180 days before that
    assert w.rfm_from == date(2025, 2, 1)
    assert windows("2025-12").end == date(2026, 1, 1)


@pytest.mark.parametrize("period", ["2026-13", "2026-00", "26-01", "2026-1", ""])
def test_a_malformed_period_is_invalid_input(period: str) -> None:
    with pytest.raises(InvalidInput):
        windows(period)


def test_ratios_round_half_up_to_four_places_and_have_no_zero_denominator() -> None:
    assert ratio(2, 3) == Decimal("0.6667")
    assert ratio(1, 8) == Decimal("0.1250")
    assert ratio(1, 20000) == Decimal("0.0001")  # 0.00005 rounds up
    assert ratio(0, 5) == Decimal("0.0000")
    assert ratio(3, 0) is None


def _member(
    name: str, *, active: int = 0, recent: int = 0, base: int = 0, n: int = 1, fen: int = 100
) -> MemberActivity:
    last = date(2026, 6, 1) if recent else date(2026, 1, 1)
    return MemberActivity(name, active, recent, base, n, fen, last)


def test_churn_counts_only_the_regulars_of_the_half_year_before() -> None:
    members = [
        _member("once", base=1),  # one purchase is not a regular: not in the base
        _member("gone", base=2),
        _member("back", base=3, recent=1, active=1),
        _member("new", recent=2, active=2),
    ]
    figures = member_figures(total=10, new=1, activity=members)
    assert (figures.churn_base_members, figures.churned_members) == (2, 1)
    assert figures.churn_rate == Decimal("0.5000")
    assert (figures.active_members, figures.active_purchases) == (2, 3)
    assert figures.active_ratio == Decimal("0.2000")
    assert figures.average_purchase_frequency == Decimal("1.5000")


def test_rfm_splits_f_and_m_at_the_mean_exactly() -> None:
    members = [_member("a", recent=1, n=3, fen=300), _member("b", n=1, fen=100)]
    figures = rfm_figures(members, recent_from=date(2026, 4, 2))
    counts = {s.segment: s.members for s in figures.segments if s.members}
    # means 2 purchases and 200 fen: a is above both, b below both
    assert counts == {"important_value": 1, "general_winback": 1}
    tied = rfm_figures([_member("c", n=2, fen=5), _member("d", n=2, fen=5)], date(2026, 4, 2))
    assert {s.segment: s.members for s in tied.segments if s.members} == {"important_retention": 2}


def _store(store_id: str, sales_fen: int, refunded_fen: int) -> StoreMonth:
    return StoreMonth(store_id, 1, sales_fen, 0, 0, 1 if refunded_fen else 0, refunded_fen)


def test_a_refund_outlier_is_three_times_the_median_and_a_point_above_it() -> None:
    stores = [_store("S1", 10000, 100), _store("S2", 10000, 200), _store("S3", 10000, 2000)]
    assert [o.store_id for o in refund_outliers(stores)] == ["S3"]  # median 0.02, S3 0.2
    assert refund_outliers(stores[:2]) == []  # 0.02 vs a median of 0.015: not three times
    tiny = [_store("S1", 100000, 0), _store("S2", 100000, 0), _store("S3", 100000, 900)]
    assert refund_outliers(tiny) == []  # 0.009 above a median of 0: under one point
    no_sales = [_store("S1", 0, 500), _store("S2", 10000, 0)]
    assert refund_outliers(no_sales) == []  # refunds without sales have no rate

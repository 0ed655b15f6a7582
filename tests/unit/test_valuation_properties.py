"""Invariants of the valuation, checked on generated receipts and rule sets (hypothesis)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.domain.commands import SaleLine
from ledger.policies.valuation import MemberFacts, value_sale
from tests.rulesets import accrual, doc, ruleset

pytestmark = pytest.mark.unit
SH = ZoneInfo("Asia/Shanghai")
CATEGORIES = ["tcm", "supplement", "otc", ""]

rates = st.decimals(min_value=0, max_value=20, places=2, allow_nan=False, allow_infinity=False)
lines = st.lists(
    st.builds(
        SaleLine,
        sku=st.sampled_from(["A", "B", "PROMO"]),
        amount_fen=st.integers(min_value=0, max_value=5_000_000),
        category=st.sampled_from(CATEGORIES),
        no_points=st.booleans(),
        no_cumulative_spend=st.booleans(),
    ),
    min_size=1,
    max_size=8,
)
instants = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(SH)
)


@st.composite
def rule_sets(draw: st.DrawFn) -> dict[str, Any]:
    multipliers = {c: str(draw(rates)) for c in CATEGORIES if c and draw(st.booleans())}
    promo = {"sku": "PROMO", "multiplier": str(draw(rates))}
    days = [{"weekday": draw(st.integers(1, 7)), "multiplier": str(draw(rates))}]
    return doc(
        accrual=accrual(
            fen_per_point=draw(st.sampled_from([1, 50, 100, 1000, 333])),
            points_per_unit=draw(st.integers(1, 5)),
            category_multipliers=multipliers,
            sku_promotions=[promo],
            member_days=days,
            stacking=draw(st.sampled_from(["max", "multiply"])),
        )
    )


FACTS = MemberFacts(tier=None, birthday=None)


@given(rule_sets(), lines, instants)
def test_points_are_never_negative(
    document: dict[str, Any], receipt: list[SaleLine], at: datetime
) -> None:
    assert value_sale(ruleset(document), 1, at, receipt, FACTS).points >= 0


@given(rule_sets(), lines, instants, st.integers(min_value=0, max_value=7), st.integers(0, 100_000))
def test_points_never_fall_when_a_line_costs_more(
    document: dict[str, Any], receipt: list[SaleLine], at: datetime, index: int, extra: int
) -> None:
    rules = ruleset(document)
    i = index % len(receipt)
    bigger = list(receipt)
    bigger[i] = SaleLine(
        sku=receipt[i].sku,
        category=receipt[i].category,
        amount_fen=receipt[i].amount_fen + extra,
        no_points=receipt[i].no_points,
        no_cumulative_spend=receipt[i].no_cumulative_spend,
    )
    assert (
        value_sale(rules, 1, at, bigger, FACTS).points
        >= value_sale(rules, 1, at, receipt, FACTS).points
    )


@given(rule_sets(), lines, instants)
def test_floor_is_taken_once_over_the_whole_receipt(
    document: dict[str, Any], receipt: list[SaleLine], at: datetime
) -> None:
    rules = ruleset(document)
    whole = value_sale(rules, 1, at, receipt, FACTS)
    exact = (
        whole.weighted_fen * whole.receipt_multiplier * whole.points_per_unit / whole.fen_per_point
    )
    assert whole.points == int(exact.to_integral_value(rounding=ROUND_FLOOR))
    per_line = sum(value_sale(rules, 1, at, [line], FACTS).points for line in receipt)
    assert whole.points >= per_line  # flooring per line could only lose points
    assert whole.points - per_line < len(receipt)


@given(rule_sets(), lines, instants)
def test_valuation_is_deterministic_and_tier_spend_ignores_multipliers(
    document: dict[str, Any], receipt: list[SaleLine], at: datetime
) -> None:
    rules = ruleset(document)
    first = value_sale(rules, 1, at, receipt, FACTS)
    assert first == value_sale(rules, 1, at + timedelta(0), receipt, FACTS)
    assert first.spend_fen == sum(x.amount_fen for x in receipt if not x.no_cumulative_spend)
    assert first.weighted_fen >= Decimal(0)

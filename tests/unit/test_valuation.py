"""The valuation of a sale (SPEC 2.1), rule by rule, with the seed documents' examples."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ledger.domain.commands import SaleLine
from ledger.policies.valuation import MemberFacts, value_refund, value_sale
from tests.rulesets import SPEC_EXAMPLE, accrual, doc, ruleset

pytestmark = pytest.mark.unit

SH = ZoneInfo("Asia/Shanghai")
TUESDAY = datetime(2026, 3, 10, 10, 0, tzinfo=SH)  # not a member day, no campaign
NORMAL = MemberFacts(tier=None, birthday=None)


def line(amount_fen: int, category: str = "", sku: str = "SKU", **flags: bool) -> SaleLine:
    return SaleLine(sku=sku, amount_fen=amount_fen, category=category, **flags)


def points(
    document: dict[str, Any],
    lines: list[SaleLine],
    at: datetime = TUESDAY,
    member: MemberFacts = NORMAL,
) -> int:
    return value_sale(ruleset(document), 1, at, lines, member).points


PROMOTIONS_ONLY = {
    k: v
    for k, v in SPEC_EXAMPLE["accrual"].items()
    if k in ("category_multipliers", "sku_promotions")
}
TEN_YUAN_A_POINT = doc(accrual=accrual(fen_per_point=1000, points_per_unit=1))


def test_ten_yuan_a_point_floors_98_50_to_9_points() -> None:
    assert points(TEN_YUAN_A_POINT, [line(9850)]) == 9


def test_ten_yuan_a_point_gives_10_points_for_100_yuan() -> None:
    assert points(TEN_YUAN_A_POINT, [line(10000)]) == 10


def test_adding_a_1_50_yuan_item_to_98_50_makes_10_points() -> None:
    assert points(TEN_YUAN_A_POINT, [line(9850), line(150)]) == 10


def test_floor_is_taken_once_over_the_receipt_not_per_line() -> None:
    # three 5-yuan lines: 0 points each if floored per line, 1 point over the receipt
    assert points(TEN_YUAN_A_POINT, [line(500), line(500), line(500)]) == 1


def test_one_yuan_n_points() -> None:
    document = doc(accrual=accrual(fen_per_point=100, points_per_unit=3))
    assert points(document, [line(1234)]) == 37


def test_tcm_slices_earn_double_and_supplements_triple() -> None:
    document = doc(accrual=accrual(category_multipliers={"tcm": "2", "supplement": "3"}))
    assert points(document, [line(10000, "tcm")]) == 200
    assert points(document, [line(10000, "supplement")]) == 300
    assert points(document, [line(10000, "otc")]) == 100


def test_sku_promotion_beats_category_multiplier() -> None:
    june = datetime(2026, 6, 10, 10, 0, tzinfo=SH)  # a Wednesday
    valuation = value_sale(
        ruleset(doc(accrual=accrual(**PROMOTIONS_ONLY))),
        1,
        june,
        [line(10000, "supplement", sku="BRAND-X")],
        NORMAL,
    )
    assert valuation.points == 2000
    assert valuation.lines[0].basis == "sku_promotion"
    assert valuation.lines[0].multiplier == Decimal(20)


def test_sku_promotion_outside_its_window_falls_back_to_category() -> None:
    july = datetime(2026, 7, 1, 0, 0, tzinfo=SH)  # ends_at is exclusive
    document = doc(accrual=accrual(**PROMOTIONS_ONLY))
    valuation = value_sale(
        ruleset(document), 1, july, [line(10000, "supplement", sku="BRAND-X")], NORMAL
    )
    assert valuation.lines[0].basis == "category"
    assert valuation.points == 300


def test_special_price_line_earns_nothing_but_counts_for_tier() -> None:
    valuation = value_sale(
        ruleset(doc()), 1, TUESDAY, [line(5000, no_points=True), line(1000)], NORMAL
    )
    assert valuation.points == 10
    assert valuation.lines[0].basis == "no_points"
    assert valuation.spend_fen == 6000


def test_no_cumulative_spend_line_earns_points_but_not_tier_spend() -> None:
    valuation = value_sale(
        ruleset(doc()), 1, TUESDAY, [line(5000, no_cumulative_spend=True), line(1000)], NORMAL
    )
    assert valuation.points == 60
    assert valuation.spend_fen == 1000


def test_member_day_by_weekday_doubles_the_receipt() -> None:
    saturday = datetime(2026, 3, 14, 10, 0, tzinfo=SH)
    document = doc(accrual=accrual(member_days=[{"weekday": 6, "multiplier": "2"}]))
    assert points(document, [line(10000)], at=saturday) == 200
    assert points(document, [line(10000)]) == 100


def test_member_day_is_judged_in_the_chain_time_zone() -> None:
    # Friday 20:00 UTC is Saturday 04:00 in Shanghai
    friday_utc = datetime(2026, 3, 13, 20, 0, tzinfo=ZoneInfo("UTC"))
    document = doc(accrual=accrual(member_days=[{"weekday": 6, "multiplier": "2"}]))
    assert points(document, [line(10000)], at=friday_utc) == 200


def test_no_points_member_day_earns_nothing_and_says_why() -> None:
    eighth = datetime(2026, 3, 8, 10, 0, tzinfo=SH)
    document = doc(accrual=accrual(member_days=[{"day_of_month": 8, "mode": "no_points"}]))
    valuation = value_sale(ruleset(document), 1, eighth, [line(10000, "tcm")], NORMAL)
    assert valuation.points == 0
    assert valuation.no_points_reason is not None
    assert valuation.spend_fen == 10000


def test_birthday_doubles_for_listed_tiers_only() -> None:
    birthday = datetime(2026, 3, 10, 23, 30, tzinfo=SH)
    gold = MemberFacts(tier="gold", birthday="03-10")
    normal = MemberFacts(tier="normal", birthday="03-10")
    document = doc(
        SPEC_EXAMPLE, accrual=accrual(birthday={"multiplier": "2", "tiers": ["gold", "vip"]})
    )
    assert points(document, [line(10000)], at=birthday, member=gold) == 200
    assert points(document, [line(10000)], at=birthday, member=normal) == 100
    assert points(document, [line(10000)], at=TUESDAY.replace(day=11), member=gold) == 100


def test_february_29_birthday_is_celebrated_on_the_28th_in_other_years() -> None:
    document = doc(accrual=accrual(birthday={"multiplier": "2"}))
    member = MemberFacts(tier=None, birthday="02-29")
    assert (
        points(document, [line(10000)], at=datetime(2026, 2, 28, 9, tzinfo=SH), member=member)
        == 200
    )


def test_campaign_multiplies_inside_its_window() -> None:
    campaign = {
        "name": "店庆",
        "starts_at": "2026-10-01T00:00:00+08:00",
        "ends_at": "2026-10-08T00:00:00+08:00",
        "multiplier": "3",
    }
    document = doc(accrual=accrual(campaigns=[campaign]))
    assert points(document, [line(10000)], at=datetime(2026, 10, 7, 23, 59, tzinfo=SH)) == 300
    assert points(document, [line(10000)], at=datetime(2026, 10, 8, 0, 0, tzinfo=SH)) == 100


def test_tier_multiplier_applies_to_the_receipt() -> None:
    vip = MemberFacts(tier="vip", birthday=None)
    assert points(SPEC_EXAMPLE, [line(10000)], at=TUESDAY, member=vip) == 150


def _saturday_in_campaign_document(stacking: str) -> dict[str, Any]:
    campaign = {
        "name": "c",
        "starts_at": "2026-03-01T00:00:00+08:00",
        "ends_at": "2026-04-01T00:00:00+08:00",
        "multiplier": "3",
    }
    return doc(
        accrual=accrual(
            member_days=[{"weekday": 6, "multiplier": "2"}], campaigns=[campaign], stacking=stacking
        )
    )


def test_stacking_max_takes_the_highest_receipt_multiplier() -> None:
    saturday = datetime(2026, 3, 14, 10, 0, tzinfo=SH)
    valuation = value_sale(
        ruleset(_saturday_in_campaign_document("max")), 1, saturday, [line(10000)], NORMAL
    )
    assert valuation.points == 300
    assert [f.applied for f in valuation.factors] == [False, True]


def test_stacking_multiply_multiplies_every_receipt_multiplier() -> None:
    saturday = datetime(2026, 3, 14, 10, 0, tzinfo=SH)
    assert points(_saturday_in_campaign_document("multiply"), [line(10000)], at=saturday) == 600


def test_breakdown_names_the_multiplier_of_every_line_and_the_rule_version() -> None:
    document = doc(accrual=accrual(category_multipliers={"tcm": "2"}))
    valuation = value_sale(ruleset(document), 7, TUESDAY, [line(100, "tcm"), line(100)], NORMAL)
    assert [(v.line_no, v.basis, v.multiplier) for v in valuation.lines] == [
        (1, "category", Decimal(2)),
        (2, "base", Decimal(1)),
    ]
    assert valuation.rule_version == 7
    assert "v7" in valuation.explanation


def test_fractional_multipliers_are_exact_decimals() -> None:
    document = doc(accrual=accrual(category_multipliers={"x": "1.1"}))
    # 0.1 as a float would make 3 × 1.1 × 100 fen come out at 329.99..., i.e. 3 points
    assert points(document, [line(100, "x"), line(100, "x"), line(100, "x")]) == 3
    assert (
        points(
            doc(accrual=accrual(fen_per_point=33, category_multipliers={"x": "1.1"})),
            [line(300, "x")],
        )
        == 10
    )


def test_full_refund_value_equals_the_points_earned() -> None:
    document = doc(accrual=accrual(fen_per_point=1000, category_multipliers={"tcm": "2"}))
    valuation = value_sale(ruleset(document), 1, TUESDAY, [line(9850, "tcm"), line(150)], NORMAL)
    assert value_refund(valuation, {1: 9850, 2: 150}) == valuation.points
    assert value_refund(valuation, {2: 150}) == 0

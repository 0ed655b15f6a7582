"""Contract version 2's pure rules, one by one: the tier held at a time, the review's date and
window, the uninsured share of a refund, the POS discount, birthday months, the catalogue's and
bonuses' checks, and the liability of a member's lots."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from ledger.domain.commands import SaleLine
from ledger.domain.errors import InvalidRuleSet
from ledger.policies.tiers import SpendEntry, TierMark, review_due, review_spend, tier_at
from ledger.policies.valuation import MemberFacts, pos_discount, value_refund, value_sale
from projections.liability import DEBT, STORED_VALUE, NewLot, value
from tests.rulesets import SPEC_EXAMPLE, accrual, doc, ruleset

pytestmark = pytest.mark.unit
SH = ZoneInfo("Asia/Shanghai")
RULES = ruleset(SPEC_EXAMPLE)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_the_tier_held_at_a_time_follows_the_changes_in_the_order_recorded() -> None:
    marks = [
        TierMark(at("2026-09-01T00:00:00+08:00"), "normal", "silver"),
        TierMark(at("2026-08-20T00:00:00+08:00"), "silver", "gold"),  # a late sale's upgrade
    ]
    assert tier_at(marks, at("2026-08-01T00:00:00+08:00"), "gold") == "normal"
    assert tier_at(marks, at("2026-08-25T00:00:00+08:00"), "gold") == "gold"
    assert tier_at(marks, at("2026-09-05T00:00:00+08:00"), "gold") == "gold"
    assert tier_at([], at("2026-09-05T00:00:00+08:00"), "vip") == "vip"


def test_the_review_runs_the_day_after_its_date_and_judges_a_half_open_window() -> None:
    assert review_due(RULES, date(2027, 1, 1)) == at("2027-01-01T00:00:00+08:00")
    assert review_due(RULES, date(2026, 12, 31)) is None
    spend = [
        SpendEntry(at("2024-01-01T00:00:00+08:00"), 100),
        SpendEntry(at("2026-01-01T00:00:00+08:00"), 1),
    ]
    assert review_spend(spend, at("2026-01-01T00:00:00+08:00"), RULES) == 100


def test_a_refund_reverses_on_the_uninsured_share_exactly() -> None:
    rules = ruleset(doc(accrual=accrual(fen_per_point=1000)))
    lines = [
        SaleLine(sku="A", amount_fen=3_000, insured_fen=1_000),
        SaleLine(sku="B", amount_fen=3_000, insured_fen=2_000),
    ]
    valued = value_sale(
        rules, 1, at("2026-01-01T10:00:00+08:00"), lines, MemberFacts(tier=None, birthday=None)
    )
    assert (valued.points, valued.spend_fen) == (3, 3_000)
    # a third of each line: 2000/3 + 1000/3 = 1000 uninsured fen, exactly 1 point
    assert value_refund(valued, {1: 1_000, 2: 1_000}) == 1
    assert value_refund(valued, {1: 3_000, 2: 3_000}) == valued.points


def test_the_pos_discount_is_the_lower_of_the_tiers_and_the_member_days() -> None:
    rules = ruleset(
        doc(
            SPEC_EXAMPLE,
            accrual=SPEC_EXAMPLE["accrual"]
            | {"member_days": [{"weekday": 6, "multiplier": "2", "discount": "0.88"}]},
        )
    )
    saturday, sunday = at("2026-11-28T10:00:00+08:00"), at("2026-11-29T10:00:00+08:00")
    assert pos_discount(rules, "silver", saturday) == Decimal("0.88")
    assert pos_discount(rules, "silver", sunday) == Decimal("0.95")
    assert pos_discount(rules, "vip", saturday) == Decimal("0.88")


@pytest.mark.parametrize(("scope", "points"), [("month", 200), ("day", 100)])
def test_birthday_month_or_day(scope: str, points: int) -> None:
    rules = ruleset(doc(accrual=accrual(birthday={"multiplier": "2", "scope": scope})))
    lines = [SaleLine(sku="A", amount_fen=10_000)]
    facts = MemberFacts(tier=None, birthday="03-15")
    assert value_sale(rules, 1, at("2026-03-02T10:00:00+08:00"), lines, facts).points == points


@pytest.mark.parametrize(
    ("section", "field"),
    [
        (
            {
                "catalogue": [
                    {"sku": "R", "kind": "gift", "points": 1, "cost_fen": 1, "drug_class": "rx"}
                ]
            },
            "redemption.catalogue[0].drug_class",
        ),
        (
            {"catalogue": [{"sku": "E", "kind": "exchange", "points": 1, "cost_fen": 1}]},
            "redemption.catalogue[0].cash_price_fen",
        ),
        (
            {"catalogue": [{"sku": "G", "kind": "gift", "points": 1, "cost_fen": 1}] * 2},
            "redemption.catalogue",
        ),
    ],
)
def test_the_catalogue_is_checked_at_publish(section: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidRuleSet) as refused:
        ruleset(doc(redemption=section))
    assert refused.value.field == field


def test_bonus_codes_are_unique() -> None:
    bonus = {"code": "registration", "points": 10, "cost_to": "hq"}
    with pytest.raises(InvalidRuleSet) as refused:
        ruleset(doc(bonuses=[bonus, bonus]))
    assert refused.value.field == "bonuses"


def _lot(lot_id: int, expires: str, version: int) -> NewLot:
    return NewLot(
        lot_id=lot_id,
        kind="receipt",
        reference=f"R{lot_id}",
        earned_at=at("2026-01-01T00:00:00+08:00"),
        expires_at=at(expires),
        rule_version=version,
    )


def test_a_members_debt_is_taken_from_the_earliest_expiring_lot_before_valuing() -> None:
    lots = {
        ("m", 1): _lot(1, "2027-01-01T00:00:00+08:00", 1),
        ("m", 2): _lot(2, "2026-06-01T00:00:00+08:00", 2),
    }
    costs = {1: Decimal(3), 2: Decimal("2.5")}
    figures = value(
        {"m": {1: 100, 2: 101, DEBT: -100, STORED_VALUE: 7}},
        lots,
        lambda lot: (lot.rule_version, costs[lot.rule_version or 1]),
    )
    # the debt takes lot 2 (due first) down to 1: 100 × 3 + 1 × 2.5 = 302.5 → 303 (half-up)
    assert (figures.points, figures.value_fen, figures.stored_value_fen) == (101, 303, 7)
    in_debt = value({"m": {1: 50, DEBT: -80}}, lots, lambda lot: (1, Decimal(3)))
    assert (in_debt.points, in_debt.members, in_debt.value_fen) == (0, 0, 0)

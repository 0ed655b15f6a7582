"""Publishing validates the rule-set document (SPEC 2.10) and names every bad field."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from ledger.domain.errors import InvalidRuleSet
from ledger.policies.ruleset import RuleSet
from tests.rulesets import SPEC_EXAMPLE, accrual, doc, ruleset

pytestmark = pytest.mark.unit


def test_the_spec_example_is_a_valid_rule_set() -> None:
    rules = ruleset(SPEC_EXAMPLE)
    assert rules.tiers is not None
    assert [lv.code for lv in rules.tiers.levels] == ["normal", "silver", "gold", "vip"]


def test_only_the_base_rate_is_required() -> None:
    rules = ruleset({"effective_from": "2026-01-01T00:00:00+08:00", "accrual": accrual()})
    assert rules.tiers is None and rules.expiry is None


def _problem(document: dict[str, Any]) -> InvalidRuleSet:
    with pytest.raises(InvalidRuleSet) as caught:
        ruleset(document)
    return caught.value


def test_birthday_multiplier_for_an_unknown_tier_is_rejected() -> None:
    document = doc(
        SPEC_EXAMPLE, accrual=accrual(birthday={"multiplier": "2", "tiers": ["platinum"]})
    )
    error = _problem(document)
    assert error.field == "accrual.birthday.tiers[0]"
    assert "platinum" in error.detail


def test_tier_levels_must_rise_and_start_at_zero() -> None:
    levels = [
        {"code": "a", "min_spend_fen": 100, "discount": "1"},
        {"code": "b", "min_spend_fen": 50, "discount": "0.9"},
    ]
    error = _problem(doc(tiers={"levels": levels}))
    assert "must start at 0" in error.detail
    assert "strictly increase" in error.detail


def test_member_day_needs_exactly_one_of_weekday_and_day_of_month() -> None:
    error = _problem(
        doc(accrual=accrual(member_days=[{"weekday": 1, "day_of_month": 2, "multiplier": "2"}]))
    )
    assert error.field == "accrual.member_days[0]"


def test_campaign_must_end_after_it_starts() -> None:
    campaign = {
        "name": "c",
        "starts_at": "2026-02-01T00:00:00+08:00",
        "ends_at": "2026-01-01T00:00:00+08:00",
        "multiplier": "2",
    }
    assert _problem(doc(accrual=accrual(campaigns=[campaign]))).field == "accrual.campaigns[0]"


def test_negative_multiplier_is_rejected() -> None:
    error = _problem(doc(accrual=accrual(category_multipliers={"tcm": "-2"})))
    assert error.field == "accrual.category_multipliers.tcm"


def test_unknown_time_zone_is_rejected() -> None:
    assert _problem(doc(timezone="Mars/Olympus")).field == "timezone"


def test_clearance_needs_month_and_day_that_exist_every_year() -> None:
    assert (
        _problem(doc(expiry={"clearance_month": 2, "clearance_day": 29})).field
        == "expiry.clearance_day"
    )
    assert _problem(doc(expiry={"clearance_month": 3})).field == "expiry"


@pytest.mark.parametrize(
    ("document", "where"),
    [
        (doc(accrual={"fen_per_point": 0, "points_per_unit": 1}), "fen_per_point"),
        (doc(accrual=accrual(stacking="sum")), "stacking"),
        (doc(accrual=accrual(colour="red")), "colour"),
        (doc(effective_from="2026-01-01T00:00:00"), "effective_from"),
        (doc(accrual=accrual(category_multipliers={"tcm": "lots"})), "category_multipliers"),
    ],
)
def test_malformed_documents_fail_to_decode_naming_the_field(
    document: dict[str, Any], where: str
) -> None:
    with pytest.raises(msgspec.ValidationError, match=where):
        msgspec.json.decode(msgspec.json.encode(document), type=RuleSet)

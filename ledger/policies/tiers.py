"""Tier arithmetic (SPEC 2.2): spend over the rolling window, the level it earns, the next level."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import msgspec

from ledger.policies.chaintime import add_months
from ledger.policies.ruleset import RuleSet, TierLevel


class SpendEntry(msgspec.Struct, array_like=True, frozen=True):
    """Spend that counts towards tier, at the business time of its sale (negative for refunds)."""

    occurred_at: datetime
    amount_fen: int


class NextTier(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    min_spend_fen: int
    spend_needed_fen: int


def window_spend(entries: Iterable[SpendEntry], as_of: datetime, rules: RuleSet) -> int:
    """Spend with business time in (as_of − window_months, as_of]."""
    if rules.tiers is None:
        return 0
    start = add_months(as_of, -rules.tiers.window_months, rules.zone)
    return sum(e.amount_fen for e in entries if start < e.occurred_at <= as_of)


def level_for_spend(rules: RuleSet, spend_fen: int) -> TierLevel | None:
    if rules.tiers is None:
        return None
    reached = [lv for lv in rules.tiers.levels if lv.min_spend_fen <= spend_fen]
    return reached[-1] if reached else rules.tiers.levels[0]


def effective_tier(rules: RuleSet | None, code: str | None) -> str | None:
    """The member's tier under these rules: its own code if the rules know it, else the lowest."""
    if rules is None or rules.tiers is None:
        return code
    if rules.level(code) is not None:
        return code
    return rules.tiers.levels[0].code


def rank(rules: RuleSet, code: str | None) -> int:
    if rules.tiers is None:
        return -1
    codes = [lv.code for lv in rules.tiers.levels]
    return codes.index(code) if code in codes else -1


def next_tier(rules: RuleSet, code: str | None, spend_fen: int) -> NextTier | None:
    if rules.tiers is None:
        return None
    levels = rules.tiers.levels
    position = rank(rules, code)
    if position + 1 >= len(levels):
        return None
    nxt = levels[position + 1]
    return NextTier(
        code=nxt.code,
        min_spend_fen=nxt.min_spend_fen,
        spend_needed_fen=max(0, nxt.min_spend_fen - spend_fen),
    )

"""Tier arithmetic (SPEC 2.1, 2.2): spend over the rolling window, the level it earns, the next
level, the tier a member held at a past instant, and when the scheduled review runs.

Two windows: an upgrade (and what the POS shows) judges the spend with business time in
`[t − window_months, t]`, the sale at `t` included; a review as of T judges `[T − window_months,
T)`, so the year-end review as of 1 January 00:00 judges exactly the two calendar years before.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta

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


class TierMark(msgspec.Struct, array_like=True, frozen=True):
    """A tier change at its business time (the sale's or the review's `occurred_at`)."""

    occurred_at: datetime
    from_tier: str | None
    to_tier: str


def window_start(as_of: datetime, rules: RuleSet) -> datetime:
    """The first instant of the window ending at `as_of` (`as_of` − window_months, chain time)."""
    months = rules.tiers.window_months if rules.tiers else 0
    return add_months(as_of, -months, rules.zone)


def window_spend(entries: Iterable[SpendEntry], as_of: datetime, rules: RuleSet) -> int:
    """Spend with business time in [as_of − window_months, as_of]: an upgrade's window."""
    if rules.tiers is None:
        return 0
    start = window_start(as_of, rules)
    return sum(e.amount_fen for e in entries if start <= e.occurred_at <= as_of)


def review_spend(entries: Iterable[SpendEntry], as_of: datetime, rules: RuleSet) -> int:
    """Spend with business time in [as_of − window_months, as_of): a review's window."""
    if rules.tiers is None:
        return 0
    start = window_start(as_of, rules)
    return sum(e.amount_fen for e in entries if start <= e.occurred_at < as_of)


def tier_at(marks: Sequence[TierMark], at: datetime, current: str | None) -> str | None:
    """The tier held at business time `at`: the last change (in the order recorded) timed at or
    before `at`; before every change, the tier the first recorded change started from. Without
    any change known, `current` (also the fallback for a member read from a snapshot taken
    before changes were kept)."""
    held = [mark for mark in marks if mark.occurred_at <= at]
    if held:
        return held[-1].to_tier
    return marks[0].from_tier if marks else current


def changed_since(marks: Sequence[TierMark], at: datetime) -> bool:
    """Whether the tier changed at or after business time `at` (a review as of `at` skips it)."""
    return any(mark.occurred_at >= at for mark in marks)


def review_due(rules: RuleSet, day: date) -> datetime | None:
    """The `as_of` of the scheduled review that runs on `day` (chain time): 00:00 of the day
    after the rule set's review date; None on any other day."""
    if rules.tiers is None:
        return None
    review, before = rules.tiers.review, day - timedelta(days=1)
    if (before.month, before.day) != (review.month, review.day):
        return None
    return datetime.combine(day, time(0), tzinfo=rules.zone)


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

"""Tier review (SPEC 2.2): as of T, the spend of `[T − window_months, T)` decides each member's
level; a member whose spend no longer holds the tier is downgraded, with the reason.

A review never changes a member whose tier changed at or after T (a review dated in the past
cannot undo a later upgrade): such a member is `skipped` when the review would have changed
them. Between reviews tiers only go up (at the sale that crosses a threshold); a refund never
downgrades by itself.
"""

from __future__ import annotations

from datetime import datetime

from ledger.domain.member import Member, TierChanged
from ledger.policies.ruleset import RuleVersion
from ledger.policies.tiers import (
    changed_since,
    effective_tier,
    level_for_spend,
    rank,
    review_spend,
    window_start,
)


def review(
    member: Member, version: RuleVersion, as_of: datetime, operator: str
) -> tuple[TierChanged | None, bool]:
    """The member's tier change as of `as_of` (None if none), and whether the review skipped a
    change because the tier changed at or after `as_of`."""
    rules = version.rules
    if rules.tiers is None:
        return None, False
    start = window_start(as_of, rules)
    spend = review_spend(member.spend, as_of, rules)
    target = level_for_spend(rules, spend)
    current = effective_tier(rules, member.tier)
    if target is None or target.code == current:
        return None, False
    if changed_since(member.tier_marks, as_of):
        return None, True
    down = rank(rules, target.code) < rank(rules, current)
    return TierChanged(
        originator_id=member.id,
        originator_version=member.version + 1,
        occurred_at=as_of,
        from_tier=current,
        to_tier=target.code,
        direction="downgrade" if down else "upgrade",
        tier_spend_fen=spend,
        rule_version=version.version,
        reason=(
            f"tier review as of {as_of.isoformat()}: spend {spend} fen in "
            f"[{start.isoformat()}, {as_of.isoformat()}) ({rules.tiers.window_months} months) "
            f"{'falls short of' if down else 'reaches'} {current if down else target.code}; "
            f"now {target.code}"
        ),
        operator=operator,
        window_start=start,
    ), False

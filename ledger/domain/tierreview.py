"""Tier review (SPEC 2.2): at the review date, spend older than the window is dropped and the
level recomputed; a member whose spend no longer holds the tier is downgraded, with the reason.

Between reviews tiers only go up (at the sale that crosses a threshold); a refund never
downgrades by itself.
"""

from __future__ import annotations

from datetime import datetime

from ledger.domain.member import Member, TierChanged
from ledger.policies.chaintime import add_months
from ledger.policies.ruleset import RuleVersion
from ledger.policies.tiers import effective_tier, level_for_spend, rank, window_spend


def review(
    member: Member, version: RuleVersion, as_of: datetime, operator: str
) -> TierChanged | None:
    rules = version.rules
    if rules.tiers is None:
        return None
    window_start = add_months(as_of, -rules.tiers.window_months, rules.zone)
    spend = window_spend(member.spend, as_of, rules)
    target = level_for_spend(rules, spend)
    current = effective_tier(rules, member.tier)
    if target is None or target.code == current:
        return None
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
            f"tier review as of {as_of.isoformat()}: spend {spend} fen since "
            f"{window_start.isoformat()} ({rules.tiers.window_months} months) "
            f"{'falls short of' if down else 'reaches'} {current if down else target.code}; "
            f"now {target.code}"
        ),
        operator=operator,
        window_start=window_start,
    )

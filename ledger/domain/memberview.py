"""What a member looks like to the POS and customer service right now (read from its own events)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import msgspec

from ledger.domain.member import Member, balance
from ledger.policies.ruleset import RuleSet
from ledger.policies.tiers import NextTier, effective_tier, next_tier, window_spend
from ledger.policies.valuation import pos_discount


class ExpiringPoints(msgspec.Struct, frozen=True, kw_only=True):
    points: int
    expires_at: datetime
    overdue: bool  # due, but the expiry run has not reached it yet


class MemberView(msgspec.Struct, frozen=True, kw_only=True):
    member_id: str
    store_id: str
    enrolled_at: datetime
    tier: str | None
    discount: Decimal | None  # today's POS discount: the lower of the tier's and a member day's
    points: int
    pending_points: int
    stored_value_fen: int
    tier_spend_fen: int
    next_tier: NextTier | None
    expiring: list[ExpiringPoints]
    personal_data_erased: bool = False
    replaced_by: str | None = None  # read under a replaced card: the card the account has now


def expiring(member: Member, now: datetime, zone: ZoneInfo | None = None) -> list[ExpiringPoints]:
    """Remaining points grouped by expiry instant (in the chain's zone), soonest first; a due
    lot the expiry run has not reached yet is `overdue`."""
    by_instant: dict[datetime, int] = defaultdict(int)
    for lot in member.lots:
        if lot.remaining > 0 and lot.expires_at is not None:
            by_instant[lot.expires_at] += lot.remaining
    return [
        ExpiringPoints(
            points=points,
            expires_at=instant.astimezone(zone) if zone else instant,
            overdue=instant <= now,
        )
        for instant, points in sorted(by_instant.items())
    ]


def member_view(member: Member, rules: RuleSet | None, now: datetime) -> MemberView:
    bal = balance(member, now)
    tier = effective_tier(rules, member.tier)
    spend = window_spend(member.spend, now, rules) if rules else 0
    return MemberView(
        member_id=member.member_id,
        store_id=member.store_id,
        enrolled_at=member.enrolled_at,
        tier=tier,
        discount=pos_discount(rules, tier, now) if rules else None,
        points=bal.points,
        pending_points=bal.pending_points,
        stored_value_fen=bal.stored_value_fen,
        tier_spend_fen=spend,
        next_tier=next_tier(rules, tier, spend) if rules else None,
        expiring=expiring(member, now, rules.zone if rules else None),
        personal_data_erased=member.erased,
    )

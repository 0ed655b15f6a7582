"""Bonuses (SPEC 2.6): points the rule set grants for registration, referral or other deeds,
not free-hand credits. A bonus is a lot like an accrual's (after any debt, spendable at once,
expiring by the rules from its `occurred_at`); its cost is the granting store's or
headquarters' (`cost_to`), which settlement shows. A `registration` bonus is granted once per
member, a `referral` once per referred member (a claim record keyed by the card, saved with the
bonus, makes a second one collide); refunds never reverse bonuses.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from ledger.domain.commands import GrantBonus
from ledger.domain.errors import InvalidInput, UnknownBonus
from ledger.domain.member import Balance, BonusGranted, Member, after, balance
from ledger.domain.model import DomainEvent
from ledger.policies.lots import Lot, expires_at
from ledger.policies.ruleset import RuleVersion

ONCE_PER_CARD = ("registration", "referral")  # the codes granted once per (referred) member


class BonusReceipt(msgspec.Struct, frozen=True, kw_only=True):
    member_id: str
    store_id: str
    bonus_no: str
    code: str
    points: int
    cost_to: Literal["store", "hq"]
    referred_member_id: str | None
    debt_paid: int
    expires_at: datetime | None
    balance: Balance
    rule_version: int


def claimed_card(cmd: GrantBonus, card: str) -> str | None:
    """The card whose once-only claim this bonus takes (None for a bonus granted any number of
    times): the member's for a registration, the referred member's for a referral."""
    if cmd.code == "registration":
        return card
    if cmd.code == "referral":
        return cmd.referred_member_id
    return None


def check_referral(cmd: GrantBonus, card: str, referred_enrolled: bool) -> None:
    """A referral names an enrolled member other than the referrer; other bonuses name none."""
    if cmd.code != "referral":
        if cmd.referred_member_id is not None:
            raise InvalidInput(
                "only a referral names a referred member", field="referred_member_id"
            )
        return
    if cmd.referred_member_id is None or cmd.referred_member_id == card or not referred_enrolled:
        raise UnknownBonus(
            "a referral names an enrolled member other than the referrer",
            field="referred_member_id",
        )


def grant(
    cmd: GrantBonus,
    member: Member,
    version: RuleVersion,
    *,
    referred_enrolled: bool,
    operator: str,
    now: datetime,
) -> tuple[list[DomainEvent], BonusReceipt]:
    """The member's bonus: what pays any debt first, the rest a new lot. Pure."""
    rule = version.rules.bonus(cmd.code)
    if rule is None:
        raise UnknownBonus(
            f"the rule set in force (v{version.version}) has no bonus {cmd.code!r}", field="code"
        )
    check_referral(cmd, member.member_id, referred_enrolled)
    debt_paid = min(member.debt_points, rule.points)
    kept = rule.points - debt_paid
    lot = None
    if kept:
        lot = Lot(
            lot_id=member.version + 1,
            reference=cmd.bonus_no,
            earned_at=cmd.occurred_at,
            available_at=cmd.occurred_at,
            expires_at=expires_at(version.rules, cmd.occurred_at),
            points=kept,
            remaining=kept,
        )
    event = BonusGranted(
        originator_id=member.id,
        originator_version=member.version + 1,
        store_id=cmd.store_id,
        reference=cmd.bonus_no,
        occurred_at=cmd.occurred_at,
        code=rule.code,
        points=rule.points,
        cost_to=rule.cost_to,
        referred_member_id=cmd.referred_member_id,
        debt_paid=debt_paid,
        lot=lot,
        rule_version=version.version,
        operator=operator,
    )
    return [event], BonusReceipt(
        member_id=member.member_id,
        store_id=cmd.store_id,
        bonus_no=cmd.bonus_no,
        code=rule.code,
        points=rule.points,
        cost_to=rule.cost_to,
        referred_member_id=cmd.referred_member_id,
        debt_paid=debt_paid,
        expires_at=lot.expires_at if lot else None,
        balance=balance(after(member, [event]), now),
        rule_version=version.version,
    )

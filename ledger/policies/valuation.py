"""The valuation of a sale: one pure function, used by the POS path, the audit and what-if replay.

points = floor(Σ((line.amount_fen − line.insured_fen) × line_multiplier) × receipt_multiplier
               × points_per_unit / fen_per_point), floored once over the whole receipt (SPEC 2.1).
The part of a line medical insurance pays (`insured_fen`) earns nothing and counts for no tier
spend; a refund reverses points on the refunded amount's uninsured share.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal, localcontext
from fractions import Fraction
from typing import Literal

import msgspec

from ledger.domain.commands import SaleLine
from ledger.policies.chaintime import is_birthday, is_birthday_month
from ledger.policies.ruleset import MemberDay, RuleSet

ONE = Decimal(1)
ZERO = Decimal(0)

LineBasis = Literal["sku_promotion", "category", "base", "no_points"]
FactorKind = Literal["tier", "member_day", "birthday", "campaign"]


class LineValuation(msgspec.Struct, frozen=True, kw_only=True):
    """How one line was valued: its multiplier and why."""

    line_no: int
    sku: str
    category: str
    amount_fen: int
    multiplier: Decimal
    basis: LineBasis
    reason: str
    counts_for_tier: bool
    insured_fen: int = 0  # paid by medical insurance: earns nothing, no tier spend


class RefundedLine(msgspec.Struct, frozen=True, kw_only=True):
    """A line of a refund, as its reversal explains it: what this refund gave back, and how the
    sale valued the line (its multiplier and why; the part insurance paid earns nothing)."""

    line_no: int
    sku: str
    category: str
    refunded_fen: int  # by this refund
    amount_fen: int  # the line's, as sold
    insured_fen: int
    multiplier: Decimal
    basis: LineBasis
    reason: str
    counts_for_tier: bool


class ReceiptFactor(msgspec.Struct, frozen=True, kw_only=True):
    """A receipt-level multiplier that applied to the sale, and whether it won under stacking."""

    kind: FactorKind
    multiplier: Decimal
    reason: str
    applied: bool


class Valuation(msgspec.Struct, frozen=True, kw_only=True):
    """Everything needed to explain, and to reverse, the points of one receipt."""

    rule_version: int
    points: int
    spend_fen: int
    weighted_fen: Decimal
    receipt_multiplier: Decimal
    stacking: str
    fen_per_point: int
    points_per_unit: int
    no_points_reason: str | None
    factors: list[ReceiptFactor]
    lines: list[LineValuation]
    explanation: str


class MemberFacts(msgspec.Struct, frozen=True, kw_only=True):
    """What the valuation needs to know about the member before this sale."""

    tier: str | None
    birthday: str | None  # 'MM-DD'


def floor_points(
    weighted_fen: Decimal, receipt_multiplier: Decimal, points_per_unit: int, fen_per_point: int
) -> int:
    """The one rounding step of SPEC 2.1: floor at the end, never per line."""
    with localcontext(prec=60):
        exact = weighted_fen * receipt_multiplier * points_per_unit / fen_per_point
        return int(exact.to_integral_value(rounding=ROUND_FLOOR))


def _line(rules: RuleSet, line_no: int, line: SaleLine, occurred_at: datetime) -> LineValuation:
    accrual = rules.accrual
    multiplier, basis, reason = ONE, "base", "regular points (常规积分)"
    if line.no_points:
        multiplier, basis, reason = ZERO, "no_points", "line flagged no_points (不参与积分)"
    else:
        promos = [
            p
            for p in accrual.sku_promotions
            if p.sku == line.sku
            and (p.starts_at is None or p.starts_at <= occurred_at)
            and (p.ends_at is None or occurred_at < p.ends_at)
        ]
        if promos:
            best = max(promos, key=lambda p: p.multiplier)
            multiplier, basis = best.multiplier, "sku_promotion"
            reason = f"SKU promotion on {line.sku} ×{best.multiplier} (单品多倍积分)"
        elif line.category in accrual.category_multipliers:
            multiplier, basis = accrual.category_multipliers[line.category], "category"
            reason = f"category {line.category} ×{multiplier} (类别积分)"
    if line.insured_fen:
        reason += f"; {line.insured_fen} fen paid by medical insurance earn nothing (医保)"
    return LineValuation(
        line_no=line_no,
        sku=line.sku,
        category=line.category,
        amount_fen=line.amount_fen,
        multiplier=multiplier,
        basis=basis,  # type: ignore[arg-type]
        reason=reason,
        counts_for_tier=not line.no_cumulative_spend,
        insured_fen=line.insured_fen,
    )


def member_days_on(rules: RuleSet, instant: datetime) -> list[MemberDay]:
    """The member days (会员日) that `instant` falls on, in chain time."""
    local = instant.astimezone(rules.zone)
    return [
        day
        for day in rules.accrual.member_days
        if day.weekday == local.isoweekday() or day.day_of_month == local.day
    ]


def pos_discount(rules: RuleSet, tier: str | None, instant: datetime) -> Decimal | None:
    """The POS discount at `instant`: the lower of the tier's and a member day's (平常95折、
    会员日88折); None when neither gives one."""
    level = rules.level(tier)
    found = [level.discount] if level is not None else []
    found += [day.discount for day in member_days_on(rules, instant) if day.discount is not None]
    return min(found, default=None)


def _birthday_applies(rules: RuleSet, occurred_at: datetime, member: MemberFacts) -> bool:
    birthday = rules.accrual.birthday
    if birthday is None or member.birthday is None:
        return False
    if birthday.tiers is not None and member.tier not in birthday.tiers:
        return False
    if birthday.scope == "month":
        return is_birthday_month(member.birthday, occurred_at, rules.zone)
    return is_birthday(member.birthday, occurred_at, rules.zone)


def _factors(
    rules: RuleSet, occurred_at: datetime, member: MemberFacts
) -> tuple[list[tuple[FactorKind, Decimal, str]], str | None]:
    """Receipt multipliers that apply, and the reason the day earns nothing (if it does not)."""
    accrual = rules.accrual
    found: list[tuple[FactorKind, Decimal, str]] = []
    no_points: str | None = None
    level = rules.level(member.tier)
    if level is not None and level.points_multiplier is not None:
        found.append(("tier", level.points_multiplier, f"tier {level.code}"))
    for day in member_days_on(rules, occurred_at):
        which = f"weekday {day.weekday}" if day.weekday else f"day {day.day_of_month}"
        if day.mode == "no_points":
            no_points = f"member day ({which}): discount, no points (打折不积分)"
        elif day.multiplier is not None:
            found.append(("member_day", day.multiplier, f"member day ({which}) 会员日"))
    if accrual.birthday is not None and _birthday_applies(rules, occurred_at, member):
        which = "birthday month" if accrual.birthday.scope == "month" else "birthday"
        found.append(("birthday", accrual.birthday.multiplier, f"member's {which} (生日积分)"))
    found.extend(
        ("campaign", c.multiplier, f"campaign {c.name}")
        for c in accrual.campaigns
        if c.starts_at <= occurred_at < c.ends_at
    )
    return found, no_points


def _receipt_multiplier(
    found: list[tuple[FactorKind, Decimal, str]], stacking: str
) -> tuple[Decimal, list[ReceiptFactor]]:
    if not found:
        return ONE, []
    if stacking == "multiply":
        product = ONE
        for _, m, _ in found:
            product *= m
        return product, [
            ReceiptFactor(kind=k, multiplier=m, reason=r, applied=True) for k, m, r in found
        ]
    winner = max(range(len(found)), key=lambda i: found[i][1])
    factors = [
        ReceiptFactor(kind=k, multiplier=m, reason=r, applied=i == winner)
        for i, (k, m, r) in enumerate(found)
    ]
    return found[winner][1], factors


def value_sale(
    rules: RuleSet,
    rule_version: int,
    occurred_at: datetime,
    lines: Sequence[SaleLine],
    member: MemberFacts,
) -> Valuation:
    """Value a receipt under one rule-set version. Pure: same inputs, same points."""
    valued = [_line(rules, n, line, occurred_at) for n, line in enumerate(lines, start=1)]
    found, no_points = _factors(rules, occurred_at, member)
    receipt_multiplier, factors = _receipt_multiplier(found, rules.accrual.stacking)
    if no_points is not None:
        receipt_multiplier = ZERO
    weighted = sum(((v.amount_fen - v.insured_fen) * v.multiplier for v in valued), ZERO)
    accrual = rules.accrual
    points = floor_points(
        weighted, receipt_multiplier, accrual.points_per_unit, accrual.fen_per_point
    )
    explanation = (
        f"floor({weighted} weighted fen × receipt ×{receipt_multiplier} × "
        f"{accrual.points_per_unit} / {accrual.fen_per_point} fen) = {points} points "
        f"under rule set v{rule_version}"
    )
    if no_points is not None:
        explanation += f"; {no_points}"
    return Valuation(
        rule_version=rule_version,
        points=points,
        spend_fen=sum(v.amount_fen - v.insured_fen for v in valued if v.counts_for_tier),
        weighted_fen=weighted,
        receipt_multiplier=receipt_multiplier,
        stacking=accrual.stacking,
        fen_per_point=accrual.fen_per_point,
        points_per_unit=accrual.points_per_unit,
        no_points_reason=no_points,
        factors=factors,
        lines=valued,
        explanation=explanation,
    )


def uninsured_share(line: LineValuation, refunded_fen: int) -> Fraction:
    """The part of `refunded_fen` of a line that insurance did not pay: refunded × (amount −
    insured) / amount, exact (the whole refunded amount for a line without insurance)."""
    if not line.insured_fen:
        return Fraction(refunded_fen)
    return Fraction(refunded_fen * (line.amount_fen - line.insured_fen), line.amount_fen)


def value_refund(valuation: Valuation, refunded_fen_by_line: dict[int, int]) -> int:
    """Points that a set of refunded line amounts were worth under the sale's own valuation:
    each line's uninsured share at its multiplier, floored once (exact fractions, so that a
    full refund reverses exactly what the sale earned)."""
    weighted = sum(
        (
            uninsured_share(v, refunded_fen_by_line.get(v.line_no, 0)) * Fraction(v.multiplier)
            for v in valuation.lines
        ),
        Fraction(0),
    )
    exact = (
        weighted
        * Fraction(valuation.receipt_multiplier)
        * valuation.points_per_unit
        / valuation.fen_per_point
    )
    return math.floor(exact)


def refunded_lines(
    valuation: Valuation, refunded_fen_by_line: dict[int, int]
) -> list[RefundedLine]:
    """The lines of a refund with the sale's valuation of each, in line order."""
    return [
        RefundedLine(
            line_no=v.line_no,
            sku=v.sku,
            category=v.category,
            refunded_fen=refunded_fen_by_line[v.line_no],
            amount_fen=v.amount_fen,
            insured_fen=v.insured_fen,
            multiplier=v.multiplier,
            basis=v.basis,
            reason=v.reason,
            counts_for_tier=v.counts_for_tier,
        )
        for v in valuation.lines
        if refunded_fen_by_line.get(v.line_no)
    ]


def refunded_spend(valuation: Valuation, before: dict[int, int], now: dict[int, int]) -> int:
    """The tier spend a refund takes back: for each line that counts for tier, the uninsured
    share of everything refunded so far less that of what earlier refunds had refunded
    (floored per line, so that a full refund takes back exactly the line's spend)."""
    spend = 0
    for v in valuation.lines:
        if v.counts_for_tier:
            after = math.floor(uninsured_share(v, now.get(v.line_no, 0)))
            spend += after - math.floor(uninsured_share(v, before.get(v.line_no, 0)))
    return spend

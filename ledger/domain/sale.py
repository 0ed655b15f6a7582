"""Sales: the sale record aggregate (the idempotency key and the POS's receipt), and the decision
that turns a POS sale into the member's events (accrual, and a tier upgrade if it crosses one).

A sale is valued with the tier the member held at its `occurred_at` (SPEC 2.1): an offline sale
uploaded after a later upgrade earns what it would have earned at the till.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

import msgspec

from ledger.domain import ids
from ledger.domain.bounds import check_instant
from ledger.domain.commands import PostSale, SaleLine
from ledger.domain.errors import InvalidInput
from ledger.domain.member import Balance, Member, PointsAccrued, TierChanged, after, balance
from ledger.domain.model import Aggregate, DomainEvent, born
from ledger.policies.lots import Lot, available_at, expires_at
from ledger.policies.ruleset import RuleSet, RuleVersion
from ledger.policies.tiers import (
    SpendEntry,
    effective_tier,
    level_for_spend,
    rank,
    tier_at,
    window_spend,
)
from ledger.policies.valuation import (
    LineValuation,
    MemberFacts,
    ReceiptFactor,
    Valuation,
    value_sale,
)

FUTURE_TOLERANCE = timedelta(minutes=5)


class SaleReceipt(msgspec.Struct, frozen=True, kw_only=True):
    """What the POS is told about a sale; a retry gets exactly this back."""

    sale_id: UUID
    store_id: str
    receipt_no: str
    member_id: str
    occurred_at: datetime
    points_earned: int
    breakdown: list[LineValuation]
    factors: list[ReceiptFactor]
    explanation: str
    balance: Balance
    tier: str | None
    tier_changed: bool
    rule_version: int


class SaleRecorded(DomainEvent, frozen=True, kw_only=True):
    store_id: str
    receipt_no: str
    member_id: str
    occurred_at: datetime
    lines: list[SaleLine]
    fingerprint: str
    valuation: Valuation
    receipt: SaleReceipt


class RefundReceipt(msgspec.Struct, frozen=True, kw_only=True):
    """What the POS is told about a refund; a retry gets exactly this back."""

    sale_id: UUID
    store_id: str
    receipt_no: str
    refund_no: str
    member_id: str
    occurred_at: datetime
    points_reversed: int
    debt_added: int
    spend_reversed_fen: int
    balance: Balance
    debt_points: int


class SaleRefunded(DomainEvent, frozen=True, kw_only=True):
    refund_no: str
    occurred_at: datetime
    refunded_fen: dict[int, int]  # by line number, this refund
    points_reversed: int
    fingerprint: str
    receipt: RefundReceipt


class Sale(Aggregate, kw_only=True):
    store_id: str
    receipt_no: str
    member_id: str
    occurred_at: datetime
    lines: list[SaleLine]
    fingerprint: str
    valuation: Valuation
    receipt: SaleReceipt
    refunded_fen: dict[int, int] = msgspec.field(default_factory=dict)  # by line, so far
    points_reversed: int = 0  # by all refunds so far
    refunds: dict[str, SaleRefunded] = msgspec.field(default_factory=dict)  # by refund number


def evolve(state: Sale | None, event: DomainEvent) -> Sale:
    if isinstance(event, SaleRefunded) and state is not None:
        for line_no, fen in event.refunded_fen.items():
            state.refunded_fen[line_no] = state.refunded_fen.get(line_no, 0) + fen
        state.points_reversed += event.points_reversed
        state.refunds[event.refund_no] = event
        return state
    if not isinstance(event, SaleRecorded):
        raise TypeError(f"Sale cannot apply {type(event).__name__}")
    return Sale(
        **born(event),
        store_id=event.store_id,
        receipt_no=event.receipt_no,
        member_id=event.member_id,
        occurred_at=event.occurred_at,
        lines=event.lines,
        fingerprint=event.fingerprint,
        valuation=event.valuation,
        receipt=event.receipt,
    )


def check_business_time(occurred_at: datetime, now: datetime) -> None:
    """Offline stores may upload late, but nothing happens more than 5 minutes from now, nor
    outside the years every view can hold (SPEC 3.1)."""
    check_instant(occurred_at, "occurred_at")
    if occurred_at > now + FUTURE_TOLERANCE:
        raise InvalidInput("occurred_at is more than 5 minutes in the future", field="occurred_at")


def check_lines(lines: list[SaleLine]) -> None:
    """What the wire types cannot say: a line's insured part is at most its amount."""
    for n, line in enumerate(lines):
        if line.insured_fen > line.amount_fen:
            raise InvalidInput(
                f"insured_fen {line.insured_fen} is more than the line's amount {line.amount_fen}",
                field=f"lines[{n}].insured_fen",
            )


def fingerprint_form(cmd: PostSale) -> msgspec.Raw:
    """The sale as its fingerprint reads it: lines without insurance as contract version 1
    encoded them (no `insured_fen`, no `cashier` when none is named), so a POS retry across the
    upgrade is the same request."""
    body = msgspec.to_builtins(cmd)
    if body.get("cashier") is None:
        body.pop("cashier", None)
    for line in body["lines"]:
        if line.get("insured_fen") == 0:
            del line["insured_fen"]
    return msgspec.Raw(msgspec.json.encode(body))


def _upgrade(
    member: Member, cmd: PostSale, version: RuleVersion, spend_fen: int, next_version: int
) -> TierChanged | None:
    rules = version.rules
    before = effective_tier(rules, member.tier)
    spend = window_spend(
        [*member.spend, SpendEntry(cmd.occurred_at, spend_fen)], cmd.occurred_at, rules
    )
    target = level_for_spend(rules, spend)
    if rules.tiers is None or target is None or rank(rules, target.code) <= rank(rules, before):
        return None
    return TierChanged(
        originator_id=member.id,
        originator_version=next_version,
        occurred_at=cmd.occurred_at,
        from_tier=before,
        to_tier=target.code,
        direction="upgrade",
        tier_spend_fen=spend,
        rule_version=version.version,
        reason=(
            f"spend {spend} fen in {rules.tiers.window_months} months reached "
            f"{target.code} at {target.min_spend_fen} fen"
        ),
        store_id=cmd.store_id,
        reference=cmd.receipt_no,
    )


def _accrual(
    cmd: PostSale, member: Member, rules: RuleSet, valuation: Valuation, operator: str
) -> PointsAccrued:
    """The member's accrual: what the sale earned pays any debt first, the rest is a new lot."""
    sale_id = ids.sale_id(cmd.store_id, cmd.receipt_no)
    debt_paid = min(member.debt_points, valuation.points)
    kept = valuation.points - debt_paid
    lot = None
    if kept > 0:
        lot = Lot(
            lot_id=member.version + 1,
            reference=cmd.receipt_no,
            earned_at=cmd.occurred_at,
            available_at=available_at(rules, cmd.occurred_at),
            expires_at=expires_at(rules, cmd.occurred_at),
            points=kept,
            remaining=kept,
            sale_id=sale_id,
        )
    return PointsAccrued(
        originator_id=member.id,
        originator_version=member.version + 1,
        store_id=cmd.store_id,
        reference=cmd.receipt_no,
        sale_id=sale_id,
        occurred_at=cmd.occurred_at,
        points=valuation.points,
        debt_paid=debt_paid,
        lot=lot,
        valuation=valuation,
        operator=operator,
        cashier=cmd.cashier,
    )


def record_sale(
    cmd: PostSale,
    member: Member,
    version: RuleVersion,
    *,
    fingerprint: str,
    operator: str,
    now: datetime,
    birthday: str | None,
) -> tuple[list[DomainEvent], SaleReceipt]:
    """Value the sale (with the tier held at its time) and decide the member's events and the
    sale record. Pure. `birthday`: the member's 'MM-DD' from the identity index (None: unknown
    or erased)."""
    rules = version.rules
    held = tier_at(member.tier_marks, cmd.occurred_at, member.tier)
    facts = MemberFacts(tier=effective_tier(rules, held), birthday=birthday)
    valuation = value_sale(rules, version.version, cmd.occurred_at, cmd.lines, facts)
    events: list[DomainEvent] = [_accrual(cmd, member, rules, valuation, operator)]
    upgrade = _upgrade(member, cmd, version, valuation.spend_fen, member.version + 2)
    if upgrade is not None:
        events.append(upgrade)
    state = after(member, events)
    sale_id = ids.sale_id(cmd.store_id, cmd.receipt_no)
    receipt = SaleReceipt(
        sale_id=sale_id,
        store_id=cmd.store_id,
        receipt_no=cmd.receipt_no,
        member_id=member.member_id,
        occurred_at=cmd.occurred_at,
        points_earned=valuation.points,
        breakdown=valuation.lines,
        factors=valuation.factors,
        explanation=valuation.explanation,
        balance=balance(state, now),
        tier=effective_tier(rules, state.tier),
        tier_changed=upgrade is not None,
        rule_version=version.version,
    )
    record = SaleRecorded(
        originator_id=sale_id,
        originator_version=1,
        store_id=cmd.store_id,
        receipt_no=cmd.receipt_no,
        member_id=member.member_id,
        occurred_at=cmd.occurred_at,
        lines=cmd.lines,
        fingerprint=fingerprint,
        valuation=valuation,
        receipt=receipt,
    )
    return [*events, record], receipt

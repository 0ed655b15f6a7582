"""Refunds (SPEC 2.4): reverse what part of a sale earned, with the sale's own valuation.

Points reversed are computed cumulatively (the value of everything refunded so far minus what
earlier refunds already reversed), so a full refund, in one go or in pieces, reverses exactly
what the sale earned; a line partly paid by medical insurance reverses on its uninsured share.
The reversal takes what is left of the sale's own lot first (pending or not), then the member's
other lots FIFO by expiry (pending or not); a lot due at the refund's time counts as gone
(SPEC 2.3), and what the member already spent becomes a recorded debt.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from ledger.domain.commands import RefundSale, SaleLine
from ledger.domain.errors import InvalidInput, RefundExceedsSale
from ledger.domain.member import Member, PointsReversed, after, balance
from ledger.domain.model import DomainEvent
from ledger.domain.sale import RefundReceipt, Sale, SaleRefunded
from ledger.policies.lots import LotTake, reversible, take_fifo
from ledger.policies.valuation import refunded_lines, refunded_spend, value_refund


class Refundable(Protocol):
    """A sale record refunds are checked against (a member's sale or a non-member one)."""

    @property
    def lines(self) -> Sequence[SaleLine]: ...

    @property
    def refunded_fen(self) -> dict[int, int]: ...


def refund_amounts(sale: Refundable, cmd: RefundSale) -> dict[int, int]:
    """This refund's fen per line, checked against what was sold and not yet refunded."""
    amounts: dict[int, int] = {}
    for n, line in enumerate(cmd.lines):
        if line.line_no > len(sale.lines):
            raise InvalidInput(
                f"the sale has {len(sale.lines)} lines, not {line.line_no}",
                field=f"lines[{n}].line_no",
            )
        amounts[line.line_no] = amounts.get(line.line_no, 0) + line.amount_fen
        sold = sale.lines[line.line_no - 1].amount_fen
        before = sale.refunded_fen.get(line.line_no, 0)
        if before + amounts[line.line_no] > sold:
            raise RefundExceedsSale(
                f"line {line.line_no} sold {sold} fen, {before} already refunded: "
                f"{amounts[line.line_no]} more is too much",
                field=f"lines[{n}].amount_fen",
            )
    return amounts


def _takes(member: Member, sale: Sale, points: int, at: datetime) -> tuple[list[LotTake], int]:
    """The sale's own lot first, then the other lots FIFO (none due at `at`); returns the takes
    and the shortfall (the debt)."""
    lots = reversible(member.lots, at)
    own = [lot for lot in lots if lot.sale_id == sale.id]
    first, left = take_fifo(own, points)
    rest, shortfall = take_fifo([lot for lot in lots if lot.sale_id != sale.id], left)
    return first + rest, shortfall


def _reversal(
    sale: Sale, member: Member, cmd: RefundSale, amounts: dict[int, int], operator: str
) -> PointsReversed:
    """The member's reversal: the sale's own valuation applied to everything refunded so far,
    less what earlier refunds reversed (so a full refund reverses exactly what was earned)."""
    refunded = dict(sale.refunded_fen)
    for line_no, fen in amounts.items():
        refunded[line_no] = refunded.get(line_no, 0) + fen
    worth = value_refund(sale.valuation, refunded)
    points = worth - sale.points_reversed
    takes, debt = _takes(member, sale, points, cmd.occurred_at)
    spend = refunded_spend(sale.valuation, sale.refunded_fen, refunded)
    return PointsReversed(
        originator_id=member.id,
        originator_version=member.version + 1,
        store_id=sale.store_id,
        reference=cmd.refund_no,
        sale_id=sale.id,
        receipt_no=sale.receipt_no,
        sale_occurred_at=sale.occurred_at,
        occurred_at=cmd.occurred_at,
        points=points,
        takes=takes,
        debt_added=debt,
        spend_fen=spend,
        rule_version=sale.valuation.rule_version,
        operator=operator,
        cashier=cmd.cashier,
        lines=refunded_lines(sale.valuation, amounts),
        receipt_multiplier=sale.valuation.receipt_multiplier,
        worth_points=worth,
        reversed_before=sale.points_reversed,
    )


def refund_sale(
    sale: Sale,
    member: Member,
    cmd: RefundSale,
    *,
    fingerprint: str,
    operator: str,
    now: datetime,
) -> tuple[list[DomainEvent], RefundReceipt]:
    """Decide a refund's events: the member's reversal and the sale's record of it. Pure."""
    if cmd.occurred_at < sale.occurred_at:
        raise InvalidInput("a refund cannot happen before its sale", field="occurred_at")
    amounts = refund_amounts(sale, cmd)
    reversal = _reversal(sale, member, cmd, amounts, operator)
    state = after(member, [reversal])
    receipt = RefundReceipt(
        sale_id=sale.id,
        store_id=sale.store_id,
        receipt_no=sale.receipt_no,
        refund_no=cmd.refund_no,
        member_id=sale.member_id,
        occurred_at=cmd.occurred_at,
        points_reversed=reversal.points,
        debt_added=reversal.debt_added,
        spend_reversed_fen=reversal.spend_fen,
        balance=balance(state, now),
        debt_points=state.debt_points,
    )
    record = SaleRefunded(
        originator_id=sale.id,
        originator_version=sale.version + 1,
        refund_no=cmd.refund_no,
        occurred_at=cmd.occurred_at,
        refunded_fen=amounts,
        points_reversed=reversal.points,
        fingerprint=fingerprint,
        receipt=receipt,
    )
    return [reversal, record], receipt

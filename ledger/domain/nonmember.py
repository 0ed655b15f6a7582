"""Non-member sales: the POS posts every receipt, also those without a card (`member_id: null`).

They earn nothing and touch no member; they are recorded so that analytics can compare members
with all customers (member sales share, member vs. average ticket, SPEC 2.9). A non-member sale
shares the member sales' identity, `(store_id, receipt_no)`, so a receipt number is used once
per store whoever bought; its refunds are checked line by line as a member sale's are.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

import msgspec

from ledger.domain import ids
from ledger.domain.commands import PostSale, RefundSale, SaleLine
from ledger.domain.errors import InvalidInput
from ledger.domain.model import Aggregate, DomainEvent, born
from ledger.domain.refund import refund_amounts


class NonMemberSaleReceipt(msgspec.Struct, frozen=True, kw_only=True):
    """What the POS is told about a sale without a member: it earned nothing, and there is no
    balance or tier to show. A retry gets exactly this back."""

    sale_id: UUID
    store_id: str
    receipt_no: str
    member_id: None = None
    occurred_at: datetime
    amount_fen: int  # the receipt's total, every line
    points_earned: Literal[0] = 0
    balance: None = None


class NonMemberRefundReceipt(msgspec.Struct, frozen=True, kw_only=True):
    sale_id: UUID
    store_id: str
    receipt_no: str
    refund_no: str
    member_id: None = None
    occurred_at: datetime
    refunded_fen: int  # by this refund
    points_reversed: Literal[0] = 0
    balance: None = None


class NonMemberSaleRecorded(DomainEvent, frozen=True, kw_only=True):
    store_id: str
    receipt_no: str
    occurred_at: datetime
    lines: list[SaleLine]
    amount_fen: int
    fingerprint: str
    receipt: NonMemberSaleReceipt
    operator: str


class NonMemberSaleRefunded(DomainEvent, frozen=True, kw_only=True):
    store_id: str
    receipt_no: str
    refund_no: str
    occurred_at: datetime
    refunded_fen: dict[int, int]  # by line number, this refund
    amount_fen: int  # this refund's total
    fingerprint: str
    receipt: NonMemberRefundReceipt
    operator: str


class NonMemberSale(Aggregate, kw_only=True):
    store_id: str
    receipt_no: str
    occurred_at: datetime
    lines: list[SaleLine]
    fingerprint: str
    receipt: NonMemberSaleReceipt
    refunded_fen: dict[int, int] = msgspec.field(default_factory=dict)  # by line, so far
    refunds: dict[str, NonMemberSaleRefunded] = msgspec.field(default_factory=dict)


def evolve(state: NonMemberSale | None, event: DomainEvent) -> NonMemberSale:
    if isinstance(event, NonMemberSaleRefunded) and state is not None:
        for line_no, fen in event.refunded_fen.items():
            state.refunded_fen[line_no] = state.refunded_fen.get(line_no, 0) + fen
        state.refunds[event.refund_no] = event
        return state
    if not isinstance(event, NonMemberSaleRecorded):
        raise TypeError(f"NonMemberSale cannot apply {type(event).__name__}")
    return NonMemberSale(
        **born(event),
        store_id=event.store_id,
        receipt_no=event.receipt_no,
        occurred_at=event.occurred_at,
        lines=event.lines,
        fingerprint=event.fingerprint,
        receipt=event.receipt,
    )


def record_non_member_sale(
    cmd: PostSale, *, fingerprint: str, operator: str
) -> tuple[NonMemberSaleRecorded, NonMemberSaleReceipt]:
    """The record of a sale without a member. Pure."""
    if cmd.member_id is not None:
        raise InvalidInput("a member's sale is valued, not recorded", field="member_id")
    sale_id = ids.sale_id(cmd.store_id, cmd.receipt_no)
    receipt = NonMemberSaleReceipt(
        sale_id=sale_id,
        store_id=cmd.store_id,
        receipt_no=cmd.receipt_no,
        occurred_at=cmd.occurred_at,
        amount_fen=sum(line.amount_fen for line in cmd.lines),
    )
    event = NonMemberSaleRecorded(
        originator_id=sale_id,
        originator_version=1,
        store_id=cmd.store_id,
        receipt_no=cmd.receipt_no,
        occurred_at=cmd.occurred_at,
        lines=cmd.lines,
        amount_fen=receipt.amount_fen,
        fingerprint=fingerprint,
        receipt=receipt,
        operator=operator,
    )
    return event, receipt


def refund_non_member_sale(
    sale: NonMemberSale, cmd: RefundSale, *, fingerprint: str, operator: str
) -> tuple[NonMemberSaleRefunded, NonMemberRefundReceipt]:
    """A refund of lines of a non-member sale, never more than was sold. Pure."""
    if cmd.occurred_at < sale.occurred_at:
        raise InvalidInput("a refund cannot happen before its sale", field="occurred_at")
    amounts = refund_amounts(sale, cmd)
    receipt = NonMemberRefundReceipt(
        sale_id=sale.id,
        store_id=sale.store_id,
        receipt_no=sale.receipt_no,
        refund_no=cmd.refund_no,
        occurred_at=cmd.occurred_at,
        refunded_fen=sum(amounts.values()),
    )
    event = NonMemberSaleRefunded(
        originator_id=sale.id,
        originator_version=sale.version + 1,
        store_id=sale.store_id,
        receipt_no=sale.receipt_no,
        refund_no=cmd.refund_no,
        occurred_at=cmd.occurred_at,
        refunded_fen=amounts,
        amount_fen=receipt.refunded_fen,
        fingerprint=fingerprint,
        receipt=receipt,
        operator=operator,
    )
    return event, receipt

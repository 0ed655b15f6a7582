"""Stored value (储值): points converted into it, spent and refunded at the POS.

A conversion is `PointsConverted` (points out, FIFO) and `StoredValueCredited` (fen in) in one
transaction; it counts in settlement as a redemption at the converting store, costing the fen
credited. Stored value never goes below zero; a refund of a payment never exceeds what that
payment took, less earlier refunds of it.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from ledger.domain.commands import ConvertPoints, PayWithStoredValue, RefundStoredValue
from ledger.domain.errors import (
    InsufficientPoints,
    InsufficientStoredValue,
    InvalidInput,
    NotOffered,
    RefundExceedsSale,
)
from ledger.domain.member import (
    Balance,
    Member,
    PointsConverted,
    StoredValueCredited,
    StoredValueDebited,
    after,
    available,
    balance,
)
from ledger.domain.model import DomainEvent
from ledger.domain.operation import Operation
from ledger.policies.lots import LotTake, spendable, take_fifo
from ledger.policies.ruleset import RuleVersion


class ConversionReceipt(msgspec.Struct, frozen=True, kw_only=True):
    member_id: str
    store_id: str
    conversion_no: str
    points_converted: int
    credited_fen: int
    stored_value_fen: int  # the new total
    takes: list[LotTake]
    balance: Balance
    rule_version: int


class StoredValueReceipt(msgspec.Struct, frozen=True, kw_only=True):
    """A payment with stored value, or a refund of one."""

    member_id: str
    store_id: str
    payment_no: str
    refund_no: str | None
    amount_fen: int
    stored_value_fen: int  # the new total
    balance: Balance


def convert(
    cmd: ConvertPoints, member: Member, version: RuleVersion, *, operator: str, now: datetime
) -> tuple[list[DomainEvent], ConversionReceipt]:
    offer = version.rules.redemption
    if offer is None or offer.stored_value_points_per_yuan is None:
        raise NotOffered("the rule set in force sets no conversion rate", field="points")
    credited = cmd.points * 100 // offer.stored_value_points_per_yuan
    if credited == 0:
        raise InvalidInput(f"{cmd.points} points are worth less than 1 fen", field="points")
    spendable_points = available(member, cmd.occurred_at, now)
    if cmd.points > spendable_points:
        raise InsufficientPoints(
            f"{cmd.points} points asked, {max(spendable_points, 0)} spendable", field="points"
        )
    takes, _ = take_fifo(spendable(member.lots, cmd.occurred_at), cmd.points)
    converted = PointsConverted(
        originator_id=member.id,
        originator_version=member.version + 1,
        store_id=cmd.store_id,
        reference=cmd.conversion_no,
        occurred_at=cmd.occurred_at,
        points=cmd.points,
        takes=takes,
        credited_fen=credited,
        rule_version=version.version,
        operator=operator,
        cashier=cmd.cashier,
    )
    credit = StoredValueCredited(
        originator_id=member.id,
        originator_version=member.version + 2,
        store_id=cmd.store_id,
        reference=cmd.conversion_no,
        occurred_at=cmd.occurred_at,
        amount_fen=credited,
        reason="conversion",
        operator=operator,
        cashier=cmd.cashier,
    )
    events: list[DomainEvent] = [converted, credit]
    state = after(member, events)
    return events, ConversionReceipt(
        member_id=member.member_id,
        store_id=cmd.store_id,
        conversion_no=cmd.conversion_no,
        points_converted=cmd.points,
        credited_fen=credited,
        stored_value_fen=state.stored_value_fen,
        takes=takes,
        balance=balance(state, now),
        rule_version=version.version,
    )


def pay(
    cmd: PayWithStoredValue, member: Member, *, operator: str, now: datetime
) -> tuple[list[DomainEvent], StoredValueReceipt]:
    if cmd.amount_fen > member.stored_value_fen:
        raise InsufficientStoredValue(
            f"{cmd.amount_fen} fen asked, {member.stored_value_fen} fen stored", field="amount_fen"
        )
    event = StoredValueDebited(
        originator_id=member.id,
        originator_version=member.version + 1,
        store_id=cmd.store_id,
        reference=cmd.payment_no,
        occurred_at=cmd.occurred_at,
        amount_fen=cmd.amount_fen,
        operator=operator,
        cashier=cmd.cashier,
    )
    state = after(member, [event])
    return [event], StoredValueReceipt(
        member_id=member.member_id,
        store_id=cmd.store_id,
        payment_no=cmd.payment_no,
        refund_no=None,
        amount_fen=cmd.amount_fen,
        stored_value_fen=state.stored_value_fen,
        balance=balance(state, now),
    )


def refund_payment(
    payment: Operation,
    cmd: RefundStoredValue,
    member: Member,
    *,
    operator: str,
    now: datetime,
) -> tuple[list[DomainEvent], StoredValueReceipt]:
    left = payment.amount_fen - payment.followed_fen
    if cmd.amount_fen > left:
        raise RefundExceedsSale(
            f"payment {payment.number} took {payment.amount_fen} fen and "
            f"{payment.followed_fen} fen went back already: at most {left} fen more",
            field="amount_fen",
        )
    event = StoredValueCredited(
        originator_id=member.id,
        originator_version=member.version + 1,
        store_id=cmd.store_id,
        reference=cmd.refund_no,
        occurred_at=cmd.occurred_at,
        amount_fen=cmd.amount_fen,
        reason="refund",
        payment_no=cmd.payment_no,
        operator=operator,
        cashier=cmd.cashier,
    )
    state = after(member, [event])
    return [event], StoredValueReceipt(
        member_id=member.member_id,
        store_id=cmd.store_id,
        payment_no=cmd.payment_no,
        refund_no=cmd.refund_no,
        amount_fen=cmd.amount_fen,
        stored_value_fen=state.stored_value_fen,
        balance=balance(state, now),
    )

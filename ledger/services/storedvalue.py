"""Numbered operations on a member: conversions to stored value, stored-value payments and their
refunds, and customer service's adjustments. Each is recorded under its number (an `Operation`
saved with the member's events), so a retry replays the answer first given."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TypeVar
from uuid import UUID

import msgspec

from ledger.domain import ids, operation
from ledger.domain.adjustment import AdjustmentReceipt, adjust
from ledger.domain.commands import (
    AdjustPoints,
    ConvertPoints,
    PayWithStoredValue,
    RefundStoredValue,
)
from ledger.domain.errors import PaymentNotFound
from ledger.domain.member import Member
from ledger.domain.model import DomainEvent
from ledger.domain.operation import FollowUpRecorded, OperationRecorded
from ledger.domain.sale import check_business_time
from ledger.domain.storedvalue import (
    ConversionReceipt,
    StoredValueReceipt,
    convert,
    pay,
    refund_payment,
)
from ledger.services.access import AccessService
from ledger.services.core import LedgerCore
from ledger.services.once import Decided, Found, once, reused
from ledger.services.rules import RulesService

R = TypeVar("R", bound=msgspec.Struct)


class StoredValueService:
    def __init__(self, core: LedgerCore, rules: RulesService, access: AccessService) -> None:
        self.core = core
        self.rules = rules
        self.access = access

    def _numbered(
        self,
        record_id: UUID,
        *,
        kind: str,
        number: str,
        card: str,
        fingerprint: str,
        receipt_type: type[R],
        decide: Callable[[Member], tuple[Sequence[DomainEvent], R]],
        amount_fen: Callable[[R], int] = lambda _: 0,
    ) -> tuple[R, bool]:
        """Run `decide` once per record id; a retry with the same fingerprint replays."""

        def step(_: bool) -> Found[R] | Decided[R]:
            existing = self.core.get(record_id, operation.evolve)
            if existing is not None:
                return Found(existing.fingerprint, operation.decode(existing.receipt, receipt_type))
            events, receipt = decide(self.core.member(card))
            record = OperationRecorded(
                originator_id=record_id,
                originator_version=1,
                kind=kind,
                number=number,
                member_id=card,
                fingerprint=fingerprint,
                amount_fen=amount_fen(receipt),
                receipt=operation.encode(receipt),
            )
            return Decided([*events, record], receipt)

        return once(self.core, fingerprint, step, reused(f"{kind} number {number!r}", f"{kind}_no"))

    def convert(
        self, card: str, cmd: ConvertPoints, operator: str, now: datetime
    ) -> tuple[ConversionReceipt, bool]:
        """Points to stored value (积分转储值), once per (store_id, conversion_no)."""
        check_business_time(cmd.occurred_at, now)
        self.access.require_store(cmd.store_id)
        version = self.rules.in_force(cmd.occurred_at)
        return self._numbered(
            ids.conversion_id(cmd.store_id, cmd.conversion_no),
            kind="conversion",
            number=cmd.conversion_no,
            card=card,
            fingerprint=self.core.fingerprint(card, cmd),
            receipt_type=ConversionReceipt,
            decide=lambda member: convert(cmd, member, version, operator=operator, now=now),
        )

    def pay(
        self, card: str, cmd: PayWithStoredValue, operator: str, now: datetime
    ) -> tuple[StoredValueReceipt, bool]:
        """Spend stored value at the POS, once per (store_id, payment_no)."""
        check_business_time(cmd.occurred_at, now)
        self.access.require_store(cmd.store_id)
        return self._numbered(
            ids.payment_id(cmd.store_id, cmd.payment_no),
            kind="payment",
            number=cmd.payment_no,
            card=card,
            fingerprint=self.core.fingerprint(card, cmd),
            receipt_type=StoredValueReceipt,
            decide=lambda member: pay(cmd, member, operator=operator, now=now),
            amount_fen=lambda receipt: receipt.amount_fen,
        )

    def refund_payment(
        self, card: str, cmd: RefundStoredValue, operator: str, now: datetime
    ) -> tuple[StoredValueReceipt, bool]:
        """Give back (part of) a stored-value payment, once per refund number of that payment."""
        check_business_time(cmd.occurred_at, now)
        fingerprint = self.core.fingerprint(card, cmd)
        payment_id = ids.payment_id(cmd.store_id, cmd.payment_no)

        def step(_: bool) -> Found[StoredValueReceipt] | Decided[StoredValueReceipt]:
            payment = self.core.get(payment_id, operation.evolve)
            if payment is None or not self._same_account(payment.member_id, card):
                raise PaymentNotFound(
                    f"member {card!r} made no payment {cmd.payment_no!r} at {cmd.store_id!r}",
                    field="payment_no",
                )
            done = payment.follow_ups.get(cmd.refund_no)
            if done is not None:
                return Found(done.fingerprint, operation.decode(done.receipt, StoredValueReceipt))
            member = self.core.member(card, old_card_ok=True, follow_merge=True)
            events, receipt = refund_payment(payment, cmd, member, operator=operator, now=now)
            follow_up = FollowUpRecorded(
                originator_id=payment.id,
                originator_version=payment.version + 1,
                number=cmd.refund_no,
                fingerprint=fingerprint,
                amount_fen=cmd.amount_fen,
                receipt=operation.encode(receipt),
            )
            return Decided([*events, follow_up], receipt)

        what = f"refund number {cmd.refund_no!r} of this payment"
        return once(self.core, fingerprint, step, reused(what, "refund_no"))

    def adjust(
        self, card: str, cmd: AdjustPoints, operator: str, now: datetime
    ) -> tuple[AdjustmentReceipt, bool]:
        """Customer service's credit or debit (SPEC 2.6), once per adjustment number."""
        occurred_at = cmd.occurred_at or now
        check_business_time(occurred_at, now)
        version = self.rules.at_or_first(occurred_at)
        return self._numbered(
            ids.adjustment_id(cmd.adjustment_no),
            kind="adjustment",
            number=cmd.adjustment_no,
            card=card,
            # the default time is not part of the request: a retry without it is the same one
            fingerprint=self.core.fingerprint(card, cmd),
            receipt_type=AdjustmentReceipt,
            decide=lambda member: adjust(
                cmd, member, version, occurred_at=occurred_at, operator=operator, now=now
            ),
        )

    def _same_account(self, paid_with: str, card: str) -> bool:
        """Whether the card a payment was made with and `card` read one account (a payment made
        before the card was replaced is refunded under the new card too)."""
        return paid_with == card or self.core.account(paid_with).id == self.core.account(card).id

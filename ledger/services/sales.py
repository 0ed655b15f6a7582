"""Sales and their refunds, with or without a member: the one place that tells them apart."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from ledger.domain import ids, receipts
from ledger.domain.commands import PostSale, RefundSale
from ledger.domain.errors import LedgerError, SaleNotFound
from ledger.domain.member import Member, after
from ledger.domain.model import DomainEvent
from ledger.domain.nonmember import (
    NonMemberRefundReceipt,
    NonMemberSale,
    NonMemberSaleReceipt,
    record_non_member_sale,
    refund_non_member_sale,
)
from ledger.domain.refund import refund_sale
from ledger.domain.sale import (
    RefundReceipt,
    Sale,
    SaleReceipt,
    check_business_time,
    check_lines,
    fingerprint_form,
    record_sale,
)
from ledger.services.access import AccessService
from ledger.services.core import LedgerCore
from ledger.services.once import Decided, Found, once, reused
from ledger.services.rules import RulesService

SaleAnswer = SaleReceipt | NonMemberSaleReceipt
RefundAnswer = RefundReceipt | NonMemberRefundReceipt
BatchOutcome = tuple[SaleAnswer, bool] | LedgerError


class SalesService:
    def __init__(self, core: LedgerCore, rules: RulesService, access: AccessService) -> None:
        self.core = core
        self.rules = rules
        self.access = access

    def post(self, cmd: PostSale, operator: str, now: datetime) -> tuple[SaleAnswer, bool]:
        """Record a POS sale exactly once; a retry of the same body gets the original receipt.
        A sale with `member_id: null` earns nothing and touches no member (analytics count it)."""
        check_business_time(cmd.occurred_at, now)
        check_lines(cmd.lines)
        fingerprint = self.core.fingerprint(fingerprint_form(cmd))
        sale_uuid = ids.sale_id(cmd.store_id, cmd.receipt_no)

        def step(retry: bool) -> Found[SaleAnswer] | Decided[SaleAnswer]:
            # A new receipt is the common case: its record's insert is the idempotency check
            # (its id is derived from the receipt number), so the store is asked only on a retry.
            existing = self._record(sale_uuid) if retry else None
            if existing is not None:
                return Found(existing.fingerprint, existing.receipt)
            return self._decide(cmd, fingerprint, operator, now, None)

        what = f"receipt {cmd.receipt_no!r} of store {cmd.store_id!r}"
        return once(self.core, fingerprint, step, reused(what, "receipt_no"))

    def _decide(
        self,
        cmd: PostSale,
        fingerprint: str,
        operator: str,
        now: datetime,
        members: dict[UUID, Member] | None,
    ) -> Decided[SaleAnswer]:
        """A new sale's events and receipt; `members` (a batch's) holds members as earlier
        sales of the same batch leave them (and gets this one's member as it leaves it); None
        for a sale posted alone, whose member state after the sale nobody reads."""
        self.access.require_store(cmd.store_id)
        if cmd.member_id is None:
            event, answer = record_non_member_sale(cmd, fingerprint=fingerprint, operator=operator)
            return Decided([event], answer)
        version = self.rules.in_force(cmd.occurred_at)
        member = self.core.member(cmd.member_id)
        if members is not None:
            member = members.get(member.id, member)
        events, receipt = record_sale(
            cmd,
            member,
            version,
            fingerprint=fingerprint,
            operator=operator,
            now=now,
            birthday=self.core.birthday(member),
        )
        if members is not None:
            members[member.id] = after(member, events)
        return Decided(events, receipt)

    def post_batch(
        self, cmds: Sequence[PostSale], operator: str, now: datetime
    ) -> list[BatchOutcome]:
        """Sales of one upload (an offline store's day), each answered as if posted alone, in
        order; never all-or-nothing. All are decided first and the new ones saved in one
        transaction; if that clashes (a receipt already recorded: a replay or a reused number,
        or another request for one of the members), each is posted alone, in order."""
        receipts = {(c.store_id, c.receipt_no) for c in cmds}
        if len(receipts) == len(cmds):  # a receipt twice in one upload: its second is a replay
            together = self._together(cmds, operator, now)
            if together is not None:
                return together
        return [self._alone(cmd, operator, now) for cmd in cmds]

    def _alone(self, cmd: PostSale, operator: str, now: datetime) -> BatchOutcome:
        try:
            return self.post(cmd, operator, now)
        except LedgerError as e:
            return e

    def _together(
        self, cmds: Sequence[PostSale], operator: str, now: datetime
    ) -> list[BatchOutcome] | None:
        members: dict[UUID, Member] = {}
        events: list[DomainEvent] = []
        outcomes: list[BatchOutcome] = []
        for cmd in cmds:
            try:
                check_business_time(cmd.occurred_at, now)
                check_lines(cmd.lines)
                fingerprint = self.core.fingerprint(fingerprint_form(cmd))
                decided = self._decide(cmd, fingerprint, operator, now, members)
            except LedgerError as e:
                outcomes.append(e)
                continue
            events += decided.events
            outcomes.append((decided.receipt, True))
        try:
            if events:
                self.core.save(*events)
        except IntegrityError:
            return None
        return outcomes

    def refund(
        self, store_id: str, receipt_no: str, cmd: RefundSale, operator: str, now: datetime
    ) -> tuple[RefundAnswer, bool]:
        """Reverse the points of refunded lines, exactly once per refund number (a non-member
        sale's refund only records the amounts)."""
        check_business_time(cmd.occurred_at, now)
        fingerprint = self.core.fingerprint(store_id, receipt_no, cmd)

        def step(_: bool) -> Found[RefundAnswer] | Decided[RefundAnswer]:
            sale = self.record(store_id, receipt_no)
            done = sale.refunds.get(cmd.refund_no)
            if done is not None:
                return Found(done.fingerprint, done.receipt)
            if isinstance(sale, NonMemberSale):
                event, answer = refund_non_member_sale(
                    sale, cmd, fingerprint=fingerprint, operator=operator
                )
                return Decided([event], answer)
            self.rules.in_force(cmd.occurred_at)
            member = self.core.member(sale.member_id, old_card_ok=True, follow_merge=True)
            events, receipt = refund_sale(
                sale, member, cmd, fingerprint=fingerprint, operator=operator, now=now
            )
            return Decided(events, receipt)

        what = f"refund {cmd.refund_no!r} of this sale"
        return once(self.core, fingerprint, step, reused(what, "refund_no"))

    def _record(self, sale_uuid: UUID) -> Sale | NonMemberSale | None:
        return self.core.get(sale_uuid, receipts.evolve)

    def record(self, store_id: str, receipt_no: str) -> Sale | NonMemberSale:
        """The sale recorded under a receipt, with or without a member (404 if none)."""
        sale = self._record(ids.sale_id(store_id, receipt_no))
        if sale is None:
            raise SaleNotFound(f"no sale {receipt_no!r} at store {store_id!r}", field="receipt_no")
        return sale

"""Bonuses (SPEC 2.6): granted once per (store_id, bonus_no); a registration once per member, a
referral once per referred member."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from ledger.domain import bonus, ids, operation
from ledger.domain.bonus import BonusReceipt
from ledger.domain.commands import GrantBonus
from ledger.domain.errors import BonusAlreadyGranted
from ledger.domain.model import DomainEvent
from ledger.domain.operation import OperationRecorded
from ledger.domain.sale import check_business_time
from ledger.services.access import AccessService
from ledger.services.core import LedgerCore
from ledger.services.once import Decided, Found, once, reused
from ledger.services.rules import RulesService


class BonusesService:
    def __init__(self, core: LedgerCore, rules: RulesService, access: AccessService) -> None:
        self.core = core
        self.rules = rules
        self.access = access

    def grant(
        self, card: str, cmd: GrantBonus, operator: str, now: datetime
    ) -> tuple[BonusReceipt, bool]:
        """Grant a bonus of the rule set in force at its `occurred_at`, exactly once per number;
        its business time is bounded like a sale's (it may precede the enrolment)."""
        check_business_time(cmd.occurred_at, now)
        fingerprint = self.core.fingerprint(card, cmd)
        record_id = ids.bonus_id(cmd.store_id, cmd.bonus_no)

        def step(_: bool) -> Found[BonusReceipt] | Decided[BonusReceipt]:
            existing = self.core.get(record_id, operation.evolve)
            if existing is not None:
                return Found(existing.fingerprint, operation.decode(existing.receipt, BonusReceipt))
            self.access.require_store(cmd.store_id)
            version = self.rules.in_force(cmd.occurred_at)
            member = self.core.member(card)
            referred = cmd.referred_member_id
            events, receipt = bonus.grant(
                cmd,
                member,
                version,
                referred_enrolled=referred is not None and self._enrolled(referred),
                operator=operator,
                now=now,
            )
            records: list[DomainEvent] = [
                _record(
                    record_id,
                    "bonus",
                    cmd,
                    card=card,
                    fingerprint=fingerprint,
                    receipt=operation.encode(receipt),
                )
            ]
            claimed = bonus.claimed_card(cmd, card)
            if claimed is not None:
                claim_id = ids.bonus_claim_id(cmd.code, claimed)
                if self.core.get(claim_id, operation.evolve) is not None:
                    raise BonusAlreadyGranted(
                        f"a {cmd.code} bonus was already granted for member {claimed!r}",
                        field="code" if cmd.code == "registration" else "referred_member_id",
                    )
                claim = _record(
                    claim_id, f"{cmd.code}-claim", cmd, card=card, fingerprint=fingerprint
                )
                records.append(claim)
            return Decided([*events, *records], receipt)

        what = f"bonus number {cmd.bonus_no!r} of store {cmd.store_id!r}"
        return once(self.core, fingerprint, step, reused(what, "bonus_no"))

    def _enrolled(self, card: str) -> bool:
        return bool(self.core.recorder.select_events(ids.member_id(card), limit=1))


def _record(
    record_id: UUID,
    kind: str,
    cmd: GrantBonus,
    *,
    card: str,
    fingerprint: str,
    receipt: bytes = b"",
) -> OperationRecorded:
    """The bonus's idempotency record (with its receipt), or the claim of a once-only bonus."""
    return OperationRecorded(
        originator_id=record_id,
        originator_version=1,
        kind=kind,
        number=cmd.bonus_no,
        member_id=card,
        fingerprint=fingerprint,
        receipt=receipt,
    )

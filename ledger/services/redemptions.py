"""Redemptions (SPEC 2.3): spending or holding points, capturing a hold, voiding."""

from __future__ import annotations

from datetime import datetime

from ledger.domain import ids, redemption
from ledger.domain.commands import Redeem
from ledger.domain.errors import RedemptionNotFound
from ledger.domain.redemption import Redemption, RedemptionReceipt, VoidReceipt
from ledger.domain.sale import check_business_time
from ledger.services.access import AccessService
from ledger.services.core import LedgerCore
from ledger.services.once import Decided, Found, once, reused
from ledger.services.rules import RulesService


class RedemptionsService:
    def __init__(self, core: LedgerCore, rules: RulesService, access: AccessService) -> None:
        self.core = core
        self.rules = rules
        self.access = access

    def redeem(self, cmd: Redeem, operator: str, now: datetime) -> tuple[RedemptionReceipt, bool]:
        """Spend or hold points, exactly once per (store_id, redemption_no)."""
        check_business_time(cmd.occurred_at, now)
        fingerprint = self.core.fingerprint(cmd)
        redemption_id = ids.redemption_id(cmd.store_id, cmd.redemption_no)

        def step(_: bool) -> Found[RedemptionReceipt] | Decided[RedemptionReceipt]:
            existing = self.core.get(redemption_id, redemption.evolve)
            if existing is not None:
                return Found(existing.fingerprint, existing.first_receipt)
            self.access.require_store(cmd.store_id)
            version = self.rules.in_force(cmd.occurred_at)
            member = self.core.member(cmd.member_id)
            return Decided(
                *redemption.redeem(
                    cmd, member, version, fingerprint=fingerprint, operator=operator, now=now
                )
            )

        what = f"redemption {cmd.redemption_no!r} of store {cmd.store_id!r}"
        return once(self.core, fingerprint, step, reused(what, "redemption_no"))

    def capture(
        self, store_id: str, redemption_no: str, operator: str, now: datetime
    ) -> tuple[RedemptionReceipt, bool]:
        """Complete a held redemption; capturing again replays the result."""

        def step(_: bool) -> Found[RedemptionReceipt] | Decided[RedemptionReceipt]:
            found = self.find(store_id, redemption_no)
            if found.status == "redeemed":
                return Found("", found.receipt)
            member = self.core.member(found.member_id, old_card_ok=True)
            return Decided(*redemption.capture(found, member, operator=operator, now=now))

        return once(self.core, "", step)

    def void(
        self, store_id: str, redemption_no: str, operator: str, now: datetime
    ) -> tuple[VoidReceipt, bool]:
        """Void a redemption (or release its hold); voiding again replays the result."""

        def step(_: bool) -> Found[VoidReceipt] | Decided[VoidReceipt]:
            found = self.find(store_id, redemption_no)
            if found.void_receipt is not None:
                return Found("", found.void_receipt)
            member = self.core.member(found.member_id, old_card_ok=True)
            return Decided(*redemption.void(found, member, operator=operator, now=now))

        return once(self.core, "", step)

    def find(self, store_id: str, redemption_no: str) -> Redemption:
        """The redemption recorded under a number (404 if none)."""
        found = self.core.get(ids.redemption_id(store_id, redemption_no), redemption.evolve)
        if found is None:
            raise RedemptionNotFound(
                f"no redemption {redemption_no!r} at store {store_id!r}", field="redemption_no"
            )
        return found

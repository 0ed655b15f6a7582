"""Settlement months (SPEC 2.7): finance closes a month; its digest seals what it counted."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

from ledger.domain import ids, settlement
from ledger.domain.errors import InvalidInput, invariant
from ledger.domain.model import DomainEvent
from ledger.services.core import LedgerCore


class SettlementService:
    def __init__(self, core: LedgerCore) -> None:
        self.core = core

    def close(
        self, period: str, operator: str, now: datetime
    ) -> tuple[settlement.CloseReceipt, bool]:
        """Close a settlement month; closing it again replays the first close. The close and
        its digest are two events: a close whose digest was cut short is finished by a retry."""
        settlement.check_period(period)
        zone = ZoneInfo(self.core.settings.timezone)
        created = False

        def attempt() -> tuple[settlement.CloseReceipt, bool]:
            nonlocal created
            current = self.core.get(ids.settlement_period_id(period), settlement.evolve)
            closing, _ = settlement.close(current, period, zone, operator, now)
            if closing is not None:
                self.core.save(closing)
                created = True
                current = settlement.evolve(None, closing)
            invariant(current is not None, "the month is closed")
            digested = settlement.record_digest(current, self.month_digest(period))  # type: ignore[arg-type]
            if digested is not None:
                self.core.save(digested)
                current = settlement.evolve(current, digested)
            return settlement.receipt(current), created  # type: ignore[arg-type]

        return self.core.retrying(attempt)

    def log(self) -> Iterator[DomainEvent]:
        """The events that decide settlement months and their digests, in log order."""
        return self.core.stored(*settlement.DIGESTED)

    def month_digest(self, period: str) -> settlement.Digest:
        """The digest of a closed month, computed from the log (it is read to the close)."""
        digests = settlement.MonthDigests()
        for event in self.log():
            digests.add(event)
            if period in digests.closed:
                return digests.closed[period]
        raise InvalidInput(f"{period} is not closed", field="period")

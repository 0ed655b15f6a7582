"""Back-office reports from the projections: the points liability (finance) and the members
with points about to expire (service: who to remind)."""

from __future__ import annotations

from datetime import datetime

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromQuery

from api.auth import roles
from api.validation import Count, Instant
from ledger.domain.commands import Identifier
from projections.queries import ExpiringPage, LiabilityReport, Queries


class ReportsController(Controller):
    path = "/v1"
    tags = ["reports"]  # noqa: RUF012

    @get("/liability", operation_id="getLiability", guards=[roles("finance")], sync_to_thread=True)
    def liability(
        self,
        queries: NamedDependency[Queries],
        now: NamedDependency[datetime],
        as_of: FromQuery[Instant | None] = None,
    ) -> LiabilityReport:
        return queries.liability(as_of or now)

    @get("/expiring", operation_id="getExpiring", guards=[roles("service")], sync_to_thread=True)
    def expiring(
        self,
        queries: NamedDependency[Queries],
        now: NamedDependency[datetime],
        within_days: FromQuery[Count] = 30,
        store_id: FromQuery[Identifier | None] = None,
        cursor: FromQuery[Count] = 0,
        limit: FromQuery[Count] = 100,
    ) -> ExpiringPage:
        return queries.expiring(now, within_days, store_id, cursor, limit)

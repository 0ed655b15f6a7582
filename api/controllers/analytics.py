"""`/v1/analytics/{period}`: member analytics (会员分析, SPEC 2.9) for a month, per store or for
the whole chain (finance and customer service). A projection: it may lag the log (the report
says by how much)."""

from __future__ import annotations

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery

from api.auth import roles
from api.validation import Period
from ledger.domain.commands import Identifier
from projections.analytics_report import AnalyticsReport
from projections.queries import Queries


class AnalyticsController(Controller):
    path = "/v1/analytics"
    tags = ["analytics"]  # noqa: RUF012

    @get(
        "/{period:str}",
        operation_id="getAnalytics",
        guards=[roles("finance", "service")],
        sync_to_thread=True,
    )
    def read(
        self,
        period: FromPath[Period],
        queries: NamedDependency[Queries],
        store_id: FromQuery[Identifier | None] = None,
    ) -> AnalyticsReport:
        return queries.analytics(period, store_id)

"""Finance's page: a settlement month as a table with totals and its CSV, the points liability
as of a date, and points issued vs. redeemed per month. The same Queries as the JSON API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.params import FromQuery
from litestar.response import Template

from api.console import text
from api.console.charts import grouped_bars
from api.console.render import page
from api.console.session import Viewer
from api.validation import Period
from ledger.domain.errors import InvalidInput
from projections.queries import Queries, settlement_csv

CHART_MONTHS = 12


def finance_context(
    queries: Queries, *, period: str, as_of: date | None, now: datetime, zone: ZoneInfo, lang: str
) -> dict[str, Any]:
    """Everything the finance page shows (InvalidInput for a malformed month)."""
    report = queries.settlement(period)
    liability = queries.liability(text.end_of_day(as_of, zone) if as_of else now)
    months = queries.points_by_month(text.months_back(period, CHART_MONTHS - 1), period)
    labels = text.labels(lang)
    chart = grouped_bars(
        [(m.period[2:], [m.points_issued, m.points_redeemed + m.points_converted]) for m in months],
        [labels["issued"], labels["redeemed"]],
    )
    return {"report": report, "liability": liability, "months": months, "chart": chart}


class FinancePage(Controller):
    path = "/console/finance"
    include_in_schema = False

    @get("/", operation_id="consoleFinance", sync_to_thread=True)
    def read(
        self,
        request: Request[Any, Any, Any],
        viewer: NamedDependency[Viewer],
        queries: NamedDependency[Queries],
        now: NamedDependency[datetime],
        zone: NamedDependency[ZoneInfo],
        period: FromQuery[Period | None] = None,
        as_of: FromQuery[date | None] = None,
    ) -> Template:
        viewer.require("finance")
        period = period or text.month_of_day(now.astimezone(zone).date())
        try:
            context = finance_context(
                queries, period=period, as_of=as_of, now=now, zone=zone, lang=viewer.lang
            )
        except InvalidInput as e:
            return page(request, viewer, "finance.html", status=422, period=period, error=e.detail)
        return page(
            request, viewer, "finance.html", period=period, as_of=as_of, error=None, **context
        )

    @get("/settlement.csv", operation_id="consoleSettlementCsv", sync_to_thread=True)
    def csv(
        self,
        viewer: NamedDependency[Viewer],
        queries: NamedDependency[Queries],
        period: FromQuery[Period],
    ) -> Response[str]:
        """The same CSV as `GET /v1/settlements/{period}?format=csv`."""
        viewer.require("finance")
        report = queries.settlement(period)
        return Response(
            settlement_csv(report),
            media_type="text/csv; charset=utf-8",
            headers={
                "content-disposition": f'attachment; filename="settlement-{report.period}.csv"'
            },
        )

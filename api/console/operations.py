"""The operations page: member analytics per store for a month (SPEC 2.9: active ratio, churn,
member share, tickets, refunds, anomalies), and, for admins only, how far each projection lags
the log (technical figures that mean nothing to business staff).

`analytics_table(rows)` turns Structs of figures into a table of formatted cells, and the
template's `analytics` block draws it. It computes nothing: every figure is the analytics
query's own (`Queries.analytics`, the same as `GET /v1/analytics/{period}`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.params import FromQuery
from litestar.response import Template

from api.console import text
from api.console.render import page
from api.console.session import Viewer
from api.validation import Period
from ledger.domain.errors import InvalidInput
from projections.analytics_report import AnalyticsReport
from projections.queries import Queries


class Table(msgspec.Struct, frozen=True, kw_only=True):
    columns: list[str]
    rows: list[list[str]]


def cell(field: str, value: Any) -> str:
    """A figure as the console shows it: fen as yuan, ratios and rates as percentages."""
    if value is None:
        return "—"
    if field.endswith("_fen") and isinstance(value, int):
        return text.yuan(value)
    if field.endswith(("_ratio", "_rate", "_share")) and isinstance(value, Decimal | float | str):
        return f"{Decimal(str(value)) * 100:.1f}%"
    if isinstance(value, int) and not isinstance(value, bool):
        return text.points(value)
    return str(value)


def _rows(report: msgspec.Struct) -> list[msgspec.Struct]:
    for value in msgspec.structs.asdict(report).values():
        if isinstance(value, list) and all(isinstance(v, msgspec.Struct) for v in value):
            return value
    return [report]  # a Struct of one store's figures


def analytics_table(report: msgspec.Struct | Sequence[msgspec.Struct]) -> Table:
    """The analytics report (or its rows) as a table, one row per store, columns in field
    order."""
    rows = _rows(report) if isinstance(report, msgspec.Struct) else list(report)
    if not rows:
        return Table(columns=[], rows=[])
    columns = list(msgspec.structs.asdict(rows[0]))
    body = [[cell(c, v) for c, v in msgspec.structs.asdict(row).items()] for row in rows]
    return Table(columns=columns, rows=body)


STORES_SHOWN = 50  # stores with their own member figures on one page (a query each)


class StoreAnalytics(msgspec.Struct, frozen=True, kw_only=True):
    """One row of the page's table: a store's members and sales in the month."""

    store_id: str
    total_members: int
    new_members: int
    active_ratio: Decimal | None
    churn_rate: Decimal | None
    member_sales_share: Decimal | None
    member_average_ticket_fen: int | None
    average_ticket_fen: int | None
    refund_rate: Decimal | None


def store_row(label: str, report: AnalyticsReport) -> StoreAnalytics:
    members, sales = report.members, report.sales
    return StoreAnalytics(
        store_id=label,
        total_members=members.total_members,
        new_members=members.new_members,
        active_ratio=members.active_ratio,
        churn_rate=members.churn_rate,
        member_sales_share=sales.member_sales_share,
        member_average_ticket_fen=sales.member_average_ticket_fen,
        average_ticket_fen=sales.average_ticket_fen,
        refund_rate=sales.refund_rate,
    )


def analytics_rows(queries: Queries, period: str) -> tuple[AnalyticsReport, list[StoreAnalytics]]:
    """The chain's report, and a row for the chain and for each store that sold in the month
    (the first STORES_SHOWN of them; the API answers for any store)."""
    chain = queries.analytics(period)
    stores = [s.store_id for s in chain.stores[:STORES_SHOWN]]
    rows = [store_row("*", chain)]
    rows += [store_row(s, queries.analytics(period, s)) for s in stores]
    return chain, rows


class OperationsPage(Controller):
    path = "/console/operations"
    include_in_schema = False

    @get("/", operation_id="consoleOperations", sync_to_thread=True)
    def read(
        self,
        request: Request[Any, Any, Any],
        viewer: NamedDependency[Viewer],
        queries: NamedDependency[Queries],
        now: NamedDependency[datetime],
        zone: NamedDependency[ZoneInfo],
        period: FromQuery[Period | None] = None,
    ) -> Template:
        viewer.require("operations")
        period = period or text.month_of_day(now.astimezone(zone).date())
        lag = queries.lag() if viewer.principal.role == "admin" else None
        try:
            report, rows = analytics_rows(queries, period)
        except InvalidInput as e:
            return page(
                request,
                viewer,
                "operations.html",
                status=422,
                lag=lag,
                period=period,
                analytics=None,
                report=None,
                error=e.detail,
            )
        return page(
            request,
            viewer,
            "operations.html",
            lag=lag,
            period=period,
            analytics=analytics_table(rows),
            report=report,
            error=None,
        )

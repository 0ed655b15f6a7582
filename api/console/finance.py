"""Finance's page: a settlement month as a table with totals, who pays whom, and its CSV; the
month close (a confirmation page, then the same ledger command as
`POST /v1/settlements/{period}/close`); the points liability as of a date, and points issued vs.
redeemed per month. The same Queries as the JSON API."""

from __future__ import annotations

import contextlib
from datetime import date, datetime
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import anyio.to_thread
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery
from litestar.response import Redirect, Template

from api.console import text
from api.console.charts import grouped_bars
from api.console.render import page
from api.console.session import Viewer, check_csrf, set_flash
from api.validation import Period
from ledger.domain.errors import InvalidInput, LedgerError
from ledger.domain.settlement import check_period
from ledger.services.settlement import SettlementService
from projections.queries import Queries, settlement_csv
from projections.runtime import APPLICATION_NAME

CHART_MONTHS = 12
CLOSE_SHOWN_SECONDS = 3.0  # how long a close waits for the settlement view to show it


def wait_for_settlement_view(queries: Queries) -> None:
    """Until the settlement view has applied the log so far (at most CLOSE_SHOWN_SECONDS), so
    the page after a close shows the month closed; a view further behind shows it later."""
    position = queries.ledger.core.log_position()
    with contextlib.suppress(TimeoutError):
        queries.projections.settlement.wait(APPLICATION_NAME, position, CLOSE_SHOWN_SECONDS)


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
    ended = text.month_of_day(now.astimezone(zone).date()) > report.period
    return {
        "report": report,
        "ended": ended,  # the month may be closed (the ledger checks it again)
        "who_pays": partial(text.who_pays, lang=lang),
        "liability": liability,
        "months": months,
        "chart": chart,
    }


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

    @get("/close", operation_id="consoleCloseConfirm", sync_to_thread=True)
    def confirm_close(
        self,
        request: Request[Any, Any, Any],
        viewer: NamedDependency[Viewer],
        queries: NamedDependency[Queries],
        now: NamedDependency[datetime],
        zone: NamedDependency[ZoneInfo],
        period: FromQuery[str],
    ) -> Template:
        """The confirmation step: what closing the month means, and the button that does it."""
        viewer.require("finance")
        try:
            report = queries.settlement(check_period(period))
        except InvalidInput as e:
            return page(request, viewer, "finance.html", status=422, period=period, error=e.detail)
        ended = text.month_of_day(now.astimezone(zone).date()) > report.period
        return page(request, viewer, "finance_close.html", report=report, ended=ended)

    @post("/close", operation_id="consoleClose", status_code=303)
    async def close(
        self,
        request: Request[Any, Any, Any],
        viewer: NamedDependency[Viewer],
        settlement: NamedDependency[SettlementService],
        queries: NamedDependency[Queries],
        now: NamedDependency[datetime],
    ) -> Redirect:
        """Close the month: the ledger's own command, idempotent, so a double submit closes
        once (the second is told the month was closed already)."""
        form = dict(await request.form())
        check_csrf(request, form)
        viewer.require("finance")
        labels, period = text.labels(viewer.lang), str(form.get("period", ""))
        try:
            receipt, created = await anyio.to_thread.run_sync(
                settlement.close, period, viewer.principal.key_id, now
            )
        except LedgerError as e:
            set_flash(request, labels["failed"].format(detail=e.detail))
        else:
            await anyio.to_thread.run_sync(wait_for_settlement_view, queries)
            done = labels["month_closed" if created else "month_closed_before"]
            set_flash(request, done.format(period=period, digest=receipt.digest or "—"))
        return Redirect(path="/console/finance", query_params={"period": period}, status_code=303)

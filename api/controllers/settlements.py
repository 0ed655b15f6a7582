"""`/v1/settlements/{period}`: a month's franchise settlement as JSON or CSV, and closing it
(finance)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery

from api.auth import roles
from api.validation import Period
from ledger.domain.apikey import Principal
from ledger.domain.settlement import CloseReceipt
from ledger.services.settlement import SettlementService
from projections.queries import Queries, settlement_csv
from projections.settlement import SettlementReport


class SettlementsController(Controller):
    path = "/v1/settlements"
    tags = ["settlements"]  # noqa: RUF012

    @get(
        "/{period:str}",
        operation_id="getSettlement",
        guards=[roles("finance")],
        sync_to_thread=True,
    )
    def read(
        self,
        period: FromPath[Period],
        queries: NamedDependency[Queries],
        format: FromQuery[Literal["json", "csv"]] = "json",
    ) -> Response[SettlementReport] | Response[str]:
        report = queries.settlement(period)
        if format == "csv":
            return Response(
                settlement_csv(report),
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="settlement-{period}.csv"'},
            )
        return Response(report)

    @post(
        "/{period:str}/close",
        operation_id="closeSettlement",
        guards=[roles("finance")],
        sync_to_thread=True,
    )
    def close(
        self,
        period: FromPath[Period],
        settlement: NamedDependency[SettlementService],
        principal: NamedDependency[Principal],
        now: NamedDependency[datetime],
    ) -> Response[CloseReceipt]:
        receipt, created = settlement.close(period, principal.key_id, now)
        return Response(receipt, status_code=201 if created else 200)

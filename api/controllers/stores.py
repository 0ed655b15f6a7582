"""`/v1/stores/{store_id}`: register or change a store (admin); dispatch membership cards to
it (admin), read its card stock, and its day for reconciliation with the till."""

from __future__ import annotations

from typing import Literal

from litestar import Controller, Response, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from api.auth import require_store, roles
from api.validation import Day, Period
from ledger.domain.apikey import Principal
from ledger.domain.cards import DispatchReceipt
from ledger.domain.commands import DispatchCards, Identifier, RegisterStore
from ledger.domain.store import StoreView
from ledger.services.access import AccessService
from projections.daily import DailyReport
from projections.members import CardStock
from projections.queries import Queries, daily_csv


class StoresController(Controller):
    path = "/v1/stores"
    tags = ["stores"]  # noqa: RUF012

    @put("/{store_id:str}", operation_id="putStore", guards=[roles("admin")], sync_to_thread=True)
    def put_store(
        self,
        store_id: FromPath[Identifier],
        data: JSONBody[RegisterStore],
        access: NamedDependency[AccessService],
        principal: NamedDependency[Principal],
    ) -> Response[StoreView]:
        view, created = access.configure_store(store_id, data, principal.key_id)
        return Response(view, status_code=201 if created else 200)

    @post(
        "/{store_id:str}/cards",
        operation_id="dispatchCards",
        guards=[roles("admin")],
        sync_to_thread=True,
    )
    def dispatch_cards(
        self,
        store_id: FromPath[Identifier],
        data: JSONBody[DispatchCards],
        access: NamedDependency[AccessService],
        principal: NamedDependency[Principal],
    ) -> Response[DispatchReceipt]:
        receipt, created = access.dispatch_cards(store_id, data.first, data.last, principal.key_id)
        return Response(receipt, status_code=201 if created else 200)

    @get(
        "/{store_id:str}/cards",
        operation_id="getCardStock",
        guards=[roles("pos", "service", "finance")],
        sync_to_thread=True,
    )
    def card_stock(
        self,
        store_id: FromPath[Identifier],
        queries: NamedDependency[Queries],
        principal: NamedDependency[Principal],
        period: FromQuery[Period | None] = None,
    ) -> CardStock:
        require_store(principal, store_id)
        return queries.card_stock(store_id, period)

    @get(
        "/{store_id:str}/daily/{date:str}",
        operation_id="getStoreDay",
        guards=[roles("pos", "finance")],
        sync_to_thread=True,
    )
    def daily(
        self,
        store_id: FromPath[Identifier],
        date: FromPath[Day],
        queries: NamedDependency[Queries],
        principal: NamedDependency[Principal],
        format: FromQuery[Literal["json", "csv"]] = "json",
    ) -> Response[DailyReport] | Response[str]:
        """The store's day (events whose `occurred_at` falls on it in chain time; full line
        amounts) for reconciliation with the till, receipt by receipt. May lag the log."""
        require_store(principal, store_id)
        report = queries.daily(store_id, date)
        if format == "csv":
            return Response(
                daily_csv(report),
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="{store_id}-{date}.csv"'},
            )
        return Response(report)
